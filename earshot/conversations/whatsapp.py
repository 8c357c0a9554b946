"""What the WhatsApp adapter keeps: when each customer last wrote (the 24-hour
customer-service window), and proactive sends with the delivery statuses WhatsApp reports
for them. Keyword-only functions on the caller's Session; they never commit.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from earshot.storage.models import (
    CampaignSend,
    Feedback,
    Notification,
    WhatsAppSend,
    WhatsAppWindow,
    utcnow,
)

WINDOW = timedelta(hours=24)
# A status only moves forward (WhatsApp may deliver "delivered" after "read").
STATUS_ORDER = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}


def note_inbound(session: Session, *, customer_key: str, at: datetime | None = None) -> None:
    """The customer wrote: their customer-service window runs 24 hours from `at`."""
    at = at or utcnow()
    row = session.get(WhatsAppWindow, customer_key)
    if row is None:
        session.add(WhatsAppWindow(customer_key=customer_key, last_inbound_at=at))
    elif row.last_inbound_at < at:
        row.last_inbound_at = at


def window_open(session: Session, *, customer_key: str, now: datetime | None = None) -> bool:
    """True while the customer wrote less than 24 hours ago (free-form messages allowed)."""
    last = session.scalar(
        select(WhatsAppWindow.last_inbound_at).where(WhatsAppWindow.customer_key == customer_key)
    )
    return last is not None and (now or utcnow()) - last < WINDOW


def record_send(
    session: Session,
    *,
    message_id: str,
    customer_key: str,
    kind: str,
    ref: str | None,
    template: str | None = None,
) -> None:
    """A proactive message went out (accepted by WhatsApp); statuses follow by webhook."""
    now = utcnow()
    session.add(
        WhatsAppSend(
            message_id=message_id,
            customer_key=customer_key,
            kind=kind,
            ref=ref,
            template=template,
            status="accepted",
            created_at=now,
            updated_at=now,
        )
    )


def record_status(
    session: Session, *, message_id: str, status: str, error_code: int | None = None
) -> bool:
    """Apply a status webhook to a recorded send; False for messages not recorded
    (replies are not tracked) or statuses older than the one we have."""
    row = session.get(WhatsAppSend, message_id)
    if row is None or status not in STATUS_ORDER:
        return False
    if STATUS_ORDER[status] <= STATUS_ORDER.get(row.status, 0) and status != "failed":
        return False
    row.status, row.updated_at = status, utcnow()
    if error_code is not None:
        row.error_code = error_code
    return True


def status_counts(session: Session, *, kind: str, ref: str | None = None) -> dict[str, int]:
    """How many proactive sends of a kind (and campaign/feedback ref) are in each status."""
    stmt = select(WhatsAppSend.status, func.count()).where(WhatsAppSend.kind == kind)
    if ref is not None:
        stmt = stmt.where(WhatsAppSend.ref == ref)
    return {s: int(n) for s, n in session.execute(stmt.group_by(WhatsAppSend.status)).all()}


def proactive_ref(session: Session, *, customer_key: str, kind: str) -> str | None:
    """The campaign id or feedback reference a proactive message being sent is about: the
    outbox row claimed for this customer just before the send (the gateway's outreach
    claims one at a time, under the customer's lock)."""
    if kind == "campaign":
        return session.scalar(
            select(CampaignSend.campaign_id)
            .where(CampaignSend.customer_key == customer_key, CampaignSend.status == "sending")
            .order_by(CampaignSend.id.desc())
            .limit(1)
        )
    if kind == "notice":
        return session.scalar(
            select(Feedback.ref)
            .join(Notification, Notification.feedback_id == Feedback.id)
            .where(Notification.customer_key == customer_key, Notification.sent_at.is_not(None))
            .order_by(Notification.sent_at.desc(), Notification.id.desc())
            .limit(1)
        )
    return None
