"""The Telegram front end: one composition root, small callbacks, Rasa behind them."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.rasa_client import RasaClient, RasaUnavailable
from bot.render import Reply, escape, to_replies
from earshot.identity import user_key
from earshot.settings import Settings
from earshot.storage import repo
from earshot.storage.db import session_scope
from earshot.storage.models import InboxMessage

log = logging.getLogger("earshot.bot")

COMMANDS = [
    ("start", "Start over"),
    ("help", "What I can do"),
    ("feedback", "Share an idea or a problem"),
    ("privacy", "What I store and why"),
]
# Commands relayed to Rasa as intent payloads (the dialogue decides what they do).
COMMAND_PAYLOADS = {
    "start": "/start",
    "help": "/help",
    "privacy": "/privacy_policy",
    "feedback": "/give_feedback",
}
TEXTS = {
    "unavailable": "I can't answer right now, sorry. I've kept your message and will reply "
    "as soon as I can.",
    "expired": "That button has expired. Please type your message instead.",
    "private_only": "I only chat in private. Please message me directly.",
    "media": "Thanks! I can only read text messages for now. Please tell me in words.",
    "unknown_command": "I don't know that command. /help lists what I can do.",
}


@dataclass
class BotDeps:
    """Shared clients, created in post_init and closed in post_shutdown."""

    settings: Settings
    rasa: RasaClient
    chat_locks: defaultdict[int, asyncio.Lock] = field(
        default_factory=lambda: defaultdict(asyncio.Lock)
    )

    def key(self, telegram_user_id: int) -> str:
        return user_key(
            self.settings.earshot_secret.get_secret_value(), "telegram", telegram_user_id
        )

    async def db(self, fn: Any, /, **kwargs: Any) -> Any:
        """Run a repository function in a worker thread, in its own transaction."""

        def run() -> Any:
            with session_scope(self.settings.db_url) as session:
                return fn(session, **kwargs)

        return await asyncio.to_thread(run)


def deps(context: ContextTypes.DEFAULT_TYPE) -> BotDeps:
    d: BotDeps = context.application.bot_data["deps"]
    return d


def _metadata(update: Update) -> dict[str, Any]:
    user = update.effective_user
    chat = update.effective_chat
    lang = (user.language_code or "") if user else ""
    return {
        "channel": "telegram",
        "language_code": lang,
        "language": lang.split("-")[0].lower() if lang else None,
        "chat_type": chat.type if chat else None,
    }


async def relay(update: Update, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
    """Send one customer message to Rasa and deliver its replies, in order per chat."""
    d = deps(context)
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    key = d.key(user.id)
    meta = _metadata(update)
    async with d.chat_locks[chat.id]:
        await d.db(
            repo.touch_customer,
            user_key=key,
            channel="telegram",
            chat_id=str(chat.id),
            language=meta["language"],
        )
        try:
            await context.bot.send_chat_action(chat.id, ChatAction.TYPING)
        except TelegramError:
            log.debug("typing action failed", exc_info=True)
        try:
            messages = await d.rasa.send(key, text, meta)
        except RasaUnavailable as exc:
            log.warning("Rasa unavailable, message kept in the inbox: %s", exc)
            await d.db(_keep_in_inbox, customer_key=key, chat_id=str(chat.id), text=text, meta=meta)
            await context.bot.send_message(chat.id, TEXTS["unavailable"])
            return
        await send_replies(context, chat.id, key, to_replies(messages))


def _keep_in_inbox(
    session: Any, *, customer_key: str, chat_id: str, text: str, meta: dict[str, Any]
) -> None:
    session.add(InboxMessage(customer_key=customer_key, chat_id=chat_id, text=text, meta=meta))


def _store_buttons(session: Any, *, payloads: list[str], customer_key: str) -> str:
    return repo.store_payload(session, payload=json.dumps(payloads), customer_key=customer_key)


async def send_replies(
    context: ContextTypes.DEFAULT_TYPE, chat_id: int, key: str, replies: list[Reply]
) -> None:
    """Send replies; buttons ride on the last chunk, their payloads stay server-side."""
    d = deps(context)
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
            await context.bot.send_photo(chat_id, reply.image)
        chunks = reply.chunks or (["\u2060"] if markup else [])
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            await context.bot.send_message(
                chat_id,
                chunk,
                parse_mode=ParseMode.HTML,
                reply_markup=markup if last else None,
                disable_web_page_preview=True,
            )


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Relay a customer's text message to the assistant."""
    assert update.effective_message is not None
    text = (update.effective_message.text or "").strip()
    if text:
        await relay(update, context, text)


async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Relay a known command to the assistant as its intent payload."""
    assert update.effective_message is not None and update.effective_message.text
    name = update.effective_message.text.split()[0][1:].split("@")[0].lower()
    await relay(update, context, COMMAND_PAYLOADS[name])


async def on_unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Point a customer who typed an unknown command to /help."""
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id, TEXTS["unknown_command"])


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer a button press, lock its keyboard, and relay the button's payload."""
    query = update.callback_query
    assert query is not None and query.from_user is not None
    d = deps(context)
    payload = await _resolve_button(d, query.data or "", d.key(query.from_user.id))
    if payload is None:
        await query.answer(TEXTS["expired"])
        return
    await query.answer()
    title = _button_title(query.message, query.data or "")
    try:
        if isinstance(query.message, Message) and query.message.text:
            shown = f"{query.message.text_html}\n\n✓ {escape(title)}" if title else None
            if shown and len(shown) <= 4096:
                await query.edit_message_text(shown, parse_mode=ParseMode.HTML, reply_markup=None)
            else:
                await query.edit_message_reply_markup(reply_markup=None)
    except TelegramError:
        log.debug("could not remove keyboard", exc_info=True)
    await relay(update, context, payload)


async def _resolve_button(d: BotDeps, data: str, key: str) -> str | None:
    pid, _, idx = data.partition(":")
    if not pid or not idx.isdigit():
        return None
    stored = await d.db(repo.load_payload, pid=pid, customer_key=key)
    if stored is None:
        return None
    try:
        payloads = json.loads(stored)
        return str(payloads[int(idx)])
    except (ValueError, IndexError, TypeError):
        return None


def _button_title(message: Any, data: str) -> str | None:
    markup = getattr(message, "reply_markup", None)
    for row in getattr(markup, "inline_keyboard", ()) or ():
        for button in row:
            if button.callback_data == data:
                return str(button.text)
    return None


async def on_media(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Tell the customer politely that only text is understood here."""
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id, TEXTS["media"])


async def on_group(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Point group members to a private chat instead of answering in the group."""
    message = update.effective_message
    if message is not None and message.text and message.text.startswith("/"):
        await message.reply_text(TEXTS["private_only"])
    raise ApplicationHandlerStop


async def dedupe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Drop an update Telegram already delivered once (also across restarts)."""
    d = deps(context)
    user = update.effective_user
    key = d.key(user.id) if user else None
    if not await d.db(repo.claim_update, update_id=update.update_id, customer_key=key):
        log.info("update %s already processed; skipped", update.update_id)
        raise ApplicationHandlerStop


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the error first, then tell the customer something went wrong."""
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            await context.bot.send_message(
                update.effective_chat.id,
                "Sorry, something went wrong on my side. Please try again.",
            )
        except TelegramError:
            log.debug("could not report the error to the chat", exc_info=True)


async def post_init(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Create shared clients and register the command menu."""
    settings: Settings = application.bot_data["settings"]
    application.bot_data["deps"] = BotDeps(
        settings=settings, rasa=RasaClient(settings.rasa_url, settings.rasa_timeout_s)
    )
    try:
        await application.bot.set_my_commands([BotCommand(c, d) for c, d in COMMANDS])
    except TelegramError:
        log.warning("could not set the command menu", exc_info=True)


async def post_shutdown(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Close shared clients."""
    d: BotDeps | None = application.bot_data.get("deps")
    if d is not None:
        await d.rasa.aclose()


def build_application(settings: Settings) -> Application[Any, Any, Any, Any, Any, Any]:
    """The composition root: every handler and shared client is wired here."""
    assert settings.telegram_bot_token is not None, "TELEGRAM_BOT_TOKEN is required"
    base = settings.telegram_api_base_url.rstrip("/")
    application = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(base)
        .base_file_url(base.removesuffix("/bot") + "/file/bot")
        .rate_limiter(AIORateLimiter(max_retries=5))
        # Updates of different chats run concurrently; a per-chat lock keeps each in order.
        .concurrent_updates(64)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    application.bot_data["settings"] = settings
    private = filters.ChatType.PRIVATE
    application.add_handler(TypeHandler(Update, dedupe), group=-2)
    application.add_handler(
        MessageHandler(filters.ChatType.GROUPS | filters.UpdateType.CHANNEL_POSTS, on_group),
        group=-1,
    )
    application.add_handler(CommandHandler(list(COMMAND_PAYLOADS), on_command, filters=private))
    application.add_handler(MessageHandler(filters.COMMAND & private, on_unknown_command))
    application.add_handler(
        MessageHandler(
            filters.TEXT & ~filters.COMMAND & private & filters.UpdateType.MESSAGE, on_text
        )
    )
    application.add_handler(CallbackQueryHandler(on_button))
    application.add_handler(
        MessageHandler(private & filters.UpdateType.MESSAGE & ~filters.TEXT, on_media)
    )
    application.add_error_handler(on_error)
    return application
