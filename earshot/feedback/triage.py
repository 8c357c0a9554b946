"""Triage by product teams: status, tags, notes and merging duplicates, with full history.

Statuses follow new -> under_review -> planned -> in_progress -> done, or end as declined
or duplicate (only through `merge`, which records what it duplicates). Every change writes
a FeedbackEvent. When an item becomes planned, done or declined, one Notification per
customer who asked to hear back is queued for the sender, at most once per status.

Like the repository, these functions take the caller's Session and never commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from earshot.feedback.schemas import Status
from earshot.feedback.service import count_supporters
from earshot.integrations.events import emit, item_payload
from earshot.storage.db import insert_ignoring_conflicts
from earshot.storage.models import Feedback, FeedbackEvent, Notification, Supporter, utcnow

STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
# The changes customers are told about; the others are internal steps.
NOTIFY_STATUSES: frozenset[str] = frozenset({"planned", "done", "declined"})
MAX_TAG_LENGTH = 32


class TriageError(Exception):
    """A triage request that cannot be carried out; the message says why."""


def get_item(session: Session, *, ref: str) -> Feedback:
    """The item with this reference code (any case), or TriageError."""
    item = session.scalar(select(Feedback).where(Feedback.ref == ref.strip().upper()))
    if item is None:
        raise TriageError(f"no feedback item {ref.strip().upper()!r}")
    return item


def _event(
    session: Session,
    item: Feedback,
    *,
    actor: str,
    field: str,
    old: str | None,
    new: str | None,
    note: str | None = None,
    at: datetime | None = None,
) -> FeedbackEvent:
    ev = FeedbackEvent(
        feedback_id=item.id,
        actor=actor,
        field=field,
        old_value=old,
        new_value=new,
        note=note,
        at=at or utcnow(),
    )
    session.add(ev)
    return ev


def _check_actor(actor: str) -> str:
    actor = actor.strip()
    if not actor:
        raise TriageError("actor is required: say who made the change")
    return actor[:64]


def set_status(
    session: Session, *, ref: str, status: str, actor: str, note: str | None = None
) -> bool:
    """Move an item to `status`; False when it already had it (nothing is recorded).

    Becoming planned, done or declined queues notifications (see `recipients`); every
    change emits item.status_changed.
    """
    actor = _check_actor(actor)
    if status not in STATUSES:
        raise TriageError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    item = get_item(session, ref=ref)
    if status == Status.duplicate.value:
        raise TriageError(f"to mark {item.ref} as a duplicate, merge it into the original")
    if item.status == Status.duplicate.value:
        original = session.get(Feedback, item.duplicate_of_id) if item.duplicate_of_id else None
        where = f" of {original.ref}" if original else ""
        raise TriageError(f"{item.ref} is a duplicate{where}; triage the original instead")
    if item.status == status:
        return False
    old = item.status
    item.status = status
    _event(session, item, actor=actor, field="status", old=old, new=status, note=note)
    session.flush()
    if status in NOTIFY_STATUSES:
        _enqueue(session, item, status)
    payload = {"item": item_payload(item), "from": old, "to": status, "by": actor}
    emit(session, kind="item.status_changed", payload=payload)
    return True


def _normalise_tag(tag: str) -> str:
    tag = " ".join(tag.strip().lower().split())
    if not tag:
        raise TriageError("tag is empty")
    if len(tag) > MAX_TAG_LENGTH:
        raise TriageError(f"tag is longer than {MAX_TAG_LENGTH} characters")
    return tag


def add_tag(session: Session, *, ref: str, tag: str, actor: str) -> bool:
    """Tag an item (tags are lower case); False when it already had the tag."""
    actor = _check_actor(actor)
    tag = _normalise_tag(tag)
    item = get_item(session, ref=ref)
    tags = list(item.tags or [])
    if tag in tags:
        return False
    # A new list, not an in-place append: plain JSON columns do not track mutation.
    item.tags = [*tags, tag]
    _event(session, item, actor=actor, field="tag", old=None, new=tag)
    return True


def remove_tag(session: Session, *, ref: str, tag: str, actor: str) -> bool:
    """Remove a tag; False when the item did not have it."""
    actor = _check_actor(actor)
    tag = _normalise_tag(tag)
    item = get_item(session, ref=ref)
    tags = list(item.tags or [])
    if tag not in tags:
        return False
    item.tags = [t for t in tags if t != tag]
    _event(session, item, actor=actor, field="tag", old=tag, new=None)
    return True


def add_note(session: Session, *, ref: str, text: str, actor: str) -> FeedbackEvent:
    """An internal note on an item; kept in its history, never shown to the customer."""
    actor = _check_actor(actor)
    text = text.strip()
    if not text:
        raise TriageError("note is empty")
    item = get_item(session, ref=ref)
    return _event(session, item, actor=actor, field="note", old=None, new=None, note=text)


def merge(session: Session, *, ref: str, into_ref: str, actor: str) -> Feedback:
    """Mark `ref` as a duplicate of `into_ref` and move its people to the original.

    The duplicate's author and supporters become Supporter rows of the original (each
    customer once, never the original's own author), the original's supporters count is
    recomputed, and earlier duplicates of `ref` are re-pointed at the original so chains
    stay one step long. Returns the original.
    """
    actor = _check_actor(actor)
    dup = get_item(session, ref=ref)
    original = get_item(session, ref=into_ref)
    if dup.id == original.id:
        raise TriageError(f"cannot merge {dup.ref} into itself")
    if original.status == Status.duplicate.value:
        root = session.get(Feedback, original.duplicate_of_id) if original.duplicate_of_id else None
        hint = f"; merge into {root.ref} instead" if root else ""
        raise TriageError(f"{original.ref} is itself a duplicate{hint}")
    if dup.status == Status.duplicate.value:
        if dup.duplicate_of_id == original.id:
            return original
        raise TriageError(f"{dup.ref} is already merged into another item")

    now = utcnow()
    moved = _move_supporters(session, dup, original)
    old_status = dup.status
    dup.status = Status.duplicate.value
    dup.duplicate_of_id = original.id
    _event(session, dup, actor=actor, field="status", old=old_status, new="duplicate", at=now)
    _event(session, dup, actor=actor, field="duplicate_of", old=None, new=original.ref, at=now)

    earlier = session.scalars(select(Feedback).where(Feedback.duplicate_of_id == dup.id)).all()
    for item in earlier:
        item.duplicate_of_id = original.id
        _event(
            session, item, actor=actor, field="duplicate_of", old=dup.ref, new=original.ref, at=now
        )

    session.flush()
    before = original.supporters
    original.supporters = count_supporters(session, item=original)
    _event(
        session,
        original,
        actor=actor,
        field="supporters",
        old=str(before),
        new=str(original.supporters),
        note=f"merged {dup.ref}",
        at=now,
    )
    session.flush()
    # Newcomers to an item that is already planned/done/declined hear about it too.
    if original.status in NOTIFY_STATUSES and moved:
        _enqueue(session, original, original.status, only=moved)
    payload = {
        "item": item_payload(dup),
        "into": item_payload(original),
        "into_previous_supporters": before,
        "by": actor,
    }
    emit(session, kind="item.merged", payload=payload)
    return original


def _move_supporters(session: Session, dup: Feedback, original: Feedback) -> set[str]:
    """Move the duplicate's author and supporters to the original; returns who was added."""
    have = set(
        session.scalars(select(Supporter.customer_key).where(Supporter.feedback_id == original.id))
    )
    if original.customer_key:
        have.add(original.customer_key)
    incoming: dict[str, datetime] = {}
    if dup.customer_key:
        incoming[dup.customer_key] = dup.created_at
    for key, at in session.execute(
        select(Supporter.customer_key, Supporter.created_at).where(Supporter.feedback_id == dup.id)
    ):
        incoming.setdefault(key, at)
    added: set[str] = set()
    for key, at in incoming.items():
        if key in have:
            continue
        # Keep when they spoke up, so "supporters gained this week" stays truthful.
        session.add(Supporter(feedback_id=original.id, customer_key=key, created_at=at))
        added.add(key)
    session.execute(delete(Supporter).where(Supporter.feedback_id == dup.id))
    return added


def recipients(session: Session, *, item: Feedback) -> set[str]:
    """Customers to tell about a status change of `item`.

    The author only with consent; supporters asked to hear back by supporting. Authors
    of duplicates merged into the item became supporters, but one who did not consent on
    their own item is left out, as a supporter row would otherwise imply their consent.
    """
    keys = set(
        session.scalars(select(Supporter.customer_key).where(Supporter.feedback_id == item.id))
    )
    silent = set(
        session.scalars(
            select(Feedback.customer_key).where(
                Feedback.duplicate_of_id == item.id,
                Feedback.consent.is_(False),
                Feedback.customer_key.is_not(None),
            )
        )
    )
    keys -= {k for k in silent if k is not None}
    if item.customer_key:
        if item.consent:
            keys.add(item.customer_key)
        else:
            keys.discard(item.customer_key)
    return keys


def _enqueue(
    session: Session, item: Feedback, status: str, *, only: Iterable[str] | None = None
) -> int:
    """Queue one notification per recipient not yet told about this status."""
    keys = recipients(session, item=item)
    if only is not None:
        keys &= set(only)
    if not keys:
        return 0
    told = set(
        session.scalars(
            select(Notification.customer_key).where(
                Notification.feedback_id == item.id, Notification.status == status
            )
        )
    )
    rows = [
        {"feedback_id": item.id, "customer_key": k, "status": status, "created_at": utcnow()}
        for k in sorted(keys - told)
    ]
    if rows:
        # ON CONFLICT DO NOTHING: a concurrent triage of the same item must not tell anyone twice.
        session.execute(insert_ignoring_conflicts(session, Notification), rows)
    return len(rows)


def pending_notifications(session: Session, *, limit: int = 100) -> Sequence[Notification]:
    """Notifications not yet sent, oldest first, for the sender to deliver."""
    stmt = (
        select(Notification)
        .where(Notification.sent_at.is_(None))
        .order_by(Notification.id)
        .limit(limit)
    )
    return session.scalars(stmt).all()


def notices_queued(session: Session, *, item: Feedback) -> int:
    """How many customers are queued a notice of the item's current status."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.feedback_id == item.id, Notification.status == item.status)
        )
        or 0
    )


def mark_notified(session: Session, *, notification_id: int) -> bool:
    """Record that a notification was sent; False if it already was."""
    if session.get(Notification, notification_id) is None:
        raise TriageError(f"no notification {notification_id}")
    result = session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.sent_at.is_(None))
        .values(sent_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def history(session: Session, *, ref: str) -> Sequence[FeedbackEvent]:
    """An item's triage history, oldest first."""
    item = get_item(session, ref=ref)
    stmt = (
        select(FeedbackEvent)
        .where(FeedbackEvent.feedback_id == item.id)
        .order_by(FeedbackEvent.at, FeedbackEvent.id)
    )
    return session.scalars(stmt).all()
