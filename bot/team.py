"""Team commands in Telegram: /stats and /export, for user ids in the `team` allowlist."""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import datetime, timezone

from telegram import Update
from telegram.ext import ContextTypes

from bot.delivery import BotDeps
from earshot.storage.db import session_scope

log = logging.getLogger("earshot.bot.team")
NOT_AVAILABLE = "Sorry, that's not available."
FORMATS = ("csv", "xlsx")


def _allowed(update: Update, d: BotDeps, command: str) -> bool:
    user = update.effective_user
    if user is not None and user.id in d.settings.team:
        log.info("team command /%s by an allowlisted user", command)
        return True
    # Logged without the user id in clear: the attempt matters, not who.
    log.warning("refused /%s for a user outside the team allowlist", command)
    return False


async def on_stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send counts by type, product and status, and the top ideas."""
    d: BotDeps = context.application.bot_data["deps"]
    assert update.effective_chat is not None
    if not _allowed(update, d, "stats"):
        await context.bot.send_message(update.effective_chat.id, NOT_AVAILABLE)
        return
    from earshot.stats import format_stats_text, team_stats

    def build() -> str:
        with session_scope(d.settings.db_url) as session:
            stats = team_stats(session)
        names = {p.key: p.name for p in d.settings.products}
        return format_stats_text(stats, names)

    await context.bot.send_message(update.effective_chat.id, await asyncio.to_thread(build))


async def on_export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send all feedback as a CSV or XLSX document."""
    d: BotDeps = context.application.bot_data["deps"]
    assert update.effective_chat is not None
    if not _allowed(update, d, "export"):
        await context.bot.send_message(update.effective_chat.id, NOT_AVAILABLE)
        return
    fmt = (context.args[0].lower() if context.args else "csv").lstrip(".")
    if fmt not in FORMATS:
        await context.bot.send_message(
            update.effective_chat.id, "Usage: /export csv or /export xlsx"
        )
        return
    from earshot.export import export

    def build() -> tuple[bytes, int]:
        buf = io.BytesIO()
        with session_scope(d.settings.db_url) as session:
            count = export(session, fmt=fmt, out=buf)  # type: ignore[arg-type]
        return buf.getvalue(), count

    data, count = await asyncio.to_thread(build)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M")
    await context.bot.send_document(
        update.effective_chat.id,
        document=data,
        filename=f"feedback-{stamp}.{fmt}",
        caption=f"{count} feedback items",
    )
