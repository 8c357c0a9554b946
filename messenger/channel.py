"""`Channel.send` for Messenger and Instagram: the 24-hour standard messaging window, message
tags outside it where Meta allows them, and the record of proactive messages whose
delivered/read receipts follow.

Replies (Purpose.REPLY) go as messaging_type RESPONSE: they answer what the customer just
sent. A feedback ask, campaign question or status notice goes as UPDATE while the
customer's window is open (they wrote, pressed or opened a link in the last 24 hours).
After that Meta delivers only tagged, non-promotional messages: a status notice about the
customer's own feedback goes with `messenger.notice_tag` (ACCOUNT_UPDATE by default) on
Messenger; campaign questions (promotional) and feedback asks (surveys) may carry no tag
and Instagram accepts none of these tags, so they are not sent:
`Sent(skipped="window_closed")`, counted like WhatsApp's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from earshot.conversations import messenger as queries
from earshot.gateway.model import Purpose, Reply, Sent
from earshot.privacy.identity import user_key
from earshot.settings import Settings
from earshot.storage.db import session_scope
from messenger import render
from messenger.api import SendApi, SendFailed

log = logging.getLogger("earshot.messenger")


class MessengerChannel:
    """What the gateway sends Messenger (or Instagram) messages through."""

    proactive = True  # the Page may write later (inside the window, or tagged)

    def __init__(self, settings: Settings, api: SendApi, platform: str = "messenger") -> None:
        self.settings, self.api, self.name = settings, api, platform
        self._secret = settings.earshot_secret.get_secret_value()
        instagram = platform == "instagram"
        self.text_limit = render.INSTAGRAM_TEXT_LIMIT if instagram else render.TEXT_LIMIT
        self.notice_tag = None if instagram else settings.messenger.notice_tag

    def key(self, sender_id: str) -> str:
        """The customer's pseudonymous key for a page- (or Instagram-) scoped id."""
        return user_key(self._secret, self.name, sender_id)

    async def _db(self, fn: Any, /, **kwargs: Any) -> Any:
        def run() -> Any:
            with session_scope(self.settings.db_url) as session:
                return fn(session, **kwargs)

        return await asyncio.to_thread(run)

    async def typing(self, chat_id: str) -> None:
        """Show "typing…" (the gateway calls this only when an answer takes a while)."""
        await self.api.action(chat_id, "typing_on")

    async def send(
        self,
        chat_id: str,
        replies: list[Reply],
        *,
        purpose: Purpose,
        language: str,
        ref: str | None = None,
    ) -> Sent:
        """Show the replies; proactive ones honour the window. `ref` (a campaign id or
        feedback reference) is recorded with proactive sends for their receipts."""
        key = self.key(chat_id)
        messaging_type, tag = "RESPONSE", None
        if purpose is not Purpose.REPLY:
            messaging_type = "UPDATE"
            if not await self._db(queries.window_open, customer_key=key):
                if purpose is not Purpose.NOTICE or not self.notice_tag:
                    log.info("%s not sent: the customer's window has closed", purpose.value)
                    return Sent(skipped="window_closed")
                messaging_type, tag = "MESSAGE_TAG", self.notice_tag
        sent = Sent()
        for out in render.layout_all(replies, language, text_limit=self.text_limit):
            try:
                mid = await self.api.send(
                    chat_id, render.message(out), messaging_type=messaging_type, tag=tag
                )
            except SendFailed as exc:
                log.warning("%s refused a %s message: %s", self.name, purpose.value, exc)
                sent.skipped = "window_closed" if exc.window_closed else f"failed_{exc.code}"
                break
            sent.message_ids.append(mid)
        if purpose is not Purpose.REPLY and sent.message_ids:
            if ref is None:  # the gateway's outreach does not say: the claimed outbox row
                ref = await self._db(queries.proactive_ref, customer_key=key, kind=purpose.value)
            await self._db(
                _record, ids=sent.message_ids, key=key, purpose=purpose, ref=ref, tag=tag
            )
        return sent


def _record(
    session: Any, *, ids: list[str], key: str, purpose: Purpose, ref: str | None, tag: str | None
) -> None:
    for mid in ids:
        queries.record_send(
            session, message_id=mid, customer_key=key, kind=purpose.value, ref=ref, template=tag
        )
