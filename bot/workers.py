"""Background work of the bot process: replay kept messages, send campaign asks and
status updates. One loop, started in post_init and cancelled in post_shutdown."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import DBAPIError
from telegram import Bot
from telegram.error import Forbidden, TelegramError

from bot.delivery import BotDeps, deliver
from bot.rasa_client import RasaUnavailable
from earshot.outreach import outbox

log = logging.getLogger("earshot.bot.workers")


def _unspool(d: BotDeps) -> int:
    """Move messages kept on disk while the database was down into the database inbox."""
    from earshot.storage.db import session_scope

    def store(entry: dict[str, object]) -> None:
        with session_scope(d.settings.db_url) as session:
            outbox.keep_in_inbox(session, **entry)  # type: ignore[arg-type]

    return d.spool.drain(store) if len(d.spool) else 0


async def replay_inbox(bot: Bot, d: BotDeps) -> int:
    """Send kept messages to Rasa in order and deliver the replies; stop at the first failure."""
    await asyncio.to_thread(_unspool, d)
    kept = await d.db(outbox.pending_inbox)
    done = 0
    for msg in kept:
        chat_id = int(msg.chat_id)
        async with d.chat_locks[chat_id]:
            try:
                messages = await d.rasa.send(msg.customer_key, msg.text, dict(msg.meta))
            except RasaUnavailable:
                return done
            await d.db(outbox.finish_inbox, message_id=msg.id)
            await deliver(bot, d, chat_id, msg.customer_key, messages)
        done += 1
    if done:
        log.info("replayed %d kept message(s)", done)
    return done


async def send_campaign_asks(bot: Bot, d: BotDeps, batch: int = 20) -> int:
    """Ask pending campaign questions, one claim at a time: a crash loses at most the one
    ask in flight and never asks anyone twice."""
    sent = 0
    await d.db(outbox.fail_stale_sends)
    for _ in range(batch):
        asks = await d.db(outbox.claim_campaign_sends, channel="telegram", limit=1)
        if not asks:
            break
        ask = asks[0]
        ok = False
        # Under the chat lock: the ask must not interleave with a turn of the same chat.
        async with d.chat_locks[int(ask.chat_id)]:
            try:
                messages = await d.rasa.trigger_intent(
                    ask.customer_key, "campaign_ask", {"campaign": ask.campaign_id}
                )
            except RasaUnavailable:
                await d.db(outbox.release_campaign_send, send_id=ask.id)
                break  # try again on a later tick
            try:
                await deliver(bot, d, int(ask.chat_id), ask.customer_key, messages)
                ok = True
            except Forbidden:
                log.info("a customer blocked the bot; campaign ask skipped")
            except TelegramError:
                log.warning("campaign ask failed", exc_info=True)
        await d.db(outbox.finish_campaign_send, send_id=ask.id, ok=ok)
        sent += 1
    return sent


async def send_notifications(bot: Bot, d: BotDeps, batch: int = 20) -> int:
    """Tell customers about status changes, one claim at a time. When Rasa is unreachable
    the claim is released and the batch stops, so the notice goes out once Rasa is back."""
    sent = 0
    for _ in range(batch):
        notices = await d.db(outbox.claim_notifications, channel="telegram", limit=1)
        if not notices:
            break
        n = notices[0]
        async with d.chat_locks[int(n.chat_id)]:
            try:
                messages = await d.rasa.trigger_intent(
                    n.customer_key, "notify_status", {"ref": n.ref, "status": n.status}
                )
            except RasaUnavailable:
                log.warning("Rasa unavailable; status notices wait for it")
                await d.db(outbox.release_notification, notice_id=n.id)
                break  # try again on a later tick
            try:
                await deliver(bot, d, int(n.chat_id), n.customer_key, messages)
            except TelegramError:
                log.warning("status notification failed", exc_info=True)
        sent += 1
    return sent


async def run_forever(bot: Bot, d: BotDeps, interval: float = 1.0) -> None:
    """Poll the database for work; errors are logged and the loop goes on."""
    while True:
        try:
            await replay_inbox(bot, d)
            busy = await send_campaign_asks(bot, d)
            busy += await send_notifications(bot, d)
        except asyncio.CancelledError:
            raise
        except DBAPIError:
            log.warning("database unavailable; background work retries")
            busy = 0
        except Exception:
            log.exception("background work failed; retrying")
            busy = 0
        await asyncio.sleep(0.05 if busy else interval)
