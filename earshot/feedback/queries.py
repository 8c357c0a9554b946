"""The SQL for feedback items, service ratings and asks: keyword-only functions that take
the caller's Session and never commit (the caller owns the transaction, see
`session_scope`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from earshot.conversations.queries import get_customer
from earshot.feedback.schemas import FeedbackIn, category_for
from earshot.privacy.identity import new_ref
from earshot.storage.models import (
    AskLog,
    Contact,
    Customer,
    Feedback,
    ServiceRating,
    utcnow,
)


def create_feedback(session: Session, *, item: FeedbackIn, ref_prefix: str) -> Feedback:
    """Store a feedback item under a fresh unique reference code."""
    for _ in range(20):
        ref = new_ref(ref_prefix)
        if session.scalar(select(Feedback.id).where(Feedback.ref == ref)) is None:
            break
    else:  # pragma: no cover - 31^4 codes; twenty collisions in a row means a bug
        raise RuntimeError("could not allocate a reference code")
    row = Feedback(
        ref=ref,
        channel=item.channel,
        source=item.source.value,
        campaign_id=item.campaign_id,
        language=item.language,
        customer_key=item.customer_key,
        product=item.product,
        type=item.type.value,
        category=category_for(item.type, item.description),
        description=item.description,
        benefit=item.benefit,
        frequency=item.frequency,
        importance=item.importance.value if item.importance else None,
        sentiment=item.sentiment,
        attachments=list(item.attachments),
        complete=item.complete,
        consent=item.consent,
        consent_at=utcnow() if item.consent else None,
        consent_version=item.consent_version if item.consent else None,
        status="new",
        supporters=1,
        tags=[],
    )
    session.add(row)
    session.flush()
    if item.consent and item.contact and item.customer_key:
        session.add(
            Contact(
                customer_key=item.customer_key,
                feedback_id=row.id,
                detail=item.contact,
                consent_version=item.consent_version or "v1",
            )
        )
    return row


def feedback_by_ref(session: Session, *, ref: str) -> Feedback | None:
    return session.scalar(select(Feedback).where(Feedback.ref == ref.upper()))


def feedback_of_customer(
    session: Session, *, customer_key: str, limit: int = 20
) -> Sequence[Feedback]:
    stmt = (
        select(Feedback)
        .where(Feedback.customer_key == customer_key)
        .order_by(Feedback.created_at.desc(), Feedback.id.desc())
        .limit(limit)
    )
    return session.scalars(stmt).all()


def record_rating(
    session: Session, *, topic: str, helpful: bool, customer_key: str | None, language: str | None
) -> ServiceRating:
    row = ServiceRating(topic=topic, helpful=helpful, customer_key=customer_key, language=language)
    session.add(row)
    return row


def log_ask(
    session: Session,
    *,
    customer_key: str,
    trigger: str,
    product: str | None = None,
    campaign_id: str | None = None,
) -> AskLog:
    row = AskLog(
        customer_key=customer_key, trigger=trigger, product=product, campaign_id=campaign_id
    )
    session.add(row)
    session.execute(
        update(Customer).where(Customer.user_key == customer_key).values(last_asked_at=utcnow())
    )
    return row


def may_ask(
    session: Session, *, customer_key: str, interval_days: int, now: datetime | None = None
) -> bool:
    """True unless the customer opted out or was asked within the interval."""
    customer = get_customer(session, user_key=customer_key)
    if customer is None:
        return True
    if customer.do_not_ask:
        return False
    if customer.last_asked_at is None:
        return True
    return (now or utcnow()) - customer.last_asked_at >= timedelta(days=interval_days)


def set_do_not_ask(session: Session, *, customer_key: str, value: bool = True) -> None:
    session.execute(
        update(Customer).where(Customer.user_key == customer_key).values(do_not_ask=value)
    )
