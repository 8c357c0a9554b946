"""The X direct-message process: the webhook server, the gateway behind it, the channel
that sends DMs, and the background work (kept messages, campaign asks, status notices)."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from sqlalchemy.exc import DBAPIError

from earshot.conversations import queries as conversations
from earshot.gateway.model import Handoff, Incoming, Purpose, Reply, Sent
from earshot.gateway.service import Gateway
from earshot.gateway.support import addressed_support_desk
from earshot.privacy.identity import user_key
from earshot.settings import Settings
from earshot.storage.db import session_scope
from earshot.webhooks.app import WebhookApp
from xdm.api import DmApi, SendFailed
from xdm.inbound import CHANNEL
from xdm.render import layout_all
from xdm.webhook import Processor, build_webhook_app, webhook_spool

log = logging.getLogger("earshot.xdm")
# X refuses DMs the customer's settings do not allow: 349 "You cannot send messages to this
# user", 150 "not following you"; both come as 403.
CLOSED = frozenset({349, 150})


class XChannel:
    """What the gateway sends X direct messages through."""

    name = CHANNEL
    proactive = True  # a colleague or a notice may write later, where X allows it

    def __init__(self, settings: Settings, api: DmApi) -> None:
        self.settings, self.api = settings, api
        self._secret = settings.earshot_secret.get_secret_value()

    def key(self, user_id: str) -> str:
        """The customer's pseudonymous key for an X user id."""
        return user_key(self._secret, CHANNEL, user_id)

    async def _wrote_to_us(self, user_id: str) -> bool:
        def run() -> Any:
            with session_scope(self.settings.db_url) as session:
                return conversations.get_customer(session, user_key=self.key(user_id))

        try:
            return await asyncio.to_thread(run) is not None
        except DBAPIError:
            return False

    async def send(
        self, chat_id: str, replies: list[Reply], *, purpose: Purpose, language: str
    ) -> Sent:
        """Send the replies as DMs. X lets a business write only where the customer's DM
        settings allow: a refusal of a proactive message is a skip (counted), not a failure;
        a campaign ask never goes to someone who has not written to us."""
        if purpose is Purpose.CAMPAIGN and not await self._wrote_to_us(chat_id):
            return Sent(skipped="never_wrote")
        sent = Sent()
        for data in layout_all(replies, language):
            try:
                sent.message_ids.append(await self.api.send(chat_id, data))
            except SendFailed as exc:
                log.warning("X refused a %s DM: %s", purpose.value, exc)
                if exc.code in CLOSED or exc.status == 403:
                    sent.skipped = "dm_closed"
                elif purpose is Purpose.REPLY:  # nothing to record: reported in the log
                    sent.skipped = f"failed_{exc.code}"
                else:  # the outbox records a campaign ask or notice that failed as failed
                    raise
                break
        return sent


def dm_link(handoff: Handoff) -> str:
    """A link to the customer's DM: how a colleague finds them on X."""
    return f"https://twitter.com/messages/compose?recipient_id={handoff.chat_id}"


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""


def build(settings: Settings, *, gateway: Gateway | None = None) -> WebhookApp:
    """Wire the adapter: DM sender, channel, gateway, webhook processor, ASGI app."""
    s = settings
    assert s.x_enabled and s.x_consumer_key and s.x_user_id, "the X_ variables are required"
    api = DmApi(
        consumer_key=s.x_consumer_key,
        consumer_secret=_secret(s.x_consumer_secret),
        access_token=_secret(s.x_access_token),
        access_token_secret=_secret(s.x_access_token_secret),
        base_url=s.x_api_base_url,
        max_wait_s=s.x_max_rate_wait_s,
    )
    channel = XChannel(s, api)
    gw = gateway or Gateway(s, support=addressed_support_desk(s, dm_link))

    async def handle(message: Incoming) -> None:
        await gw.handle(message, channel)

    processor = Processor(
        handle,
        s.db_url,
        webhook_spool(s),
        release=partial(conversations.release_message, channel=CHANNEL),
    )
    asgi = build_webhook_app(
        path=s.x_webhook_path,
        consumer_secret=_secret(s.x_consumer_secret),
        our_user_id=s.x_user_id,
        processor=processor,
        key_of=channel.key,
    )
    return WebhookApp(s, gw, [channel], processor, asgi, api)


async def serve(settings: Settings) -> None:
    """Run until stopped (earshot.webhooks.serve)."""
    await build(settings).serve(host=settings.x_webhook_listen, port=settings.x_webhook_port)
