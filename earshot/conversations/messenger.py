"""What the Messenger adapter keeps (Facebook Messenger and Instagram direct messages):
when each customer last wrote (the 24-hour standard messaging window), and proactive
sends with the delivered/read statuses Meta reports for them. The queries are WhatsApp's
(earshot/conversations/whatsapp.py) on Messenger's own tables; reads and deliveries come
as watermarks ("everything sent before this moment"), so they have a query of their own.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from earshot.conversations import whatsapp as shared
from earshot.storage.models import MessengerSend, MessengerWindow, utcnow

note_inbound = partial(shared.note_inbound, table=MessengerWindow)
window_open = partial(shared.window_open, table=MessengerWindow)
record_send = partial(shared.record_send, table=MessengerSend)
record_status = partial(shared.record_status, table=MessengerSend)
status_counts = partial(shared.status_counts, table=MessengerSend)
proactive_ref = shared.proactive_ref


def record_watermark(session: Session, *, customer_key: str, status: str, watermark_ms: int) -> int:
    """Every recorded send to this customer up to the watermark (epoch milliseconds) was
    delivered or read; returns how many moved forward."""
    at = datetime.fromtimestamp(watermark_ms / 1000, tz=timezone.utc)
    rows = session.scalars(
        select(MessengerSend).where(
            MessengerSend.customer_key == customer_key, MessengerSend.created_at <= at
        )
    ).all()
    moved = 0
    for row in rows:
        if shared.STATUS_ORDER.get(row.status, 0) < shared.STATUS_ORDER[status]:
            row.status, row.updated_at = status, utcnow()
            moved += 1
    return moved
