"""Erasure on request, the retention purge, and audits that find personal data anywhere.

The app database is shared with Rasa's SQL tracker store, whose `events` table holds every
conversation turn under `sender_id` = the customer's pseudonymous key. That table is not
ours (no model, no migration), so it is reached by reflection and only when it exists.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    LargeBinary,
    Text,
    case,
    cast,
    column,
    delete,
    inspect,
    or_,
    select,
    table,
    update,
)
from sqlalchemy.orm import Session

from earshot.privacy.redaction import redact
from earshot.storage.models import (
    AskLog,
    CallbackPayload,
    CampaignSend,
    Contact,
    Customer,
    Feedback,
    FeedbackEvent,
    InboxMessage,
    IntegrationEvent,
    MessengerSend,
    MessengerWindow,
    MisunderstoodMessage,
    Notification,
    ProcessedUpdate,
    ServiceRating,
    Supporter,
    WhatsAppSend,
    WhatsAppWindow,
    utcnow,
)

# --------------------------------------------------------------------------- erasure

_EVENTS = "events"  # Rasa 3.x SQLTrackerStore table
_CLOSED = ("done", "declined", "duplicate")


@dataclass(frozen=True)
class ErasureReport:
    """Rows affected per table: `deleted`, or kept but `unlinked` from the customer."""

    everything: bool
    deleted: dict[str, int] = field(default_factory=dict)
    unlinked: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.deleted.values()) + sum(self.unlinked.values())


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _events_table(session: Session) -> Any | None:
    """Rasa's events table when this database has one (not in app-only setups or tests)."""
    if not inspect(session.connection()).has_table(_EVENTS):
        return None
    return table(_EVENTS, column("sender_id"), column("timestamp"))


def _anonymise(session: Session, items: Sequence[Feedback], *, key: str | None) -> None:
    """Cut feedback items loose from their author, keeping what the product teams need."""
    for item in items:
        item.customer_key = None
        item.consent = False
        item.consent_at = None
        item.consent_version = None
        item.description = redact(item.description)
        item.benefit = redact(item.benefit) if item.benefit else item.benefit
        # Screenshots and files cannot be redacted; the ids fetch them from Telegram.
        item.attachments = []
    ids = [item.id for item in items]
    if not ids:
        return
    # Triage history may quote the original text (e.g. an edited description).
    for ev in session.scalars(select(FeedbackEvent).where(FeedbackEvent.feedback_id.in_(ids))):
        for attr in ("old_value", "new_value", "note"):
            value = getattr(ev, attr)
            if value:
                value = redact(value)
                setattr(ev, attr, value.replace(key, "[erased]") if key else value)


def erase_customer(session: Session, *, customer_key: str, everything: bool) -> ErasureReport:
    """Forget a customer; the caller commits. Safe to run again (then it finds nothing).

    Both choices delete: the customers row (the only raw chat id), contact details, the
    ask log, button payloads, processed update ids, inbox messages, notifications, campaign
    sends, misunderstood messages, the customer's supporter rows, and Rasa's conversation
    events of the key.

    everything=False ("personal data"): the customer's feedback items stay for the product
    teams, unlinked (customer_key NULL) and anonymised (consent cleared, contact deleted,
    description/benefit/history redacted, attachments dropped); service ratings stay,
    unlinked; support of others' items still counts (supporters unchanged), only the key
    is removed.

    everything=True: additionally the customer's own feedback items are deleted with their
    history, notifications, contacts and other customers' support of them; items marked
    as duplicates of them lose that link; their support of others' items is withdrawn
    (supporters decremented, never below 1 - the author); their service ratings deleted.

    Once "personal data" has run, nothing links the kept items to the key any more, so a
    later everything=True cannot find them: ask which choice before erasing.
    """
    key = customer_key
    deleted: dict[str, int] = {}
    unlinked: dict[str, int] = {}

    def remove(name: str, stmt: Any) -> None:
        deleted[name] = deleted.get(name, 0) + _count(session.execute(stmt))

    own_ids = list(session.scalars(select(Feedback.id).where(Feedback.customer_key == key)))

    remove(
        "contacts",
        delete(Contact).where(or_(Contact.customer_key == key, Contact.feedback_id.in_(own_ids))),
    )
    remove("ask_log", delete(AskLog).where(AskLog.customer_key == key))
    remove("callback_payloads", delete(CallbackPayload).where(CallbackPayload.customer_key == key))
    remove("processed_updates", delete(ProcessedUpdate).where(ProcessedUpdate.customer_key == key))
    remove("inbox", delete(InboxMessage).where(InboxMessage.customer_key == key))
    remove("whatsapp_windows", delete(WhatsAppWindow).where(WhatsAppWindow.customer_key == key))
    remove("whatsapp_sends", delete(WhatsAppSend).where(WhatsAppSend.customer_key == key))
    remove("messenger_windows", delete(MessengerWindow).where(MessengerWindow.customer_key == key))
    remove("messenger_sends", delete(MessengerSend).where(MessengerSend.customer_key == key))
    remove("notifications", delete(Notification).where(Notification.customer_key == key))
    remove("campaign_sends", delete(CampaignSend).where(CampaignSend.customer_key == key))
    # Misunderstood messages are conversation text (redacted, yet the customer's words);
    # their assignment history keeps no text and stays, unlinked (FK SET NULL).
    remove(
        "misunderstood",
        delete(MisunderstoodMessage).where(MisunderstoodMessage.customer_key == key),
    )

    if everything:
        supported = select(Supporter.feedback_id).where(
            Supporter.customer_key == key, Supporter.feedback_id.not_in(own_ids)
        )
        session.execute(
            update(Feedback)
            .where(Feedback.id.in_(supported))
            .values(supporters=case((Feedback.supporters > 1, Feedback.supporters - 1), else_=1))
            .execution_options(synchronize_session="fetch")
        )
    remove("feedback_supporters", delete(Supporter).where(Supporter.customer_key == key))

    if everything:
        remove("service_ratings", delete(ServiceRating).where(ServiceRating.customer_key == key))
    else:
        unlinked["service_ratings"] = _count(
            session.execute(
                update(ServiceRating)
                .where(ServiceRating.customer_key == key)
                .values(customer_key=None)
            )
        )

    events = _events_table(session)
    if events is not None:
        remove(_EVENTS, delete(events).where(events.c.sender_id == key))

    remove("customers", delete(Customer).where(Customer.user_key == key))

    if everything:
        # Children first: counts are reported, and the FKs cascade only where declared.
        session.execute(
            update(Feedback)
            .where(Feedback.duplicate_of_id.in_(own_ids))
            .values(duplicate_of_id=None)
            .execution_options(synchronize_session="fetch")
        )
        remove(
            "feedback_history", delete(FeedbackEvent).where(FeedbackEvent.feedback_id.in_(own_ids))
        )
        remove("notifications", delete(Notification).where(Notification.feedback_id.in_(own_ids)))
        remove("feedback_supporters", delete(Supporter).where(Supporter.feedback_id.in_(own_ids)))
        # The integrations outbox quotes the items (redacted): their events go too.
        own_refs = select(Feedback.ref).where(Feedback.id.in_(own_ids))
        remove(
            "integration_events", delete(IntegrationEvent).where(IntegrationEvent.ref.in_(own_refs))
        )
        remove("feedback", delete(Feedback).where(Feedback.id.in_(own_ids)))
    else:
        items = session.scalars(select(Feedback).where(Feedback.id.in_(own_ids))).all()
        _anonymise(session, items, key=key)
        unlinked["feedback"] = len(items)

    session.flush()
    return ErasureReport(everything=everything, deleted=deleted, unlinked=unlinked)


def erase_spooled(spool_root: Path, *, customer_key: str) -> int:
    """Delete a customer's entries from every local spool under `spool_root` (messages kept
    while the database was down, webhook updates not yet processed); returns how many.

    Every spool entry names its customer by `customer_key`, so one scan covers them all.
    """
    from earshot.storage.spool import Spool

    if not spool_root.is_dir():
        return 0
    folders = {p.parent for p in spool_root.rglob("*.json")}
    return sum(
        Spool(folder).remove_where(lambda e: e.get("customer_key") == customer_key)
        for folder in sorted(folders)
    )


# --------------------------------------------------------------------------- retention


def purge(session: Session, *, older_than_days: int, now: datetime | None = None) -> dict[str, int]:
    """Delete conversation data past retention; the caller commits. Safe to run from cron.

    Deleted when older than the cutoff (now - older_than_days): Rasa `events` (their unix
    timestamp), ask log entries, button payloads, processed update ids, sent notifications,
    misunderstood messages (assigned or not: what was learned is in kb/learned, unlinked
    from the customer), and inbox messages never replayed. Replayed inbox messages (done)
    are deleted at any age: Rasa's tracker has them.

    Feedback items are the product and are never deleted. The link to their author serves
    to close the loop (status notifications, "my feedback"), so it is kept while an item is
    open; items closed (done, declined, duplicate) with no change since the cutoff are
    unlinked and anonymised as on erasure, and their contacts and supporter rows deleted
    (the supporters count stays). Service ratings older than the cutoff are unlinked.
    Customers rows are kept: they hold the opt-out (do_not_ask) and the chat id needed to
    answer, and are deleted on erasure.

    Keys are table names for deleted rows and `<table>_unlinked` for rows kept unlinked.
    """
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1; 0 would wipe live conversations")
    cutoff = (now or utcnow()) - timedelta(days=older_than_days)
    counts: dict[str, int] = {}

    def remove(name: str, stmt: Any) -> None:
        counts[name] = counts.get(name, 0) + _count(session.execute(stmt))

    events = _events_table(session)
    if events is not None:
        remove(_EVENTS, delete(events).where(events.c.timestamp < cutoff.timestamp()))
    remove(
        "inbox",
        delete(InboxMessage).where(
            or_(InboxMessage.done_at.is_not(None), InboxMessage.created_at < cutoff)
        ),
    )
    remove(
        "processed_updates", delete(ProcessedUpdate).where(ProcessedUpdate.processed_at < cutoff)
    )
    remove("callback_payloads", delete(CallbackPayload).where(CallbackPayload.created_at < cutoff))
    remove("whatsapp_sends", delete(WhatsAppSend).where(WhatsAppSend.created_at < cutoff))
    remove("messenger_sends", delete(MessengerSend).where(MessengerSend.created_at < cutoff))
    remove("ask_log", delete(AskLog).where(AskLog.asked_at < cutoff))
    remove("notifications", delete(Notification).where(Notification.sent_at < cutoff))
    remove(
        "misunderstood",
        delete(MisunderstoodMessage).where(MisunderstoodMessage.created_at < cutoff),
    )

    items = session.scalars(
        select(Feedback).where(
            Feedback.customer_key.is_not(None),
            Feedback.status.in_(_CLOSED),
            Feedback.updated_at < cutoff,
        )
    ).all()
    ids = [item.id for item in items]
    remove("contacts", delete(Contact).where(Contact.feedback_id.in_(ids)))
    remove("feedback_supporters", delete(Supporter).where(Supporter.feedback_id.in_(ids)))
    _anonymise(session, items, key=None)
    counts["feedback_unlinked"] = len(items)
    counts["service_ratings_unlinked"] = _count(
        session.execute(
            update(ServiceRating)
            .where(ServiceRating.customer_key.is_not(None), ServiceRating.created_at < cutoff)
            .values(customer_key=None)
        )
    )
    session.flush()
    return counts


# --------------------------------------------------------------------------- audits

_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _unescaped(value: str) -> str:
    """JSON text as a reader sees it: Rasa and the JSON columns store `\\u00e9` for é."""
    if "\\u" not in value:
        return value
    try:
        return json.dumps(json.loads(value), ensure_ascii=False)
    except ValueError:
        raw = _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value)
        return raw.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def search_everywhere(engine: Engine | Connection, needles: Sequence[str]) -> list[tuple[str, str]]:
    """(table, column) pairs, sorted, where any needle occurs, case-insensitively.

    Every column of every table (found by reflection, Rasa's included) is read as text,
    numbers too, so a chat id stored as an integer is found as well; JSON escapes are
    decoded first. Reads whole tables: meant for tests and audits, not request paths.
    Pass a Connection to see that connection's uncommitted work.
    """
    wanted = [n.casefold() for n in needles if n]
    if not wanted:
        return []
    if isinstance(engine, Engine):
        with engine.connect() as conn:
            return search_everywhere(conn, needles)
    conn = engine
    hits: set[tuple[str, str]] = set()
    insp = inspect(conn)
    for name in insp.get_table_names():
        reflected = insp.get_columns(name)
        names = [c["name"] for c in reflected]
        cols: list[Any] = [column(n) for n in names]
        t = table(name, *cols)
        # Binary columns (vectors) are read as bytes: SQLite cannot cast them to text.
        stmt = select(
            *(
                c if isinstance(r["type"], LargeBinary) else cast(c, Text)
                for c, r in zip(cols, reflected, strict=True)
            )
        ).select_from(t)
        for row in conn.execute(stmt):
            for col_name, value in zip(names, row, strict=True):
                if value is None or (name, col_name) in hits:
                    continue
                text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                text = _unescaped(text).casefold()
                if any(n in text for n in wanted):
                    hits.add((name, col_name))
    return sorted(hits)


def sqlite_free_pages_contain(path: str | Path, needle: str) -> bool:
    """True if the bytes of a SQLite file (or its WAL) contain `needle`, live or deleted.

    Checkpoints the WAL into the main file first, so what is checked is what stays on disk.
    With secure_delete on, deleted rows are zeroed; so after an erasure, a needle that
    `search_everywhere` no longer finds must not be here either. Raises if the checkpoint
    is blocked by another connection (the answer would not be final).
    """
    path = Path(path)
    conn = sqlite3.connect(path)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        encoding = conn.execute("PRAGMA encoding").fetchone()[0]
    finally:
        conn.close()
    if busy:
        raise RuntimeError(f"{path}: WAL checkpoint blocked by another connection")
    codec = {"UTF-8": "utf-8", "UTF-16le": "utf-16-le", "UTF-16be": "utf-16-be"}[encoding]
    forms = {needle, needle.lower(), json.dumps(needle)[1:-1], json.dumps(needle.lower())[1:-1]}
    patterns = [f.encode(codec) for f in forms if f]
    for suffix in ("", "-wal", "-journal"):
        part = path.with_name(path.name + suffix)
        if not part.exists():
            continue
        data = part.read_bytes()
        lowered = data.lower()  # ASCII case folding; the forms cover the rest
        if any(p in data or p.lower() in lowered for p in patterns):
            return True
    return False
