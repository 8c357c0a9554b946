"""Background work for any channel: replay kept messages, campaign asks, status notices.

One loop per process (`run_forever`), started by the process that runs the channels
(the bot for Telegram; a WhatsApp process for WhatsApp) and given those channels: each
channel claims only its own customers' asks and notices (the outbox claims by channel).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import DBAPIError

from earshot.conversations import queries as conversations
from earshot.gateway.model import Channel, Purpose, Sent
from earshot.gateway.rasa import RasaUnavailable
from earshot.gateway.service import Gateway
from earshot.outreach import outbox

log = logging.getLogger("earshot.gateway.outreach")


async def _language(gw: Gateway, key: str) -> str:
    stored = await gw.db(conversations.get_customer_language, user_key=key)
    languages = gw.settings.languages
    return stored if stored in languages else gw.settings.default_language


async def _send(
    gw: Gateway,
    channel: Channel,
    key: str,
    chat_id: str,
    messages: list[dict[str, Any]],
    purpose: Purpose,
) -> Sent | None:
    """Deliver proactive messages; None when the channel failed (logged)."""
    try:
        return await gw.deliver(
            key=key,
            chat_id=chat_id,
            messages=messages,
            channel=channel,
            language=await _language(gw, key),
            purpose=purpose,
        )
    except (DBAPIError, asyncio.CancelledError):
        raise
    except Exception:  # the channel's own error (blocked bot, API refusal): not retried
        log.warning("%s: a %s message failed", channel.name, purpose.value, exc_info=True)
        return None


async def send_campaign_asks(gw: Gateway, channel: Channel, batch: int = 20) -> int:
    """Ask pending campaign questions, one claim at a time: a crash loses at most the one
    ask in flight and never asks anyone twice."""
    done = 0
    await gw.db(outbox.fail_stale_sends)
    for _ in range(batch):
        asks = await gw.db(outbox.claim_campaign_sends, channel=channel.name, limit=1)
        if not asks:
            break
        ask = asks[0]
        # Under the customer's lock: the ask must not interleave with one of their turns.
        async with gw.customer_lock(ask.customer_key):
            try:
                messages = await gw.rasa.trigger_intent(
                    ask.customer_key, "campaign_ask", {"campaign": ask.campaign_id}
                )
            except RasaUnavailable:
                await gw.db(outbox.release_campaign_send, send_id=ask.id)
                break  # try again on a later tick
            sent = await _send(
                gw, channel, ask.customer_key, ask.chat_id, messages, Purpose.CAMPAIGN
            )
        skipped = sent.skipped if sent is not None else None
        if skipped:
            log.info("%s: campaign ask skipped (%s)", channel.name, skipped)
        await gw.db(
            outbox.finish_campaign_send, send_id=ask.id, ok=sent is not None, skipped=skipped
        )
        done += 1
    return done


async def send_notifications(gw: Gateway, channel: Channel, batch: int = 20) -> int:
    """Tell customers about status changes, one claim at a time. When Rasa is unreachable
    the claim is released and the batch stops, so the notice goes out once Rasa is back."""
    done = 0
    for _ in range(batch):
        notices = await gw.db(outbox.claim_notifications, channel=channel.name, limit=1)
        if not notices:
            break
        n = notices[0]
        async with gw.customer_lock(n.customer_key):
            try:
                messages = await gw.rasa.trigger_intent(
                    n.customer_key, "notify_status", {"ref": n.ref, "status": n.status}
                )
            except RasaUnavailable:
                log.warning("Rasa unavailable; status notices wait for it")
                await gw.db(outbox.release_notification, notice_id=n.id)
                break  # try again on a later tick
            sent = await _send(gw, channel, n.customer_key, n.chat_id, messages, Purpose.NOTICE)
        if sent is not None and sent.skipped:
            log.info("%s: status notice skipped (%s)", channel.name, sent.skipped)
            await gw.db(outbox.skip_notification, notice_id=n.id, reason=sent.skipped)
        done += 1
    return done


async def tick(gw: Gateway, channels: Sequence[Channel]) -> int:
    """One round of background work; how much was done."""
    busy = await gw.replay_inbox(channels)
    for channel in channels:
        if not getattr(channel, "proactive", True):
            continue
        busy += await send_campaign_asks(gw, channel)
        busy += await send_notifications(gw, channel)
    return busy


async def run_forever(gw: Gateway, channels: Sequence[Channel], interval: float = 1.0) -> None:
    """Poll the database for work; errors are logged and the loop goes on."""
    while True:
        try:
            busy = await tick(gw, channels)
        except asyncio.CancelledError:
            raise
        except DBAPIError:
            log.warning("database unavailable; background work retries")
            busy = 0
        except Exception:
            log.exception("background work failed; retrying")
            busy = 0
        await asyncio.sleep(0.05 if busy else interval)
