"""The Telegram adapter: Telegram updates in, the gateway's replies out.

Everything a conversation needs (commands, Rasa, buttons, language, redaction, inbox and
replay, erasure, handoff) is the gateway's (earshot/gateway); what stays here is Telegram's:
the update-id dedupe, groups, edits, the command menu, team commands and PTB's wiring.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.exc import DBAPIError
from telegram import BotCommand, Update
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

from bot import team
from bot.delivery import BotDeps, TelegramChannel, TelegramSupportDesk
from bot.inbound import GroupPointers, InboundLimit, Verdict
from bot.limits import MessageRateLimiter, answering
from earshot import i18n, language
from earshot.conversations import queries as conversations
from earshot.gateway import commands, outreach
from earshot.gateway.model import Incoming
from earshot.gateway.service import Gateway
from earshot.settings import Settings

log = logging.getLogger("earshot.bot")

COMMANDS = commands.COMMANDS
# Relayed to Rasa as intent payloads (the benchmark drives the same ones).
COMMAND_PAYLOADS = {**commands.PAYLOADS, "language": language.SET_LANGUAGE}


def deps(context: ContextTypes.DEFAULT_TYPE) -> BotDeps:
    d: BotDeps = context.application.bot_data["deps"]
    return d


async def _language(d: BotDeps, update: Update) -> str:
    """The language to answer in outside a turn (stored choice, else Telegram's)."""
    user = update.effective_user
    if user is None:
        return d.settings.default_language
    return await d.gateway.language_of(d.key(user.id), user.language_code)


def _incoming(update: Update, **what: Any) -> Incoming:
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    return Incoming(
        channel="telegram",
        user_id=str(user.id),
        chat_id=str(chat.id),
        language_hint=user.language_code,
        display_name=user.first_name,
        **what,
    )


async def _handle(update: Update, context: ContextTypes.DEFAULT_TYPE, **what: Any) -> None:
    d = deps(context)
    channel = TelegramChannel(context.bot, update.callback_query)
    with answering():
        await d.gateway.handle(_incoming(update, **what), channel)


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A customer's text or command: the gateway redacts, maps commands and answers."""
    assert update.effective_message is not None
    await _handle(update, context, text=update.effective_message.text or "")


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button press: the gateway resolves its reference (TelegramChannel.pressed answers
    the callback query and locks the keyboard)."""
    query = update.callback_query
    assert query is not None
    await _handle(update, context, button=query.data or "")


async def on_media(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo or file by its file id; other media by kind only."""
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
    await _handle(update, context, media=kind, media_id=file_id)


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
    # The inbound limit runs in a handler of its own below (it covers edits and team
    # commands too), so the gateway's is switched off here.
    gateway = Gateway(
        settings,
        support=TelegramSupportDesk(application.bot, settings.support_chat_id),
        limit=InboundLimit(0),
    )
    d = BotDeps(settings=settings, gateway=gateway)
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
    channels = [TelegramChannel(application.bot)]
    application.bot_data["worker"] = asyncio.create_task(outreach.run_forever(gateway, channels))


async def post_shutdown(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Stop background work and close shared clients."""
    task: asyncio.Task[None] | None = application.bot_data.get("worker")
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    d: BotDeps | None = application.bot_data.get("deps")
    if d is not None:
        await d.gateway.aclose()


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
    application.add_handler(CommandHandler("stats", team.on_stats, filters=private))
    application.add_handler(CommandHandler("export", team.on_export, filters=private))
    application.add_handler(MessageHandler(filters.TEXT & private & new_message, on_text))
    application.add_handler(CallbackQueryHandler(on_button))
    application.add_handler(MessageHandler(private & new_message & ~filters.TEXT, on_media))
    application.add_handler(MessageHandler(private & filters.UpdateType.EDITED_MESSAGE, on_edited))
    application.add_error_handler(on_error)
    return application
