"""Proactive messages waiting to be sent by a channel: campaign asks and status updates.

Rows are claimed (marked "sending") before they are sent, so a crash between sending and
marking never asks or tells anyone twice: at most once, by design.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from earshot.storage.models import CampaignSend, Customer, Feedback, Notification, utcnow


@dataclass(frozen=True)
class OutgoingAsk:
    id: int
    campaign_id: str
    customer_key: str
    chat_id: str


@dataclass(frozen=True)
class OutgoingNotice:
    id: int
    ref: str
    status: str
    customer_key: str
    chat_id: str


def claim_campaign_sends(session: Session, *, channel: str, limit: int = 20) -> list[OutgoingAsk]:
    """Claim pending campaign asks for customers reachable on `channel`."""
    rows = session.execute(
        select(
            CampaignSend.id, CampaignSend.campaign_id, CampaignSend.customer_key, Customer.chat_id
        )
        .join(Customer, Customer.user_key == CampaignSend.customer_key)
        .where(
            CampaignSend.status == "pending",
            Customer.channel == channel,
            Customer.chat_id.is_not(None),
            Customer.do_not_ask.is_(False),
        )
        .order_by(CampaignSend.id)
        .limit(limit)
    ).all()
    claimed = []
    for row in rows:
        # The status guard makes the claim safe against a second sender process.
        result = session.execute(
            update(CampaignSend)
            .where(CampaignSend.id == row.id, CampaignSend.status == "pending")
            .values(status="sending", sent_at=utcnow())
        )
        if result.rowcount:  # type: ignore[attr-defined]
            claimed.append(OutgoingAsk(row.id, row.campaign_id, row.customer_key, str(row.chat_id)))
    return claimed


def finish_campaign_send(
    session: Session, *, send_id: int, ok: bool, skipped: str | None = None
) -> None:
    """Mark an ask sent or failed; or skipped, with the channel's reason (e.g. WhatsApp's
    service window closed and no approved template): not sent, and counted as skipped."""
    status = "skipped" if skipped else "sent" if ok else "failed"
    session.execute(
        update(CampaignSend)
        .where(CampaignSend.id == send_id)
        .values(status=status, sent_at=utcnow(), skipped_reason=skipped)
    )


def fail_stale_sends(session: Session, *, older_than: timedelta = timedelta(seconds=30)) -> int:
    """Asks left "sending" by a sender that crashed may or may not have gone out: mark them
    failed rather than risk asking twice."""
    result = session.execute(
        update(CampaignSend)
        .where(CampaignSend.status == "sending", CampaignSend.sent_at < utcnow() - older_than)
        .values(status="failed")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def release_campaign_send(session: Session, *, send_id: int) -> None:
    """Nothing was sent (the assistant was unreachable): back in the queue."""
    session.execute(
        update(CampaignSend)
        .where(CampaignSend.id == send_id)
        .values(status="pending", sent_at=None)
    )


def claim_notifications(session: Session, *, channel: str, limit: int = 20) -> list[OutgoingNotice]:
    """Claim unsent status notifications (sent_at doubles as the claim marker)."""
    rows = session.execute(
        select(
            Notification.id,
            Feedback.ref,
            Notification.status,
            Notification.customer_key,
            Customer.chat_id,
        )
        .join(Feedback, Feedback.id == Notification.feedback_id)
        .join(Customer, Customer.user_key == Notification.customer_key)
        .where(
            Notification.sent_at.is_(None),
            Customer.channel == channel,
            Customer.chat_id.is_not(None),
        )
        .order_by(Notification.id)
        .limit(limit)
    ).all()
    claimed = []
    for row in rows:
        result = session.execute(
            update(Notification)
            .where(Notification.id == row.id, Notification.sent_at.is_(None))
            .values(sent_at=utcnow())
        )
        if result.rowcount:  # type: ignore[attr-defined]
            claimed.append(
                OutgoingNotice(row.id, row.ref, row.status, row.customer_key, str(row.chat_id))
            )
    return claimed


def skip_notification(session: Session, *, notice_id: int, reason: str) -> None:
    """The channel could not send the notice (e.g. its service window closed): recorded."""
    session.execute(
        update(Notification).where(Notification.id == notice_id).values(skipped_reason=reason)
    )


def release_notification(session: Session, *, notice_id: int) -> None:
    """Nothing was sent (the assistant was unreachable): back in the queue."""
    session.execute(update(Notification).where(Notification.id == notice_id).values(sent_at=None))


@dataclass(frozen=True)
class KeptMessage:
    id: int
    customer_key: str
    chat_id: str
    text: str
    meta: dict[str, object]


def pending_inbox(
    session: Session, *, limit: int = 50, channels: Sequence[str] | None = None
) -> list[KeptMessage]:
    """Messages kept while the assistant was unreachable, oldest first; with `channels`,
    only those of customers on these channels (a process replays its own channels)."""
    from earshot.storage.models import InboxMessage

    query = select(InboxMessage).where(InboxMessage.done_at.is_(None))
    if channels is not None:
        # A message spooled before its customer's row existed has no row to join: kept.
        query = query.outerjoin(Customer, Customer.user_key == InboxMessage.customer_key).where(
            or_(Customer.channel.in_(list(channels)), Customer.user_key.is_(None))
        )
    rows = session.scalars(query.order_by(InboxMessage.id).limit(limit)).all()
    kept = [KeptMessage(r.id, r.customer_key, r.chat_id, r.text, dict(r.meta or {})) for r in rows]
    if channels is None:
        return kept
    return [m for m in kept if str(m.meta.get("channel") or "telegram") in channels]


def has_pending_inbox(session: Session, *, customer_key: str) -> bool:
    from earshot.storage.models import InboxMessage

    return (
        session.scalar(
            select(InboxMessage.id).where(
                InboxMessage.customer_key == customer_key, InboxMessage.done_at.is_(None)
            )
        )
        is not None
    )


def keep_in_inbox(
    session: Session, *, customer_key: str, chat_id: str, text: str, meta: dict[str, object]
) -> None:
    from earshot.storage.models import InboxMessage

    session.add(InboxMessage(customer_key=customer_key, chat_id=chat_id, text=text, meta=meta))


def finish_inbox(session: Session, *, message_id: int) -> None:
    from earshot.storage.models import InboxMessage

    session.execute(
        update(InboxMessage).where(InboxMessage.id == message_id).values(done_at=utcnow())
    )
