"""The Messenger/Instagram webhook: Meta's handshake and signed POSTs (shared with
WhatsApp in earshot/webhooks/graph.py), and what the stored entries mean.

Messages, quick replies, postbacks and referrals go to the gateway (de-duplicated there
by the message id, durably: a redelivered webhook is answered once); delivery and read
receipts move the recorded proactive sends forward.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette

from earshot.conversations import messenger as queries
from earshot.conversations import queries as conversations
from earshot.settings import Settings
from earshot.storage.spool import Spool
from earshot.webhooks.graph import Entry, Handle, SpoolProcessor, build_graph_webhook_app
from messenger import inbound

log = logging.getLogger("earshot.messenger.webhook")
Lock = Callable[[str], contextlib.AbstractAsyncContextManager[None]]


def _no_lock(_: str) -> contextlib.AbstractAsyncContextManager[None]:
    return contextlib.nullcontext()


def webhook_spool(settings: Settings) -> Spool:
    """Events answered with 200 but not processed yet."""
    return Spool(settings.data_dir / "spool" / "messenger")


class Processor(SpoolProcessor):
    """Acts on stored entries, one at a time per customer in the order Meta sent them."""

    name = "Messenger"

    def __init__(
        self, handle: Handle, db_url: str, spool: Spool, *, customer_lock: Lock = _no_lock
    ) -> None:
        super().__init__(handle, db_url, spool)
        # Receipts wait for a proactive send in flight to the same customer (the gateway's
        # customer lock), so a fast receipt finds the send it is about recorded.
        self.customer_lock = customer_lock

    async def release(self, entry: Entry) -> None:
        mid = (entry.get("message") or {}).get("id")
        if mid:
            await self._db(
                conversations.release_message, channel=entry["platform"], message_id=str(mid)
            )

    async def process(self, entry: Entry) -> None:
        key = str(entry.get("customer_key") or "")
        if "status" in entry:
            async with self.customer_lock(key):
                await self._receipt(key, entry["status"])
            return
        if "message" not in entry:
            return
        try:  # the customer wrote, pressed or opened a link: the 24-hour window opens
            await self._db(queries.note_inbound, customer_key=key)
        except DBAPIError:
            log.warning("database unavailable; the messaging window was not updated")
        await self.handle(inbound.incoming(entry))

    async def _receipt(self, key: str, st: dict[str, Any]) -> None:
        """Move the recorded proactive sends a delivery or read receipt covers forward."""
        try:
            for mid in st.get("mids") or []:
                await self._db(queries.record_status, message_id=str(mid), status=st["status"])
            if st.get("watermark"):
                await self._db(
                    queries.record_watermark,
                    customer_key=key,
                    status=st["status"],
                    watermark_ms=int(st["watermark"]),
                )
        except DBAPIError:
            log.warning("database unavailable; a receipt was not recorded")


def build_webhook_app(
    *,
    path: str,
    app_secret: str,
    verify_token: str,
    processor: Processor,
    key_of: inbound.KeyOf,
    platforms: frozenset[str],
) -> Starlette:
    """The ASGI app: GET/POST `path` for Meta, GET /healthz for the supervisor."""
    return build_graph_webhook_app(
        path=path,
        app_secret=app_secret,
        verify_token=verify_token,
        processor=processor,
        split=lambda payload: inbound.split(payload, key_of, platforms),
    )
