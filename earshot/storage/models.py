"""SQLAlchemy 2.0 typed models of the app database.

Raw channel ids live only in `customers` (needed to write back to a customer) and are
deleted with it; every other table refers to a customer by the pseudonymous key.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored and returned in UTC (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime; use UTC-aware datetimes")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_key: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(8))
    language_chosen: Mapped[bool] = mapped_column(Boolean, default=False)
    do_not_ask: Mapped[bool] = mapped_column(Boolean, default=False)
    last_asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(16), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    channel: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    campaign_id: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8), default="en")
    customer_key: Mapped[str | None] = mapped_column(String(64), index=True)
    product: Mapped[str | None] = mapped_column(String(32), index=True)
    type: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    benefit: Mapped[str | None] = mapped_column(Text)
    frequency: Mapped[str | None] = mapped_column(String(16))
    importance: Mapped[str | None] = mapped_column(String(16))
    sentiment: Mapped[float | None] = mapped_column(Float)
    attachments: Mapped[list[str]] = mapped_column(JSON, default=list)
    complete: Mapped[bool] = mapped_column(Boolean, default=True)
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_version: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("feedback.id"))
    supporters: Mapped[int] = mapped_column(Integer, default=1)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)


class Supporter(Base):
    """A customer who said "that's what I mean" to an existing item."""

    __tablename__ = "feedback_supporters"
    __table_args__ = (UniqueConstraint("feedback_id", "customer_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feedback_id: Mapped[int] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"))
    customer_key: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Contact(Base):
    """Contact details, stored only with consent and deleted on request."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_key: Mapped[str] = mapped_column(String(64), index=True)
    feedback_id: Mapped[int | None] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"))
    detail: Mapped[str] = mapped_column(Text)
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    consent_version: Mapped[str] = mapped_column(String(16))


class AskLog(Base):
    """Every time the assistant asked for feedback, and what came of it."""

    __tablename__ = "ask_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_key: Mapped[str] = mapped_column(String(64), index=True)
    trigger: Mapped[str] = mapped_column(String(32))
    campaign_id: Mapped[str | None] = mapped_column(String(32))
    product: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16), default="asked")
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ServiceRating(Base):
    """A "did that help?" vote on a service answer."""

    __tablename__ = "service_ratings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(64), index=True)
    helpful: Mapped[bool] = mapped_column(Boolean)
    customer_key: Mapped[str | None] = mapped_column(String(64), index=True)
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CallbackPayload(Base):
    """Button payloads too long for Telegram's 64-byte callback_data."""

    __tablename__ = "callback_payloads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_key: Mapped[str | None] = mapped_column(String(64), index=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProcessedUpdate(Base):
    """Telegram update ids already handled, so a redelivery is not processed twice."""

    __tablename__ = "processed_updates"

    bot_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    customer_key: Mapped[str | None] = mapped_column(String(64), index=True)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboxMessage(Base):
    """A customer message kept while Rasa was unreachable, replayed when it is back."""

    __tablename__ = "inbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_key: Mapped[str] = mapped_column(String(64), index=True)
    chat_id: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class FeedbackEvent(Base):
    """Triage history: who changed what, when, from which value to which."""

    __tablename__ = "feedback_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feedback_id: Mapped[int] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"))
    actor: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notification(Base):
    """Outbox of closing-the-loop messages: one row per customer per status change."""

    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("feedback_id", "customer_key", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feedback_id: Mapped[int] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"))
    customer_key: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why the channel did not send it (e.g. WhatsApp's window closed, no template).
    skipped_reason: Mapped[str | None] = mapped_column(String(64))


class CampaignSend(Base):
    """One row per customer per campaign, so nobody is asked twice, even after a crash."""

    __tablename__ = "campaign_sends"
    __table_args__ = (UniqueConstraint("campaign_id", "customer_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(32), index=True)
    customer_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    skipped_reason: Mapped[str | None] = mapped_column(String(64))


class DashboardUser(Base):
    """A person who signs in to the dashboard (and, with a Telegram id, uses /stats and
    /export in Telegram): the one list of the team. Passwords are argon2 hashes."""

    __tablename__ = "dashboard_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    telegram_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DashboardSession(Base):
    """A signed-in dashboard session; deleting the row signs it out (logout, new password).

    The cookie carries a random token; only its SHA-256 is stored."""

    __tablename__ = "dashboard_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MisunderstoodMessage(Base):
    """A customer message the assistant likely got wrong, redacted, awaiting review.

    Reasons: fallback, out_of_scope, thumbs_down (the question whose answer got 👎),
    low_margin (the top two topics were close). `topics` holds what the model considered:
    [{"topic": key, "confidence": float}, ...]. `assignment` is what a team member said it
    is: a topic key, "out_of_scope" or "new_topic_needed".
    """

    __tablename__ = "misunderstood"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    customer_key: Mapped[str | None] = mapped_column(String(64), index=True)
    language: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    topics: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    answered_topic: Mapped[str | None] = mapped_column(String(64))
    margin: Mapped[float | None] = mapped_column(Float)
    assignment: Mapped[str | None] = mapped_column(String(64), index=True)
    assigned_by: Mapped[str | None] = mapped_column(String(64))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MisunderstoodEvent(Base):
    """Audit history of the Misunderstood queue: who assigned which message to what, when.

    Kept when the message itself is purged or erased (message_id becomes NULL): it holds
    no customer text, only the team member and the target.
    """

    __tablename__ = "misunderstood_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("misunderstood.id", ondelete="SET NULL"), index=True
    )
    actor: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(String(64))
    new_value: Mapped[str] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ServiceWindowColumns:
    """When a customer last wrote on a channel with a 24-hour window (WhatsApp, Messenger)."""

    customer_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_inbound_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProactiveSendColumns:
    """A proactive message (campaign ask, status notice, feedback ask) and the delivery
    status the channel's webhooks report for it. `ref` is the campaign id or the feedback
    reference; no phone number or channel user id is kept."""

    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    customer_key: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str | None] = mapped_column(String(64), index=True)
    template: Mapped[str | None] = mapped_column(String(512))  # WhatsApp template / Messenger tag
    status: Mapped[str] = mapped_column(String(16), default="accepted")
    error_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WhatsAppWindow(ServiceWindowColumns, Base):
    """When a WhatsApp customer last wrote: the 24-hour customer-service window opens then."""

    __tablename__ = "whatsapp_windows"


class WhatsAppSend(ProactiveSendColumns, Base):
    """A proactive WhatsApp message and its delivery status from WhatsApp's webhooks."""

    __tablename__ = "whatsapp_sends"


class MessengerWindow(ServiceWindowColumns, Base):
    """When a Messenger or Instagram customer last wrote: the standard messaging window."""

    __tablename__ = "messenger_windows"


class MessengerSend(ProactiveSendColumns, Base):
    """A proactive Messenger or Instagram message and its delivered/read status."""

    __tablename__ = "messenger_sends"


class IntegrationEvent(Base):
    """The integrations outbox: one row per event (item created, status changed, ...),
    written in the transaction that made the change, so both land or neither does.

    `payload` holds redacted text and item references only, never customer keys or chat
    ids. `key`, when set, makes an event happen once (e.g. one digest per week).
    `dispatched_at` is set when the deliverer has made its deliveries.
    """

    __tablename__ = "integration_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    key: Mapped[str | None] = mapped_column(String(128), unique=True)
    # The item the event is about, so erasing an item's author erases its events too.
    ref: Mapped[str | None] = mapped_column(String(16), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class IntegrationDelivery(Base):
    """One event going to one destination (a webhook endpoint or Slack), with its state.

    status: pending (will be tried at next_attempt_at), delivered, failed (a permanent
    error or out of attempts; "retry now" in the dashboard makes it pending again).
    """

    __tablename__ = "integration_deliveries"
    __table_args__ = (UniqueConstraint("event_id", "target"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("integration_events.id", ondelete="CASCADE"), index=True
    )
    target: Mapped[str] = mapped_column(String(80))
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IntegrationAttempt(Base):
    """Each try of a delivery: outcome, response code, duration and the next try."""

    __tablename__ = "integration_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("integration_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))  # delivered, retry, failed
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IssueLink(Base):
    """A GitHub issue or Jira issue made from a feedback item; its state follows the
    tracker's webhooks. `status_before` is the item's status when the issue closed, so a
    reopened issue puts the item back."""

    __tablename__ = "issue_links"
    __table_args__ = (UniqueConstraint("tracker", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feedback_id: Mapped[int] = mapped_column(
        ForeignKey("feedback.id", ondelete="CASCADE"), index=True
    )
    tracker: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(32), default="open")
    status_before: Mapped[str | None] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboundWebhook(Base):
    """Delivery ids of tracker webhooks already handled, so a redelivery changes nothing."""

    __tablename__ = "inbound_webhooks"
    __table_args__ = (UniqueConstraint("source", "delivery_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    delivery_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Theme(Base):
    """A group of feedback items about one thing, found by `earshot themes` (issue 21).

    status: active, merged (into `merged_into_id` by a team member) or retired (no items
    left after a run). `label_pinned`: a team member named it, runs keep the name.
    `edited`: a team member merged or split it, so its members are kept (`manual`).
    `centroid`: float32 bytes, the unit mean of its members' vectors at the last run.
    """

    __tablename__ = "themes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    language: Mapped[str] = mapped_column(String(8), index=True)
    label: Mapped[str] = mapped_column(String(160))
    label_pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("themes.id"))
    edited: Mapped[bool] = mapped_column(Boolean, default=False)
    centroid: Mapped[bytes | None] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    emerging_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    emerging_announced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ThemeMember(Base):
    """Which theme an item is in; a row with no theme means "seen, in no theme yet".

    `manual`: put there by a team member's merge or split, so runs leave it there."""

    __tablename__ = "theme_members"

    feedback_id: Mapped[int] = mapped_column(
        ForeignKey("feedback.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    theme_id: Mapped[int | None] = mapped_column(
        ForeignKey("themes.id", ondelete="SET NULL"), index=True
    )
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    # Checked for duplicates of open items (earshot/themes/service.py `process_new`).
    checked: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ThemeModel(Base):
    """One language's vector space of the last full theme run (earshot/themes/features.py):
    the IDF of each word stem and the mean meaning vector (float32 bytes)."""

    __tablename__ = "theme_models"

    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    idf: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    mean: Mapped[bytes] = mapped_column(LargeBinary)
    documents: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DuplicateSuggestion(Base):
    """ "`feedback_id` may duplicate the open item `candidate_id`", for a team member to
    merge in one click or dismiss. status: open, merged, dismissed."""

    __tablename__ = "duplicate_suggestions"
    __table_args__ = (UniqueConstraint("feedback_id", "candidate_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feedback_id: Mapped[int] = mapped_column(
        ForeignKey("feedback.id", ondelete="CASCADE"), index=True
    )
    candidate_id: Mapped[int] = mapped_column(
        ForeignKey("feedback.id", ondelete="CASCADE"), index=True
    )
    score: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
