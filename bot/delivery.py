"""Deliver Rasa's messages to a Telegram chat: text, photos, keyboards and handoffs."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, NetworkError, TimedOut

from bot.rasa_client import RasaClient
from bot.render import Reply, escape, split_escaped, to_replies
from earshot.conversations import queries as conversations
from earshot.privacy.identity import user_key
from earshot.settings import Settings
from earshot.storage.db import session_scope
from earshot.storage.spool import Spool

log = logging.getLogger("earshot.bot")
T = TypeVar("T")


@dataclass
class BotDeps:
    """Shared clients, created in post_init and closed in post_shutdown."""

    settings: Settings
    rasa: RasaClient
    chat_locks: defaultdict[int, asyncio.Lock] = field(
        default_factory=lambda: defaultdict(asyncio.Lock)
    )

    @property
    def spool(self) -> Spool:
        """Messages kept on local disk while the database is down."""
        return Spool(self.settings.data_dir / "spool" / "inbox")

    def key(self, telegram_user_id: int) -> str:
        secret = self.settings.earshot_secret.get_secret_value()
        return user_key(secret, "telegram", telegram_user_id)

    async def db(self, fn: Any, /, **kwargs: Any) -> Any:
        """Run a repository function in a worker thread, in its own transaction."""

        def run() -> Any:
            with session_scope(self.settings.db_url) as session:
                return fn(session, **kwargs)

        return await asyncio.to_thread(run)


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


def _store_buttons(session: Any, *, payloads: list[str], customer_key: str) -> str:
    return conversations.store_payload(
        session, payload=json.dumps(payloads), customer_key=customer_key
    )


async def send_replies(bot: Bot, d: BotDeps, chat_id: int, key: str, replies: list[Reply]) -> None:
    """Send replies; buttons ride on the last chunk, their payloads stay server-side."""
    for reply in replies:
        markup = None
        if reply.buttons:
            payloads = [b.payload for b in reply.buttons if not b.is_url]
            pid = (
                await d.db(_store_buttons, payloads=payloads, customer_key=key) if payloads else ""
            )
            rows: list[list[InlineKeyboardButton]] = []
            index = 0
            for b in reply.buttons:
                if b.is_url:
                    rows.append([InlineKeyboardButton(b.title, url=b.payload)])
                else:
                    rows.append([InlineKeyboardButton(b.title, callback_data=f"{pid}:{index}")])
                    index += 1
            markup = InlineKeyboardMarkup(rows)
        if reply.image:
            await with_retries(partial(bot.send_photo, chat_id, reply.image))
        chunks = reply.chunks or (["…"] if markup else [])
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            await with_retries(
                partial(
                    bot.send_message,
                    chat_id,
                    chunk,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup if last else None,
                    disable_web_page_preview=True,
                )
            )


async def forward_handoff(bot: Bot, handoff: dict[str, Any], customer: dict[str, Any]) -> None:
    """Post a handoff request with its transcript to the support team's chat."""
    chat_id = handoff.get("support_chat_id")
    if not chat_id:
        return
    who = escape(str(customer.get("first_name") or "A customer"))
    uid = customer.get("user_id")
    link = f'<a href="tg://user?id={int(uid)}">{who}</a>' if uid else who
    header = f"🙋 {link} asked to talk to a person"
    if handoff.get("topic"):
        header += f" (topic: {escape(str(handoff['topic']))})"
    body = str(handoff.get("transcript") or "")
    for i, chunk in enumerate(split_escaped(body, 3500) or [""]):
        text = f"{header}\n\n{chunk}" if i == 0 else chunk
        await bot.send_message(int(chat_id), text, parse_mode=ParseMode.HTML)


async def deliver(
    bot: Bot,
    d: BotDeps,
    chat_id: int,
    key: str,
    messages: list[dict[str, Any]],
    customer: dict[str, Any] | None = None,
) -> None:
    """Send Rasa's messages to the chat and act on custom ones (handoff)."""
    for msg in messages:
        custom = msg.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get("handoff"), dict):
            await forward_handoff(bot, custom["handoff"], customer or {})
    await send_replies(bot, d, chat_id, key, to_replies(messages))
