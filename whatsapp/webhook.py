"""The WhatsApp webhook: Meta's handshake and signed POSTs (earshot/webhooks/graph.py,
shared with Messenger), and what WhatsApp's stored entries mean.

Each message and status is one spool entry (typed text redacted), stored before the 200 and
processed after it; redeliveries are answered once (the gateway de-duplicates by
WhatsApp's message id, durably).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette

from earshot.conversations import whatsapp as wa_queries
from earshot.settings import Settings
from earshot.storage.spool import Spool
from earshot.webhooks.graph import SpoolProcessor, build_graph_webhook_app
from whatsapp import inbound

log = logging.getLogger("earshot.whatsapp.webhook")


def webhook_spool(settings: Settings) -> Spool:
    """Messages and statuses answered with 200 but not processed yet."""
    return Spool(settings.data_dir / "spool" / "whatsapp")


class Processor(SpoolProcessor):
    """Acts on stored entries: a message goes to the gateway (one at a time per customer,
    in the order WhatsApp sent them), a status onto the record of the message it is about."""

    name = "WhatsApp"

    async def process(self, entry: dict[str, Any]) -> None:
        if "status" in entry:
            st = inbound.status(entry)
            try:
                await self._db(
                    wa_queries.record_status,
                    message_id=st.message_id,
                    status=st.status,
                    error_code=st.error_code,
                )
            except DBAPIError:
                log.warning("database unavailable; a delivery status was not recorded")
            if st.status == "failed":
                log.info("WhatsApp could not deliver a message (code %s)", st.error_code)
            return
        if "message" not in entry:
            return
        msg = inbound.incoming(entry)
        if entry.get("customer_key"):
            try:  # the customer wrote: their 24-hour window opens (or stays open)
                await self._db(wa_queries.note_inbound, customer_key=entry["customer_key"])
            except DBAPIError:
                log.warning("database unavailable; the service window was not updated")
        await self.handle(msg)


def build_webhook_app(
    *,
    path: str,
    app_secret: str,
    verify_token: str,
    processor: Processor,
    key_of: Callable[[str], str],
) -> Starlette:
    """The ASGI app: GET/POST `path` for Meta, GET /healthz for the supervisor."""
    return build_graph_webhook_app(
        path=path,
        app_secret=app_secret,
        verify_token=verify_token,
        processor=processor,
        split=lambda payload: inbound.split(payload, key_of),
    )
