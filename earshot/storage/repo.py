"""Repository functions: keyword-only, each takes the caller's Session and never commits.

The caller owns the transaction (see `session_scope`), so a turn's writes land together.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from earshot import language as lang
from earshot.feedback.schemas import FeedbackIn, category_for
from earshot.outreach.outbox import has_pending_inbox
from earshot.privacy.identity import new_ref
from earshot.storage.db import insert_ignoring_conflicts
from earshot.storage.models import (
    AskLog,
    CallbackPayload,
    Contact,
    Customer,
    Feedback,
    ProcessedUpdate,
    ServiceRating,
    utcnow,
)


def touch_customer(
    session: Session,
    *,
    user_key: str,
    channel: str,
    chat_id: str | None = None,
    language: str | None = None,
) -> Customer:
    """Get or create the customer row and note that we saw them now."""
    customer = session.scalar(select(Customer).where(Customer.user_key == user_key))
    if customer is None:
        customer = Customer(user_key=user_key, channel=channel, chat_id=chat_id, language=language)
        session.add(customer)
        session.flush()
        return customer
    customer.last_seen_at = utcnow()
    if chat_id and customer.chat_id != chat_id:
        customer.chat_id = chat_id
    if language and not customer.language_chosen:
        customer.language = language
    return customer


def see_customer(
    session: Session,
    *,
    user_key: str,
    channel: str,
    chat_id: str | None,
    reported_language: str | None,
    text: str,
    languages: Sequence[str],
    default_language: str,
) -> tuple[str, bool]:
    """A customer's message arrived: note that we saw them, and a language they chose in it.

    Returns the language to answer in and whether older messages of theirs still wait in
    the inbox (the new one must queue behind them): one transaction for the bot's turn.
    Language precedence: explicit choice, the messenger's language, detection on the first
    substantive message (remembered), the default.
    """
    chosen = lang.chosen(text, languages)
    if chosen:
        choose_language(session, user_key=user_key, channel=channel, language=chosen)
    customer = touch_customer(session, user_key=user_key, channel=channel, chat_id=chat_id)
    reported = lang.normalise(reported_language)
    if not customer.language_chosen:
        if reported in languages:
            customer.language = reported
        elif customer.language not in languages:
            customer.language = lang.detect(text, languages)
    current = customer.language
    answer_in = current if current is not None and current in languages else default_language
    return answer_in, has_pending_inbox(session, customer_key=user_key)


def choose_language(session: Session, *, user_key: str, channel: str, language: str) -> None:
    """The customer picked a language: it beats every other signal from now on."""
    customer = touch_customer(session, user_key=user_key, channel=channel)
    customer.language = language
    customer.language_chosen = True


def get_customer_language(session: Session, *, user_key: str) -> str | None:
    """The language we last answered this customer in (chosen or detected), if any."""
    return session.scalar(select(Customer.language).where(Customer.user_key == user_key))


def get_customer(session: Session, *, user_key: str) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.user_key == user_key))


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


def store_payload(session: Session, *, payload: str, customer_key: str | None) -> str:
    """Keep a long button payload server-side; returns the short id to put in callback_data."""
    pid = secrets.token_urlsafe(12)
    session.add(CallbackPayload(id=pid, payload=payload, customer_key=customer_key))
    return pid


def load_payload(
    session: Session, *, pid: str, customer_key: str | None, max_age: timedelta = timedelta(days=7)
) -> str | None:
    """The stored payload, or None when unknown, expired or someone else's."""
    row = session.get(CallbackPayload, pid)
    if row is None or row.customer_key != customer_key:
        return None
    if utcnow() - row.created_at > max_age:
        return None
    return row.payload


def claim_update(
    session: Session, *, update_id: int, customer_key: str | None, bot_id: int = 0
) -> bool:
    """Record a bot's update id; False if it was already processed (a redelivery).

    One INSERT … ON CONFLICT DO NOTHING (SQLite and PostgreSQL alike): it runs for every
    update, and a lookup plus a savepoint cost four statements.
    """
    stmt = (
        insert_ignoring_conflicts(session, ProcessedUpdate)
        .values(bot_id=bot_id, update_id=update_id, customer_key=customer_key)
        .returning(ProcessedUpdate.update_id)
    )
    return session.execute(stmt).first() is not None  # no row back: it was there already


def release_update(session: Session, *, update_id: int, bot_id: int = 0) -> None:
    """Forget an update id, so an update whose processing was cut short runs again."""
    session.execute(
        delete(ProcessedUpdate).where(
            ProcessedUpdate.bot_id == bot_id, ProcessedUpdate.update_id == update_id
        )
    )

