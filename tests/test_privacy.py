"""Privacy: redaction, erasure proven by searching every table (and the raw SQLite file), purge."""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from earshot.conversations import queries as conversations
from earshot.feedback import queries as feedback_queries
from earshot.feedback.schemas import FeedbackIn, FeedbackType
from earshot.knowledge import misunderstood
from earshot.privacy.erasure import (
    erase_customer,
    purge,
    search_everywhere,
    sqlite_free_pages_contain,
)
from earshot.privacy.identity import user_key
from earshot.privacy.redaction import redact
from earshot.storage.db import make_engine, migrate
from earshot.storage.models import (
    AskLog,
    CallbackPayload,
    CampaignSend,
    Contact,
    Feedback,
    FeedbackEvent,
    InboxMessage,
    Notification,
    ProcessedUpdate,
    ServiceRating,
    Supporter,
    WhatsAppSend,
    utcnow,
)

# ------------------------------------------------------------------------------ redaction


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # e-mail
        ("mail me: jan.de.vries+shop@example.co.uk!", "mail me: [email]!"),
        ("Zoë.Müller@beispiel.de", "[email]"),
        # international phone numbers
        ("call +31 6 1234 5678 please", "call [phone] please"),
        ("+31 (0)6 12345678", "[phone]"),
        ("tel 0031612345678", "tel [phone]"),
        ("+32 470 12 34 56", "[phone]"),
        ("+49 30 1234567", "[phone]"),
        ("+44 20 7946 0958", "[phone]"),
        ("+1 415 555 2671", "[phone]"),
        # local formats: NL, BE, DE, GB
        ("bel 06-12345678 of 020 123 4567", "bel [phone] of [phone]"),
        ("mijn nummer is 0612345678.", "mijn nummer is [phone]."),
        ("bel me op +31 6 12345678 a.u.b.", "bel me op [phone] a.u.b."),
        ("06 1234 5678", "[phone]"),
        ("(020) 1234567", "[phone]"),
        ("gsm 0470 12 34 56", "gsm [phone]"),
        ("Festnetz 030 1234567, mobil 0151 23456789", "Festnetz [phone], mobil [phone]"),
        ("mobile 07911 123456", "mobile [phone]"),
        # IBAN: compact, grouped, lower case, followed by punctuation
        ("IBAN NL91ABNA0417164300 thanks", "IBAN [iban] thanks"),
        ("NL91 ABNA 0417 1643 00.", "[iban]."),
        ("nl91 abna 0417 1643 00", "[iban]"),
        ("DE89 3704 0044 0532 0130 00", "[iban]"),
        ("GB82 WEST 1234 5698 7654 32", "[iban]"),
        ("rekening BE68 5390 0754 7034", "rekening [iban]"),
        # payment cards: spaced, dashed, compact, Amex grouping
        ("card 4111 1111 1111 1111 expires", "card [card] expires"),
        ("4111-1111-1111-1111", "[card]"),
        ("5500000000000004", "[card]"),
        ("amex 3782 822463 10005", "amex [card]"),
        ("378282246310005.", "[card]."),
    ],
)
def test_redact_replaces_personal_details(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 12345678",
        "order number 123456789 arrived",
        "on 15-01-2024 at 14:30",
        "dates 2024-01-15 2024-01-16",
        "12/03/2024",
        "20240115",
        "price € 1.299,00 or 129.99 or 1,299.00",
        "firmware 2.4.1 and v10.2.33",
        "ref LH-7K3Q",
        "postcode 1012 AB",
        "serial 0123456789",
        "between 10:00 and 17:30",
        "4111 1111 1111 1112",  # Luhn fails
        "NL91ABNA0417164301",  # mod-97 fails
        "NL91ABNA041716430",  # too short for NL
        "ean 8712345678906",
        "1234 5678 9012",
        "[email] [phone] [iban] [card]",
        "my email is <email>",  # other assistants' placeholders pass through
        "",
    ],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


def test_redact_keeps_the_sentence_and_is_idempotent() -> None:
    text = (
        "Order 12345678 (ref LH-7K3Q, fw 2.4.1) failed on 15-01-2024; "
        "reach me at jan@example.org or 06 12345678, refund to NL91ABNA0417164300."
    )
    once = redact(text)
    assert once == (
        "Order 12345678 (ref LH-7K3Q, fw 2.4.1) failed on 15-01-2024; "
        "reach me at [email] or [phone], refund to [iban]."
    )
    assert redact(once) == once


def test_redact_region_adds_that_countrys_local_format() -> None:
    assert redact("(415) 555-2671") == "(415) 555-2671"
    assert redact("(415) 555-2671", region="US") == "[phone]"


# ------------------------------------------------------------------------------ fixtures

SECRET = "test-secret-for-privacy-tests"

# Stand-in for Rasa 3.6's SQLTrackerStore table (same name and columns).
rasa_meta = MetaData()
events = Table(
    "events",
    rasa_meta,
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255), nullable=False, index=True),
    Column("type_name", String(255), nullable=False),
    Column("timestamp", Float),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text),
)


def add_event(conn: Connection, sender: str, type_name: str, ts: float, **data: object) -> None:
    # Rasa stores json.dumps(event.as_dict()): non-ASCII text ends up \u-escaped.
    conn.execute(
        insert(events).values(
            sender_id=sender,
            type_name=type_name,
            timestamp=ts,
            intent_name=data.get("intent"),
            action_name=data.get("name"),
            data=json.dumps({"event": type_name, "timestamp": ts, **data}),
        )
    )


@pytest.fixture
def rasa(session: Session) -> Session:
    """The session, with Rasa's events table present in its database."""
    rasa_meta.create_all(session.connection(), checkfirst=True)
    return session


@dataclass
class Seeded:
    telegram_id: str
    key: str
    question: str  # a service question, only in Rasa's events and the inbox
    idea: str  # the customer's own feedback text
    phone: str  # in the feedback text, redacted on erasure
    own_ref: str
    supported_ref: str


def seed_customer(session: Session, *, when: datetime | None = None) -> Seeded:
    """A customer who asked a service question and left feedback, leaving traces everywhere."""
    tag = uuid.uuid4().hex[:8]
    telegram_id = str(7_000_000_000 + int(tag, 16) % 999_999_999)
    key = user_key(SECRET, "telegram", telegram_id)
    question = f"Waarom piept mijn deurbel Zéphyr-{tag} elke nacht om drie uur?"
    idea = f"Please add a night mode quiet-chime-{tag} to the doorbell"
    phone = f"06 1{int(tag, 16) % 10**7:07d}"  # 061... is always a valid NL mobile
    ts = (when or utcnow()).timestamp()

    conversations.touch_customer(
        session, user_key=key, channel="telegram", chat_id=telegram_id, language="nl"
    )
    conn = session.connection()
    add_event(
        conn,
        key,
        "user",
        ts,
        text=question,
        parse_data={"intent": {"name": "faq"}},
        input_channel="telegram",
        metadata={"chat_id": telegram_id},
    )
    add_event(conn, key, "action", ts + 1, name="utter_faq/doorbell_beeps")
    add_event(conn, key, "bot", ts + 2, text="Dat is de batterijwaarschuwing.")

    own = feedback_queries.create_feedback(
        session,
        item=FeedbackIn(
            customer_key=key,
            type=FeedbackType.idea,
            description=f"{idea}; call me on {phone}",
            benefit="I sleep better, mail jan@example.org",
            attachments=["telegram-file-id-1"],
            consent=True,
            consent_version="v1",
            contact=f"jan-{tag}@example.org",
        ),
        ref_prefix="LH",
    )
    other_key = user_key(SECRET, "telegram", f"other-{tag}")
    theirs = feedback_queries.create_feedback(
        session,
        item=FeedbackIn(customer_key=other_key, description=f"Battery lasts too short {tag}"),
        ref_prefix="LH",
    )
    session.add(Supporter(feedback_id=theirs.id, customer_key=key))
    theirs.supporters += 1
    session.add(Supporter(feedback_id=own.id, customer_key=other_key))
    own.supporters += 1
    session.add_all(
        [
            FeedbackEvent(
                feedback_id=own.id,
                actor="team:42",
                field="description",
                old_value=f"{idea}; call me on {phone}",
                new_value=idea,
            ),
            Notification(feedback_id=own.id, customer_key=key, status="planned"),
            Notification(feedback_id=own.id, customer_key=other_key, status="planned"),
            Notification(feedback_id=theirs.id, customer_key=key, status="planned"),
            CampaignSend(campaign_id="spring", customer_key=key, status="sent"),
            InboxMessage(
                customer_key=key, chat_id=telegram_id, text=question, meta={"q": question}
            ),
        ]
    )
    feedback_queries.log_ask(session, customer_key=key, trigger="after_service")
    feedback_queries.record_rating(
        session, topic="doorbell_beeps", helpful=True, customer_key=key, language="nl"
    )
    conversations.store_payload(
        session, payload=json.dumps(["/affirm", question[:20]]), customer_key=key
    )
    conversations.claim_update(session, update_id=int(tag, 16), customer_key=key)
    misunderstood.record(
        session, text=question, reason="fallback", language="nl", customer_key=key, now=when
    )
    session.flush()
    return Seeded(telegram_id, key, question, idea, phone, own.ref, theirs.ref)


def by_ref(session: Session, ref: str) -> Feedback | None:
    session.expire_all()
    return session.scalar(select(Feedback).where(Feedback.ref == ref))


def count(session: Session, model: type, **where: object) -> int:
    stmt = select(func.count()).select_from(model).filter_by(**where)
    return int(session.scalar(stmt) or 0)


# ------------------------------------------------------------------------------ erasure


def test_search_everywhere_finds_every_trace_before_erasure(rasa: Session) -> None:
    c = seed_customer(rasa)
    hits = search_everywhere(rasa.connection(), [c.telegram_id])
    assert {("customers", "chat_id"), ("inbox", "chat_id"), ("events", "data")} <= set(hits)
    # The accent is stored \u-escaped in Rasa's JSON; the search decodes it.
    hits = search_everywhere(rasa.connection(), [c.question.upper()])
    assert {("events", "data"), ("inbox", "text"), ("inbox", "meta")} <= set(hits)
    assert ("misunderstood", "text") in hits
    by_key = set(search_everywhere(rasa.connection(), [c.key]))
    assert {
        ("customers", "user_key"),
        ("events", "sender_id"),
        ("feedback", "customer_key"),
    } <= by_key


def test_erase_personal_data_keeps_feedback_unlinked(rasa: Session) -> None:
    c = seed_customer(rasa)
    bystander = seed_customer(rasa)

    report = erase_customer(rasa, customer_key=c.key, everything=False)

    conn = rasa.connection()
    assert search_everywhere(conn, [c.telegram_id, c.key, c.question]) == []
    assert search_everywhere(conn, [c.idea]) == [
        ("feedback", "description"),
        ("feedback_history", "new_value"),
        ("feedback_history", "old_value"),
    ]
    own = by_ref(rasa, c.own_ref)
    assert own is not None and own.customer_key is None
    assert not own.consent and own.consent_at is None and own.attachments == []
    assert own.description == f"{c.idea}; call me on [phone]"
    assert own.benefit == "I sleep better, mail [email]"
    assert own.supporters == 2  # the other customer's support of it stays
    history = rasa.scalars(select(FeedbackEvent).where(FeedbackEvent.feedback_id == own.id)).one()
    assert history.old_value == f"{c.idea}; call me on [phone]"
    theirs = by_ref(rasa, c.supported_ref)
    assert theirs is not None and theirs.supporters == 2  # the support still counts
    assert count(rasa, Supporter, feedback_id=theirs.id) == 0
    assert count(rasa, ServiceRating, topic="doorbell_beeps", customer_key=None) == 1
    assert report.deleted["customers"] == 1 and report.deleted["events"] == 3
    assert report.deleted["contacts"] == 1 and report.deleted["inbox"] == 1
    assert report.deleted["notifications"] == 2 and report.deleted["feedback_supporters"] == 1
    assert report.unlinked == {"service_ratings": 1, "feedback": 1}

    # Nobody else's data was touched.
    assert search_everywhere(conn, [bystander.question]) == [
        ("events", "data"),
        ("inbox", "meta"),
        ("inbox", "text"),
        ("misunderstood", "text"),
    ]
    assert conversations.get_customer(rasa, user_key=bystander.key) is not None

    again = erase_customer(rasa, customer_key=c.key, everything=False)
    assert again.total == 0


def test_erase_everything_deletes_feedback_and_withdraws_support(rasa: Session) -> None:
    c = seed_customer(rasa)
    own = by_ref(rasa, c.own_ref)
    assert own is not None
    dup = feedback_queries.create_feedback(
        rasa, item=FeedbackIn(description="same idea"), ref_prefix="LH"
    )
    dup.duplicate_of_id = own.id
    rasa.flush()

    report = erase_customer(rasa, customer_key=c.key, everything=True)

    needles = [c.telegram_id, c.key, c.question, c.idea]
    assert search_everywhere(rasa.connection(), needles) == []
    assert by_ref(rasa, c.own_ref) is None
    theirs = by_ref(rasa, c.supported_ref)
    assert theirs is not None and theirs.supporters == 1
    survivor = by_ref(rasa, dup.ref)
    assert survivor is not None and survivor.duplicate_of_id is None
    assert count(rasa, ServiceRating, topic="doorbell_beeps") == 0
    assert report.deleted["feedback"] == 1 and report.deleted["feedback_history"] == 1
    # Own notification + own item's notifications (incl. the other supporter's) + theirs.
    assert report.deleted["notifications"] == 3
    assert report.deleted["feedback_supporters"] == 2  # my support + support of my item
    assert report.unlinked == {}

    again = erase_customer(rasa, customer_key=c.key, everything=True)
    assert again.total == 0
    theirs = by_ref(rasa, c.supported_ref)
    assert theirs is not None and theirs.supporters == 1  # not decremented twice


def test_erase_works_without_rasa_tables(session: Session) -> None:
    key = user_key(SECRET, "telegram", uuid.uuid4().hex)
    conversations.touch_customer(session, user_key=key, channel="telegram", chat_id="12345")
    report = erase_customer(session, customer_key=key, everything=False)
    assert report.deleted["customers"] == 1
    assert conversations.get_customer(session, user_key=key) is None


def test_sqlite_secure_delete_leaves_nothing_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "earshot.db"
    url = f"sqlite:///{path}"
    migrate(url)
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            rasa_meta.create_all(s.connection())
            c = seed_customer(s)
            others = [seed_customer(s) for _ in range(3)]
            s.commit()
        engine.dispose()
        # Rasa appends through its own connections, without secure_delete: a long, interleaved
        # history that splits and rebalances pages must not leave stale copies behind either.
        raw = sqlite3.connect(path)
        try:
            with raw:
                for n in range(600):
                    who = c if n % 4 == 0 else others[n % 3]
                    raw.execute(
                        "INSERT INTO events (sender_id, type_name, timestamp, data) "
                        "VALUES (?, 'user', ?, ?)",
                        (
                            who.key,
                            float(n),
                            json.dumps({"text": f"{who.question} #{n}" * (n % 7 + 1)}),
                        ),
                    )
        finally:
            raw.close()
        secrets = [c.question, c.telegram_id, c.key, c.phone]
        assert all(sqlite_free_pages_contain(path, n) for n in secrets)  # the probe works

        with Session(engine) as s:
            erase_customer(s, customer_key=c.key, everything=False)
            s.commit()
        engine.dispose()

        assert search_everywhere(engine, secrets) == []
        engine.dispose()
        for needle in secrets:
            assert not sqlite_free_pages_contain(path, needle), needle
        assert sqlite_free_pages_contain(path, c.idea)  # kept, unlinked
        assert sqlite_free_pages_contain(path, others[0].question)  # nobody else's erased
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------ purge

NOW = datetime(2030, 6, 1, 12, tzinfo=timezone.utc)
OLD = NOW - timedelta(days=200)
NEW = NOW - timedelta(days=10)


def test_purge_deletes_old_conversation_data_only(rasa: Session) -> None:
    old = seed_customer(rasa, when=OLD)
    new = seed_customer(rasa, when=NEW)
    for model, col in (
        (AskLog, "asked_at"),
        (CallbackPayload, "created_at"),
        (ProcessedUpdate, "processed_at"),
        (InboxMessage, "created_at"),
        (ServiceRating, "created_at"),
    ):
        for c, when in ((old, OLD), (new, NEW)):
            rasa.execute(update(model).where(model.customer_key == c.key).values({col: when}))
    replayed = InboxMessage(
        customer_key=new.key, chat_id="1", text="hi", created_at=NEW, done_at=NEW
    )
    rasa.add(replayed)
    rasa.execute(
        update(Notification).where(Notification.customer_key == old.key).values(sent_at=OLD)
    )
    # old's item was closed long ago; new's item is closed recently.
    for c, when in ((old, OLD), (new, NEW)):
        rasa.execute(
            update(Feedback).where(Feedback.ref == c.own_ref).values(status="done", updated_at=when)
        )
    open_old = feedback_queries.create_feedback(
        rasa, item=FeedbackIn(customer_key=old.key, description="still open"), ref_prefix="LH"
    )
    rasa.execute(update(Feedback).where(Feedback.id == open_old.id).values(updated_at=OLD))
    for c, when in ((old, OLD), (new, NEW)):  # a campaign ask on WhatsApp and its status
        rasa.add(
            WhatsAppSend(
                message_id=f"wamid.{c.key[:8]}",
                customer_key=c.key,
                kind="campaign",
                ref="winter",
                status="read",
                created_at=when,
                updated_at=when,
            )
        )
    rasa.flush()

    counts = purge(rasa, older_than_days=180, now=NOW)

    assert counts == {
        "events": 3,
        "inbox": 2,  # old's undelivered message and new's replayed one
        "processed_updates": 1,
        "callback_payloads": 1,
        "ask_log": 1,
        "notifications": 2,
        "misunderstood": 1,
        "contacts": 1,
        "feedback_supporters": 1,
        "feedback_unlinked": 1,
        "service_ratings_unlinked": 1,
        "whatsapp_sends": 1,
    }
    conn = rasa.connection()
    assert search_everywhere(conn, [old.question]) == []
    assert ("events", "data") in search_everywhere(conn, [new.question])
    closed = by_ref(rasa, old.own_ref)
    assert closed is not None and closed.customer_key is None and closed.supporters == 2
    assert "[phone]" in closed.description
    recent = by_ref(rasa, new.own_ref)
    assert recent is not None and recent.customer_key == new.key
    still_open = by_ref(rasa, open_old.ref)
    assert still_open is not None and still_open.customer_key == old.key
    assert count(rasa, Contact, customer_key=new.key) == 1
    assert conversations.get_customer(rasa, user_key=old.key) is not None  # keeps the opt-out

    again = purge(rasa, older_than_days=180, now=NOW)
    assert sum(again.values()) == 0


def test_purge_refuses_zero_retention(session: Session) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        purge(session, older_than_days=0)


def test_purge_works_without_rasa_tables(session: Session) -> None:
    assert "events" not in purge(session, older_than_days=30)
