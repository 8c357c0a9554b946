"""The Telegram channel: how the gateway's replies look on Telegram, and the support desk.

`TelegramChannel.send` escapes for HTML, splits at 4096 characters, lays buttons out as an
inline keyboard (references as callback_data, links as URL buttons) on the last chunk and
sends photos; `pressed` answers a callback query and locks the pressed keyboard.
`TelegramSupportDesk` posts handoffs with their transcript to the support chat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from telegram import Bot, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, NetworkError, TelegramError, TimedOut

from bot.render import escape, split_escaped
from earshot.gateway.model import Handoff, Incoming, Purpose, Reply, Sent
from earshot.gateway.service import Gateway
from earshot.gateway.support import handoff_messages
from earshot.settings import Settings

log = logging.getLogger("earshot.bot")
T = TypeVar("T")


@dataclass
class BotDeps:
    """Shared objects, created in post_init and closed in post_shutdown."""

    settings: Settings
    gateway: Gateway

    def key(self, telegram_user_id: int) -> str:
        return self.gateway.key("telegram", telegram_user_id)

    async def db(self, fn: Any, /, **kwargs: Any) -> Any:
        """Run a repository function in a worker thread, in its own transaction."""
        return await self.gateway.db(fn, **kwargs)


RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)


async def with_retries(send: Callable[[], Awaitable[T]]) -> T:
    """Retry a Telegram call on network errors (429s are retried by the rate limiter).

    A timeout may hide a delivered message, so a rare duplicate is accepted over a loss.
    """
    for delay in RETRY_DELAYS:
        try:
            return await send()
        except (TimedOut, NetworkError) as exc:
            if isinstance(exc, BadRequest):
                raise
            log.warning("Telegram call failed (%s); retrying in %.1fs", type(exc).__name__, delay)
            await asyncio.sleep(delay)
    return await send()


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """One button per row: references as callback_data, links as URL buttons."""
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b.title, url=b.url)]
            if b.is_link
            else [InlineKeyboardButton(b.title, callback_data=b.ref)]
            for b in reply.buttons
        ]
    )


class TelegramChannel:
    """The gateway's `Channel` on Telegram (one per update when a button was pressed)."""

    name = "telegram"
    proactive = True

    def __init__(self, bot: Bot, query: CallbackQuery | None = None) -> None:
        self.bot = bot
        self.query = query

    async def send(
        self, chat_id: str, replies: list[Reply], *, purpose: Purpose, language: str
    ) -> Sent:
        """Send replies; buttons ride on the last chunk of their message."""
        sent = Sent()
        chat = int(chat_id)
        for reply in replies:
            markup = keyboard(reply)
            if reply.image:
                photo = await with_retries(partial(self.bot.send_photo, chat, reply.image))
                sent.message_ids.append(str(photo.message_id))
            chunks = split_escaped(reply.text) if reply.text else []
            chunks = chunks or (["…"] if markup else [])
            for i, chunk in enumerate(chunks):
                last = i == len(chunks) - 1
                message = await with_retries(
                    partial(
                        self.bot.send_message,
                        chat,
                        chunk,
                        parse_mode=ParseMode.HTML,
                        reply_markup=markup if last else None,
                        disable_web_page_preview=True,
                    )
                )
                sent.message_ids.append(str(message.message_id))
        return sent

    async def typing(self, chat_id: str) -> None:
        """Show "typing…" (the gateway calls this only when an answer takes a while)."""
        await self.bot.send_chat_action(int(chat_id), ChatAction.TYPING)

    async def pressed(self, incoming: Incoming, notice: str | None) -> None:
        """Answer the callback query: a toast for an expired button, else lock the keyboard."""
        if self.query is None:
            return
        try:
            await self.query.answer(notice)
        except TelegramError:
            log.debug("could not answer the callback query", exc_info=True)
        if notice is None:
            await show_choice(self.query.message, self.query.data or "")


async def show_choice(message: Any, data: str) -> None:
    """Replace the answer buttons by the chosen option, so they cannot be pressed twice."""
    if not isinstance(message, Message):
        return
    rows = message.reply_markup.inline_keyboard if message.reply_markup else ()
    title = next((b.text for row in rows for b in row if b.callback_data == data), None)
    links = [row for row in rows if all(b.url for b in row)]  # they wait for no answer
    markup = InlineKeyboardMarkup(links) if links else None
    try:
        shown = f"{message.text_html}\n\n✓ {escape(title)}" if title and message.text else None
        if shown and len(shown) <= 4096:
            await message.edit_text(shown, parse_mode=ParseMode.HTML, reply_markup=markup)
        else:
            await message.edit_reply_markup(reply_markup=markup)
    except TelegramError:
        log.debug("could not remove the keyboard", exc_info=True)


class TelegramSupportDesk:
    """Posts a handoff with its transcript to the support team's Telegram chat."""

    def __init__(self, bot: Bot, support_chat_id: int | None) -> None:
        self.bot = bot
        self.support_chat_id = support_chat_id

    async def hand_off(self, handoff: Handoff) -> bool:
        chat = handoff.support_chat_id or self.support_chat_id
        if not chat:
            return False
        who = escape(handoff.display_name or "A customer")
        if handoff.channel == "telegram" and handoff.chat_id.lstrip("-").isdigit():
            who = f'<a href="tg://user?id={int(handoff.chat_id)}">{who}</a>'
        for text in handoff_messages(handoff, who_html=who):
            await with_retries(
                partial(self.bot.send_message, int(chat), text, parse_mode=ParseMode.HTML)
            )
        return True
