"""Triage: status changes, tags, notes, merging and closing-the-loop notifications."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from earshot.feedback import queries as feedback_queries
from earshot.feedback import triage
from earshot.feedback.schemas import FeedbackIn
from earshot.feedback.triage import TriageError
from earshot.storage.models import Feedback, FeedbackEvent, Notification, Supporter


def make(session: Session, key: str | None, *, consent: bool = False) -> Feedback:
    item = FeedbackIn(customer_key=key, description="please add a timer", consent=consent)
    return feedback_queries.create_feedback(session, item=item, ref_prefix="TR")


def support(session: Session, item: Feedback, *keys: str) -> None:
    for k in keys:
        session.add(Supporter(feedback_id=item.id, customer_key=k))
    item.supporters = 1 + len(keys)
    session.flush()


def events(session: Session, item: Feedback) -> list[tuple[str, str | None, str | None]]:
    return [(e.field, e.old_value, e.new_value) for e in triage.history(session, ref=item.ref)]


def notified(session: Session, item: Feedback) -> set[tuple[str, str]]:
    rows = session.scalars(select(Notification).where(Notification.feedback_id == item.id))
    return {(n.customer_key, n.status) for n in rows}


def test_set_status_records_history(session: Session) -> None:
    item = make(session, "a" * 32)
    assert triage.set_status(session, ref=item.ref.lower(), status="under_review", actor="pm")
    assert triage.set_status(session, ref=item.ref, status="planned", actor="pm", note="Q3")
    assert not triage.set_status(session, ref=item.ref, status="planned", actor="pm")
    assert item.status == "planned"
    hist = triage.history(session, ref=item.ref)
    assert [(e.field, e.old_value, e.new_value) for e in hist] == [
        ("status", "new", "under_review"),
        ("status", "under_review", "planned"),
    ]
    assert hist[-1].actor == "pm" and hist[-1].note == "Q3" and hist[-1].at.tzinfo is not None


def test_unknown_ref_status_and_actor_are_clear_errors(session: Session) -> None:
    item = make(session, None)
    with pytest.raises(TriageError, match="no feedback item 'TR-ZZZZ'"):
        triage.set_status(session, ref="tr-zzzz", status="planned", actor="pm")
    with pytest.raises(TriageError, match="unknown status 'shipped'"):
        triage.set_status(session, ref=item.ref, status="shipped", actor="pm")
    with pytest.raises(TriageError, match="merge"):
        triage.set_status(session, ref=item.ref, status="duplicate", actor="pm")
    with pytest.raises(TriageError, match="actor"):
        triage.set_status(session, ref=item.ref, status="planned", actor=" ")
    with pytest.raises(TriageError):
        triage.merge(session, ref=item.ref, into_ref="TR-ZZZZ", actor="pm")


def test_tags_and_notes(session: Session) -> None:
    item = make(session, None)
    assert triage.add_tag(session, ref=item.ref, tag="  Night  Mode ", actor="pm")
    assert not triage.add_tag(session, ref=item.ref, tag="night mode", actor="pm")
    assert triage.add_tag(session, ref=item.ref, tag="wifi", actor="pm")
    session.flush()
    session.expire(item)
    assert item.tags == ["night mode", "wifi"]
    assert triage.remove_tag(session, ref=item.ref, tag="NIGHT MODE", actor="pm")
    assert not triage.remove_tag(session, ref=item.ref, tag="absent", actor="pm")
    session.flush()
    session.expire(item)
    assert item.tags == ["wifi"]
    triage.add_note(session, ref=item.ref, text="Asked firmware team", actor="jo")
    session.flush()
    assert events(session, item) == [
        ("tag", None, "night mode"),
        ("tag", None, "wifi"),
        ("tag", "night mode", None),
        ("note", None, None),
    ]
    assert triage.history(session, ref=item.ref)[-1].note == "Asked firmware team"
    with pytest.raises(TriageError):
        triage.add_tag(session, ref=item.ref, tag="   ", actor="pm")
    with pytest.raises(TriageError):
        triage.add_note(session, ref=item.ref, text="", actor="pm")


def test_notifications_go_to_consenting_author_and_supporters_once(session: Session) -> None:
    author, s1, s2 = "a" * 32, "b" * 32, "c" * 32
    item = make(session, author, consent=True)
    support(session, item, s1, s2)
    triage.set_status(session, ref=item.ref, status="under_review", actor="pm")
    assert notified(session, item) == set()  # an internal step: nobody is told
    triage.set_status(session, ref=item.ref, status="planned", actor="pm")
    assert notified(session, item) == {(author, "planned"), (s1, "planned"), (s2, "planned")}
    # Back and forth does not tell anyone twice.
    triage.set_status(session, ref=item.ref, status="in_progress", actor="pm")
    triage.set_status(session, ref=item.ref, status="planned", actor="pm")
    assert len(notified(session, item)) == 3
    triage.set_status(session, ref=item.ref, status="done", actor="pm")
    assert {k for k, s in notified(session, item) if s == "done"} == {author, s1, s2}


def test_author_without_consent_is_not_told(session: Session) -> None:
    item = make(session, "a" * 32, consent=False)
    support(session, item, "b" * 32)
    triage.set_status(session, ref=item.ref, status="declined", actor="pm", note="out of scope")
    assert notified(session, item) == {("b" * 32, "declined")}


def test_pending_and_mark_notified(session: Session) -> None:
    item = make(session, "p" * 32, consent=True)
    triage.set_status(session, ref=item.ref, status="done", actor="pm")
    pending = [
        n for n in triage.pending_notifications(session, limit=1000) if n.feedback_id == item.id
    ]
    assert len(pending) == 1
    assert triage.mark_notified(session, notification_id=pending[0].id)
    assert not triage.mark_notified(session, notification_id=pending[0].id)
    assert pending[0].sent_at is not None
    left = [
        n for n in triage.pending_notifications(session, limit=1000) if n.feedback_id == item.id
    ]
    assert left == []
    with pytest.raises(TriageError):
        triage.mark_notified(session, notification_id=10**9)


def test_merge_moves_people_without_double_counting(session: Session) -> None:
    a, b, c, d = "a" * 32, "b" * 32, "c" * 32, "d" * 32
    original = make(session, a, consent=True)
    support(session, original, b)
    dup = make(session, c, consent=True)
    support(session, dup, b, d)  # b supports both: counted once
    got = triage.merge(session, ref=dup.ref, into_ref=original.ref, actor="pm")
    session.flush()
    assert got is original
    assert dup.status == "duplicate" and dup.duplicate_of_id == original.id
    keys = set(
        session.scalars(select(Supporter.customer_key).where(Supporter.feedback_id == original.id))
    )
    assert keys == {b, c, d}
    assert original.supporters == 4  # a (author) + b, c, d
    assert session.scalars(select(Supporter).where(Supporter.feedback_id == dup.id)).all() == []
    assert ("status", "new", "duplicate") in events(session, dup)
    assert ("duplicate_of", None, original.ref) in events(session, dup)
    assert ("supporters", "2", "4") in events(session, original)
    # Merging again is a no-op, and the original's author is never their own supporter.
    triage.merge(session, ref=dup.ref, into_ref=original.ref, actor="pm")
    assert original.supporters == 4
    triage.set_status(session, ref=original.ref, status="planned", actor="pm")
    assert {k for k, _ in notified(session, original)} == {a, b, c, d}


def test_merge_rules(session: Session) -> None:
    x, y, z = make(session, "x" * 32), make(session, "y" * 32), make(session, "z" * 32)
    with pytest.raises(TriageError, match="itself"):
        triage.merge(session, ref=x.ref, into_ref=x.ref, actor="pm")
    triage.merge(session, ref=x.ref, into_ref=y.ref, actor="pm")
    with pytest.raises(TriageError, match=f"merge into {y.ref}"):
        triage.merge(session, ref=z.ref, into_ref=x.ref, actor="pm")
    with pytest.raises(TriageError, match="already merged"):
        triage.merge(session, ref=x.ref, into_ref=z.ref, actor="pm")
    with pytest.raises(TriageError, match=f"duplicate of {y.ref}"):
        triage.set_status(session, ref=x.ref, status="planned", actor="pm")
    # Chains stay one step long: merging y into z re-points x at z.
    triage.merge(session, ref=y.ref, into_ref=z.ref, actor="pm")
    session.flush()
    assert x.duplicate_of_id == z.id and y.duplicate_of_id == z.id
    assert z.supporters == 3
    assert ("duplicate_of", y.ref, z.ref) in events(session, x)


def test_merged_author_without_consent_is_not_told(session: Session) -> None:
    original = make(session, "o" * 32, consent=True)
    dup = make(session, "n" * 32, consent=False)
    triage.merge(session, ref=dup.ref, into_ref=original.ref, actor="pm")
    assert original.supporters == 2  # still counted
    triage.set_status(session, ref=original.ref, status="done", actor="pm")
    assert notified(session, original) == {("o" * 32, "done")}


def test_merge_into_planned_item_tells_newcomers(session: Session) -> None:
    original = make(session, "o" * 32, consent=True)
    triage.set_status(session, ref=original.ref, status="planned", actor="pm")
    dup = make(session, "m" * 32, consent=True)
    support(session, dup, "s" * 32)
    triage.merge(session, ref=dup.ref, into_ref=original.ref, actor="pm")
    assert notified(session, original) == {
        ("o" * 32, "planned"),
        ("m" * 32, "planned"),
        ("s" * 32, "planned"),
    }


def test_every_change_is_in_history(session: Session) -> None:
    item = make(session, None)
    before = session.scalars(
        select(FeedbackEvent).where(FeedbackEvent.feedback_id == item.id)
    ).all()
    assert before == []
    triage.set_status(session, ref=item.ref, status="under_review", actor="pm")
    triage.add_tag(session, ref=item.ref, tag="x", actor="pm")
    triage.add_note(session, ref=item.ref, text="n", actor="pm")
    session.flush()
    assert len(triage.history(session, ref=item.ref)) == 3
