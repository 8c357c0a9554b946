"""Storage behaviour on SQLite and PostgreSQL: what the product teams and customers rely on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from earshot.conversations import queries as conversations
from earshot.feedback import queries as feedback_queries
from earshot.feedback.schemas import FeedbackIn, FeedbackType, Importance, Source
from earshot.storage.models import Contact, Feedback, utcnow


@pytest.fixture
def db_url(committing_db: str) -> str:
    """A database of this module's own: a test here commits, and on SQLite that commit
    outlives the rolled-back session, so its rows would show in other modules' tests."""
    return committing_db


def test_migrations_create_every_table(engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert {
        "feedback",
        "customers",
        "contacts",
        "ask_log",
        "service_ratings",
        "alembic_version",
    } <= tables


def test_feedback_is_stored_field_by_field(session: Session) -> None:
    item = FeedbackIn(
        customer_key="k" * 32,
        channel="telegram",
        source=Source.deep_link,
        language="en",
        product="doorbell",
        type=FeedbackType.problem,
        description="  The doorbell keeps disconnecting  ",
        frequency="daily",
        importance=Importance.blocking,
        sentiment=-0.6,
        attachments=["file-1"],
        consent=True,
        consent_version="v1",
        contact="me@example.org",
    )
    row = feedback_queries.create_feedback(session, item=item, ref_prefix="LH")
    session.commit()
    got = session.scalar(select(Feedback).where(Feedback.ref == row.ref))
    assert got is not None
    assert got.ref.startswith("LH-") and len(got.ref) == 7
    assert got.description == "The doorbell keeps disconnecting"
    assert (got.product, got.type, got.category, got.source) == (
        "doorbell",
        "problem",
        "service",
        "deep_link",
    )
    assert (got.frequency, got.importance, got.sentiment) == ("daily", "blocking", -0.6)
    assert got.attachments == ["file-1"] and got.status == "new" and got.supporters == 1
    assert got.consent and got.consent_version == "v1" and got.consent_at is not None
    assert got.created_at.tzinfo is not None
    contact = session.scalar(select(Contact).where(Contact.feedback_id == got.id))
    assert contact is not None and contact.detail == "me@example.org"


def test_contact_is_not_stored_without_consent(session: Session) -> None:
    item = FeedbackIn(
        customer_key="a" * 32, description="x", contact="me@example.org", consent=False
    )
    row = feedback_queries.create_feedback(session, item=item, ref_prefix="LH")
    assert session.scalar(select(Contact).where(Contact.feedback_id == row.id)) is None


def test_refs_are_unique(session: Session) -> None:
    refs = {
        feedback_queries.create_feedback(
            session, item=FeedbackIn(description=str(i)), ref_prefix="LH"
        ).ref
        for i in range(200)
    }
    assert len(refs) == 200


def test_customers_own_feedback_is_listed_newest_first(session: Session) -> None:
    for text in ("first", "second"):
        feedback_queries.create_feedback(
            session, item=FeedbackIn(customer_key="c" * 32, description=text), ref_prefix="LH"
        )
    feedback_queries.create_feedback(
        session, item=FeedbackIn(customer_key="d" * 32, description="other"), ref_prefix="LH"
    )
    mine = feedback_queries.feedback_of_customer(session, customer_key="c" * 32)
    assert [f.description for f in mine] == ["second", "first"]


def test_update_is_claimed_once_per_bot(session: Session) -> None:
    assert conversations.claim_update(session, update_id=42, customer_key=None, bot_id=1)
    assert not conversations.claim_update(session, update_id=42, customer_key=None, bot_id=1)
    # Another bot (a new token) numbers its updates afresh: not a redelivery.
    assert conversations.claim_update(session, update_id=42, customer_key=None, bot_id=2)


def test_button_payloads_are_bound_to_their_customer(session: Session) -> None:
    pid = conversations.store_payload(session, payload='["/affirm"]', customer_key="me")
    assert conversations.load_payload(session, pid=pid, customer_key="me") == '["/affirm"]'
    assert conversations.load_payload(session, pid=pid, customer_key="someone-else") is None
    assert conversations.load_payload(session, pid="forged", customer_key="me") is None


def test_ask_interval_and_opt_out(session: Session) -> None:
    key = "e" * 32
    conversations.touch_customer(session, user_key=key, channel="telegram", chat_id="1")
    assert feedback_queries.may_ask(session, customer_key=key, interval_days=14)
    feedback_queries.log_ask(session, customer_key=key, trigger="after_service")
    session.flush()
    session.expire_all()
    assert not feedback_queries.may_ask(session, customer_key=key, interval_days=14)
    later = utcnow() + timedelta(days=15)
    assert feedback_queries.may_ask(session, customer_key=key, interval_days=14, now=later)
    feedback_queries.set_do_not_ask(session, customer_key=key)
    session.expire_all()
    assert not feedback_queries.may_ask(session, customer_key=key, interval_days=14, now=later)
