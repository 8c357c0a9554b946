"""Team commands in Telegram: /stats (viewer) and /export (triager) for the team.

The team is the dashboard's users (earshot.accounts.service): a user with a `telegram_id` may use
these commands as far as their role allows; ids in config.yml's `team` count as triagers.
"""

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


async def _allowed(update: Update, d: BotDeps, command: str) -> bool:
    from earshot.accounts.service import role_at_least, telegram_role

    user = update.effective_user
    needed = "triager" if command == "export" else "viewer"
    role = None
    if user is not None:
        role = await d.db(telegram_role, telegram_id=user.id, team=d.settings.team)
    if role_at_least(role, needed):
        log.info("team command /%s by a %s", command, role)
        return True
    # Logged without the user id in clear: the attempt matters, not who.
    log.warning("refused /%s for a user without the %s role", command, needed)
    return False


async def on_stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send counts by type, product and status, and the top ideas."""
    d: BotDeps = context.application.bot_data["deps"]
    assert update.effective_chat is not None
    if not await _allowed(update, d, "stats"):
        await context.bot.send_message(update.effective_chat.id, NOT_AVAILABLE)
        return
    from earshot.insights.stats import format_stats_text, team_stats

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
    if not await _allowed(update, d, "export"):
        await context.bot.send_message(update.effective_chat.id, NOT_AVAILABLE)
        return
    fmt = (context.args[0].lower() if context.args else "csv").lstrip(".")
    if fmt not in FORMATS:
        await context.bot.send_message(
            update.effective_chat.id, "Usage: /export csv or /export xlsx"
        )
        return
    from earshot.insights.export import export

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
