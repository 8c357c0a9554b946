"""The Telegram front end: one composition root, small callbacks, Rasa behind them."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from typing import Any

from sqlalchemy.exc import DBAPIError
from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import TelegramError
from telegram.ext import (
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

from bot import team, workers
from bot.delivery import BotDeps, deliver
from bot.inbound import GroupPointers, InboundLimit, Verdict
from bot.limits import MessageRateLimiter, answering
from bot.rasa_client import RasaClient, RasaUnavailable
from bot.render import escape
from earshot import i18n, language
from earshot.conversations import queries as conversations
from earshot.outreach import outbox
from earshot.privacy.erasure import erase_customer, erase_spooled
from earshot.privacy.redaction import redact
from earshot.settings import Settings

log = logging.getLogger("earshot.bot")

COMMANDS = (
    "start",
    "help",
    "feedback",
    "myfeedback",
    "privacy",
    "deletemydata",
    "stop",
    "language",
)
# Commands relayed to Rasa as intent payloads (the dialogue decides what they do).
COMMAND_PAYLOADS = {
    "start": "/start",
    "help": "/help",
    "privacy": "/privacy_policy",
    "feedback": "/give_feedback",
    "myfeedback": "/my_feedback",
    "stop": "/stop_asking",
    "language": language.SET_LANGUAGE,
}
DEEP_LINK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_WAITING_PER_CHAT = 20


def deps(context: ContextTypes.DEFAULT_TYPE) -> BotDeps:
    d: BotDeps = context.application.bot_data["deps"]
    return d


def _metadata(update: Update) -> dict[str, Any]:
    user, chat = update.effective_user, update.effective_chat
    lang = (user.language_code or "") if user else ""
    return {
        "channel": "telegram",
        "language_code": lang,
        "language": language.normalise(lang),
        "chat_type": chat.type if chat else None,
    }


async def _language(d: BotDeps, update: Update) -> str:
    """The language to answer in outside a relayed turn (stored choice, else Telegram's)."""
    user = update.effective_user
    s = d.settings
    stored = None
    if user is not None:
        try:
            stored = await d.db(conversations.get_customer_language, user_key=d.key(user.id))
        except DBAPIError:
            log.debug("database unavailable; answering in Telegram's language")
    return language.resolve(
        chosen=stored,
        reported=user.language_code if user else None,
        detected=None,
        languages=s.languages,
        default=s.default_language,
    )


def _customer(update: Update) -> dict[str, Any]:
    user = update.effective_user
    return {"user_id": user.id, "first_name": user.first_name} if user else {}


async def relay(update: Update, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
    """Send one customer message to Rasa and deliver its replies, in order per chat."""
    d = deps(context)
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    key, meta = d.key(user.id), _metadata(update)
    lock = d.chat_locks[chat.id]
    waiting = context.application.bot_data.setdefault("waiting", Counter())
    if waiting[chat.id] >= MAX_WAITING_PER_CHAT:
        # A flood: keep the message for the background worker rather than queue more tasks.
        await _keep(d, key, chat.id, text, meta)
        return
    waiting[chat.id] += 1
    try:
        async with lock:
            with answering():
                await _relay_locked(update, context, d, key, meta, text)
    finally:
        waiting[chat.id] -= 1


async def _keep(d: BotDeps, key: str, chat_id: int, text: str, meta: dict[str, Any]) -> None:
    """Keep a message for later: in the database inbox, or on local disk if that is down."""
    entry = {"customer_key": key, "chat_id": str(chat_id), "text": text, "meta": meta}
    if not len(d.spool):  # while anything is spooled, spool too: replay keeps the order
        try:
            await d.db(outbox.keep_in_inbox, **entry)
            return
        except DBAPIError:
            log.warning("database unavailable; message kept in the local spool")
    await asyncio.to_thread(d.spool.put, entry)


async def _relay_locked(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    d: BotDeps,
    key: str,
    meta: dict[str, Any],
    text: str,
) -> None:
    chat_id = update.effective_chat.id  # type: ignore[union-attr]
    s = d.settings
    try:
        meta["language"], waiting = await d.db(
            conversations.see_customer,
            user_key=key,
            channel="telegram",
            chat_id=str(chat_id),
            reported_language=meta["language_code"],
            text=text,
            languages=s.languages,
            default_language=s.default_language,
        )
        waiting = waiting or len(d.spool) > 0
    except DBAPIError:
        await _keep(d, key, chat_id, text, meta)
        await context.bot.send_message(chat_id, i18n.text("unavailable", meta["language"]))
        return
    if waiting:
        # Older messages still wait for Rasa: queue behind them to keep the order.
        await _keep(d, key, chat_id, text, meta)
        return
    typing = asyncio.create_task(_typing_if_slow(context.bot, chat_id, s.typing_after_s))
    try:
        messages = await d.rasa.send(key, text, meta)
    except RasaUnavailable as exc:
        log.warning("Rasa unavailable, message kept: %s", exc)
        await _keep(d, key, chat_id, text, meta)
        await context.bot.send_message(chat_id, i18n.text("unavailable", meta["language"]))
        return
    finally:
        typing.cancel()
    await deliver(context.bot, d, chat_id, key, messages, _customer(update))


async def _typing_if_slow(bot: Any, chat_id: int, after_s: float) -> None:
    """Show "typing…" only when the answer takes a while: a typing action on every turn
    costs a Bot API call against the bot's rate limit for nothing a customer would see."""
    await asyncio.sleep(after_s)
    try:
        await bot.send_chat_action(chat_id, ChatAction.TYPING)
    except TelegramError:
        log.debug("typing action failed", exc_info=True)


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Relay a customer's text message to the assistant, personal details redacted first:
    nothing downstream (Rasa's tracker, inbox, spool, logs) ever sees them as typed."""
    assert update.effective_message is not None
    text = redact((update.effective_message.text or "").strip())
    if text:
        await relay(update, context, text)


async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Relay a known command to the assistant as its intent payload."""
    assert update.effective_message is not None and update.effective_message.text
    name = update.effective_message.text.split()[0][1:].split("@")[0].lower()
    payload = COMMAND_PAYLOADS[name]
    if name == "language":
        payload = language.command_payload(context.args or [])
    if name == "start" and context.args and DEEP_LINK.match(context.args[0]):
        payload = "/start" + json.dumps({"deep_link": context.args[0].lower()})
    await relay(update, context, payload)


async def on_unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Point a customer who typed an unknown command to /help."""
    assert update.effective_chat is not None
    lang = await _language(deps(context), update)
    await context.bot.send_message(update.effective_chat.id, i18n.text("unknown_command", lang))


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer a button press, lock its keyboard, and relay the button's payload."""
    query = update.callback_query
    assert query is not None
    d = deps(context)
    payload = await _resolve_button(d, query.data or "", d.key(query.from_user.id))
    if payload is None:
        await query.answer(i18n.text("expired", await _language(d, update)))
        return
    await query.answer()
    await _show_choice(query.message, query.data or "")
    await relay(update, context, payload)


async def _show_choice(message: Any, data: str) -> None:
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


async def _resolve_button(d: BotDeps, data: str, key: str) -> str | None:
    pid, _, idx = data.partition(":")
    if not pid or not idx.isdigit():
        return None
    stored = await d.db(conversations.load_payload, pid=pid, customer_key=key)
    if stored is None:
        return None
    try:
        return str(json.loads(stored)[int(idx)])
    except (ValueError, IndexError, TypeError):
        return None


async def on_media(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Relay a photo or file as an attachment payload; other media by kind only."""
    message = update.effective_message
    assert message is not None
    file_id = None
    if message.photo:
        kind, file_id = "photo", message.photo[-1].file_id
    elif message.document:
        kind, file_id = "document", message.document.file_id
    else:
        kind = next(
            (
                k
                for k in ("voice", "video", "sticker", "location", "contact", "poll", "audio")
                if getattr(message, k, None)
            ),
            "other",
        )
    entity: dict[str, str] = {"media_kind": kind}
    if file_id:
        entity["file_id"] = file_id
    await relay(update, context, "/media" + json.dumps(entity))


async def on_delete_my_data(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Offer the two deletion choices, each behind a confirmation."""
    assert update.effective_chat is not None
    lang = await _language(deps(context), update)
    keyboard = InlineKeyboardMarkup(
        [
            [_button("delete_personal_button", lang, "del:ask:personal")],
            [_button("delete_all_button", lang, "del:ask:all")],
            [_button("cancel_button", lang, "del:cancel")],
        ]
    )
    await context.bot.send_message(
        update.effective_chat.id,
        i18n.text("delete_choose", lang),
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard,
    )


async def on_delete_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Confirm and carry out a deletion request."""
    query = update.callback_query
    assert query is not None and update.effective_chat is not None
    await query.answer()
    data, chat_id = query.data or "", update.effective_chat.id
    d = deps(context)
    lang = await _language(d, update)
    if data.startswith("del:ask:"):
        choice = "all" if data.endswith(":all") else "personal"
        keyboard = InlineKeyboardMarkup(
            [
                [_button("delete_yes_button", lang, f"del:do:{choice}")],
                [_button("cancel_button", lang, "del:cancel")],
            ]
        )
        await query.edit_message_text(
            i18n.text(f"delete_confirm_{choice}", lang), reply_markup=keyboard
        )
        return
    if data.startswith("del:do:"):
        everything = data.endswith(":all")
        key = d.key(query.from_user.id)
        async with d.chat_locks[chat_id]:
            report = await d.db(erase_customer, customer_key=key, everything=everything)
            await asyncio.to_thread(erase_spooled, d.settings.data_dir / "spool", customer_key=key)
        log.info("erased a customer's data (everything=%s, rows=%d)", everything, report.total)
        done = "deleted_all" if everything else "deleted_personal"
        await query.edit_message_text(i18n.text(done, lang))
        return
    await query.edit_message_text(i18n.text("delete_cancelled", lang))


def _button(key: str, lang: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(i18n.text(key, lang), callback_data=data)


async def on_edited(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Explain that edits are not picked up, rather than acting on them twice."""
    assert update.effective_chat is not None
    lang = await _language(deps(context), update)
    await context.bot.send_message(update.effective_chat.id, i18n.text("edited", lang))


async def on_group(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stay silent in groups, but for one pointer to a private chat per group."""
    message, chat = update.effective_message, update.effective_chat
    pointers: GroupPointers = context.application.bot_data["group_pointers"]
    if (
        message is not None
        and chat is not None
        and message.text
        and message.text.startswith("/")
        and pointers.first_time(chat.id)
    ):
        user = update.effective_user
        lang = language.normalise(user.language_code if user else None)
        await message.reply_text(i18n.text("private_only", lang))
    raise ApplicationHandlerStop


async def inbound_limit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Over the per-customer limit: one polite notice, then silence until it passes."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None or chat.type != "private":
        return
    limit: InboundLimit = context.application.bot_data["inbound_limit"]
    verdict = limit.hit(user.id)
    if verdict is Verdict.OK:
        return
    if verdict is Verdict.NOTICE:
        log.info("a customer is over the inbound limit; further messages ignored for now")
        await context.bot.send_message(
            chat.id, i18n.text("too_fast", await _language(deps(context), update))
        )
    raise ApplicationHandlerStop


async def dedupe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Drop an update Telegram already delivered once (also across restarts)."""
    d = deps(context)
    user = update.effective_user
    key = d.key(user.id) if user else None
    try:
        fresh = await d.db(
            conversations.claim_update,
            update_id=update.update_id,
            customer_key=key,
            bot_id=context.bot.id,
        )
    except DBAPIError:
        log.warning("database unavailable; update %s not deduplicated", update.update_id)
        return
    if not fresh:
        log.info("update %s already processed; skipped", update.update_id)
        raise ApplicationHandlerStop


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the error first, then tell the customer something went wrong."""
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            lang = language.normalise(
                update.effective_user.language_code if update.effective_user else None
            )
            await context.bot.send_message(update.effective_chat.id, i18n.text("error", lang))
        except TelegramError:
            log.debug("could not report the error to the chat", exc_info=True)


async def post_init(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Create shared clients, register the command menu, start background work."""
    settings: Settings = application.bot_data["settings"]
    d = BotDeps(
        settings=settings,
        rasa=RasaClient(
            settings.rasa_url, settings.rasa_timeout_s, settings.rasa_token.get_secret_value()
        ),
    )
    application.bot_data["deps"] = d
    try:
        for lang in settings.languages:
            titles = i18n.labels("command", lang)
            await application.bot.set_my_commands(
                [BotCommand(c, titles[c]) for c in COMMANDS],
                language_code=None if lang == settings.default_language else lang,
            )
    except TelegramError:
        log.warning("could not set the command menu", exc_info=True)
    application.bot_data["worker"] = asyncio.create_task(workers.run_forever(application.bot, d))


async def post_shutdown(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Stop background work and close shared clients."""
    task: asyncio.Task[None] | None = application.bot_data.get("worker")
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
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
        .rate_limiter(
            MessageRateLimiter(
                overall_max_rate=settings.telegram_messages_per_second,
                paid_overflow=settings.telegram_paid_overflow,
                max_retries=5,
            )
        )
        # Updates of different chats run concurrently; a per-chat lock keeps each in order.
        .concurrent_updates(64)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    application.bot_data["settings"] = settings
    application.bot_data["inbound_limit"] = InboundLimit(settings.customer_messages_per_minute)
    application.bot_data["group_pointers"] = GroupPointers()
    private = filters.ChatType.PRIVATE
    new_message = filters.UpdateType.MESSAGE
    application.add_handler(TypeHandler(Update, dedupe), group=-2)
    application.add_handler(
        MessageHandler(filters.ChatType.GROUPS | filters.UpdateType.CHANNEL_POSTS, on_group),
        group=-1,
    )
    application.add_handler(TypeHandler(Update, inbound_limit), group=-1)
    application.add_handler(CommandHandler(list(COMMAND_PAYLOADS), on_command, filters=private))
    application.add_handler(CommandHandler("deletemydata", on_delete_my_data, filters=private))
    application.add_handler(CommandHandler("stats", team.on_stats, filters=private))
    application.add_handler(CommandHandler("export", team.on_export, filters=private))
    application.add_handler(MessageHandler(filters.COMMAND & private, on_unknown_command))
    application.add_handler(
        MessageHandler(filters.TEXT & ~filters.COMMAND & private & new_message, on_text)
    )
    application.add_handler(CallbackQueryHandler(on_delete_button, pattern=r"^del:"))
    application.add_handler(CallbackQueryHandler(on_button))
    application.add_handler(MessageHandler(private & new_message & ~filters.TEXT, on_media))
    application.add_handler(MessageHandler(private & filters.UpdateType.EDITED_MESSAGE, on_edited))
    application.add_error_handler(on_error)
    return application
