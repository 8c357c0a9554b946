"""Outgoing webhooks: events land with their change, deliveries are signed, retried with
backoff on temporary errors, not on permanent ones, and logged attempt by attempt.

The deliverer commits, so this module has databases of its own (SQLite and PostgreSQL);
every HTTP call goes to testkit's local webhook receiver.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import sessionmaker

from earshot.feedback import service, triage
from earshot.feedback.schemas import FeedbackIn, FeedbackType
from earshot.integrations import deliveries
from earshot.integrations.deliverer import Deliverer
from earshot.integrations.events import EventError, emit
from earshot.integrations.signing import sign, verify
from earshot.settings import Settings, load_settings
from earshot.storage.db import engine_for, session_scope
from earshot.storage.models import (
    Feedback,
    IntegrationAttempt,
    IntegrationDelivery,
    IntegrationEvent,
    utcnow,
)
from testkit.webhook_receiver import WebhookReceiver
from tests.conftest import empty_items_and_events

SECRET = "whsec-test-0123456789"
ENV = {"HOOK_SECRET": SECRET}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EARSHOT_CONFIG", str(tmp_path / "none.yml"))


@pytest.fixture
def db(committing_db: str) -> Iterator[str]:
    """The module's database, emptied of items and events after each test."""
    yield committing_db
    empty_items_and_events(committing_db)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as fake:
        yield fake


def settings_for(url: str, hook_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "company": {"name": "Test Co", "ref_prefix": "WH"},
        "dashboard_url": "https://earshot.example",
        "webhooks": [{"name": "roadmap", "url": hook_url, "secret_env": "HOOK_SECRET"}],
        "webhook_retry_base_s": 0.01,
        "webhook_retry_max_s": 0.05,
        "webhook_max_attempts": 4,
        "webhook_timeout_s": 2.0,
    }
    values.update(overrides)
    return load_settings(**values)


def deliverer(settings: Settings, environ: dict[str, str] | None = None) -> Deliverer:
    return Deliverer(
        settings,
        sessionmaker(engine_for(settings.db_url), expire_on_commit=False),
        environ=ENV if environ is None else environ,
    )


def add_item(url: str, text: str = "the bulb loses wifi every night", **fields: Any) -> str:
    with session_scope(url) as s:
        item = FeedbackIn(
            customer_key="k" * 32, type=FeedbackType.problem, description=text, **fields
        )
        return service.save_feedback(s, item=item, ref_prefix="WH").ref


def events(url: str) -> list[IntegrationEvent]:
    with session_scope(url) as s:
        return list(s.scalars(select(IntegrationEvent).order_by(IntegrationEvent.id)))


def run_until_settled(d: Deliverer, rounds: int = 40) -> list[deliveries.Result]:
    """Tick until nothing is pending (sleeping past each backoff); all results."""

    async def go() -> list[deliveries.Result]:
        out: list[deliveries.Result] = []
        try:
            for _ in range(rounds):
                out += await d.tick()
                with session_scope(d.settings.db_url) as s:
                    pending = s.scalar(
                        select(IntegrationDelivery.id).where(
                            IntegrationDelivery.status == deliveries.PENDING
                        )
                    )
                if pending is None and out:
                    break
                await asyncio.sleep(0.03)
        finally:
            await d.aclose()
        return out

    return asyncio.run(go())


# --- the outbox -----------------------------------------------------------------------------


def test_an_item_and_its_event_are_committed_together_or_not_at_all(db: str) -> None:
    ref = add_item(db, "My email is jan@example.com and the bulb drops wifi")
    (ev,) = events(db)
    assert ev.kind == "item.created"
    item = ev.payload["item"]
    assert item["ref"] == ref and item["type"] == "problem"
    assert "jan@example.com" not in json.dumps(ev.payload)  # redacted text only
    assert "customer_key" not in item and "k" * 32 not in json.dumps(ev.payload)

    with pytest.raises(RuntimeError), session_scope(db) as s:
        item_in = FeedbackIn(description="the plug clicks", type=FeedbackType.problem)
        service.save_feedback(s, item=item_in, ref_prefix="WH")
        raise RuntimeError("the transaction fails after the item was added")
    assert len(events(db)) == 1  # rolled back: no item, no event
    with session_scope(db) as s:
        assert (
            s.scalar(select(Feedback.id).where(Feedback.description == "the plug clicks")) is None
        )


def test_triage_supporters_and_merges_emit_events(db: str) -> None:
    a = add_item(db, "sunrise alarm: fade the bulb in slowly")
    b = add_item(db, "wake me up with a slowly brightening bulb")
    with session_scope(db) as s:
        service.add_supporter(s, ref=a, customer_key="s" * 32)
        service.add_supporter(s, ref=a, customer_key="s" * 32)  # again: no second event
        triage.set_status(s, ref=a, status="planned", actor="anna")
        triage.set_status(s, ref=a, status="planned", actor="anna")  # unchanged: no event
        triage.merge(s, ref=b, into_ref=a, actor="anna")
    kinds = [(e.kind, e.payload["item"]["ref"]) for e in events(db)]
    assert kinds == [
        ("item.created", a),
        ("item.created", b),
        ("item.supported", a),
        ("item.status_changed", a),
        ("item.merged", b),
    ]
    supported, changed, merged = events(db)[2:]
    assert supported.payload["previous_supporters"] == 1
    assert supported.payload["item"]["supporters"] == 2
    assert (changed.payload["from"], changed.payload["to"], changed.payload["by"]) == (
        "new",
        "planned",
        "anna",
    )
    assert merged.payload["into"]["ref"] == a and merged.payload["item"]["status"] == "duplicate"


def test_emit_refuses_unknown_kinds_and_customer_identifiers(db: str) -> None:
    with session_scope(db) as s:
        with pytest.raises(EventError):
            emit(s, kind="item.deleted", payload={})
        with pytest.raises(EventError):
            emit(s, kind="theme.emerging", payload={"items": [{"customer_key": "x"}]})
        first = emit(s, kind="theme.emerging", payload={"theme": {"id": "t1"}}, key="t1:w49")
        again = emit(s, kind="theme.emerging", payload={"theme": {"id": "t1"}}, key="t1:w49")
    assert first is not None and again is None
    assert [e.kind for e in events(db)] == ["theme.emerging"]


# --- signatures ------------------------------------------------------------------------------


def test_signature_verifies_and_refuses_tampering_wrong_secret_and_replays() -> None:
    body = b'{"type":"item.created"}'
    header = sign(SECRET, body, timestamp=1_800_000_000)
    assert verify(SECRET, body, header, now=1_800_000_100)
    assert not verify(SECRET, body + b" ", header, now=1_800_000_100)
    assert not verify("another-secret", body, header, now=1_800_000_100)
    assert not verify(SECRET, body, header, now=1_800_000_000 + 301)  # replay window
    assert not verify(SECRET, body, "t=1800000000", now=1_800_000_000)
    assert not verify(SECRET, body, None)
    # while rotating, a sender may add a second v1; either one verifies
    rotated = header + ",v1=" + "0" * 64
    assert verify(SECRET, body, rotated, now=1_800_000_000)


# --- delivery ------------------------------------------------------------------------------


def test_events_reach_the_receiver_signed_with_a_link_back(
    db: str, receiver: WebhookReceiver
) -> None:
    ref = add_item(db)
    results = run_until_settled(deliverer(settings_for(db, receiver.url)))
    assert [r.outcome for r in results] == ["delivered"]
    (got,) = receiver.received
    assert got.event["type"] == "item.created"
    assert got.event["data"]["item"]["ref"] == ref
    assert got.event["data"]["item"]["url"] == f"https://earshot.example/items/{ref}"
    assert got.headers["x-earshot-event"] == "item.created"
    assert receiver.rejected == []
    with session_scope(db) as s:
        d = s.scalar(select(IntegrationDelivery))
        assert d is not None and d.status == "delivered" and d.last_status_code == 204


def test_only_subscribed_events_are_delivered(db: str, receiver: WebhookReceiver) -> None:
    hooks = [
        {
            "name": "status",
            "url": receiver.url,
            "events": ["item.status_changed"],
            "secret_env": "HOOK_SECRET",
        }
    ]
    ref = add_item(db)
    with session_scope(db) as s:
        triage.set_status(s, ref=ref, status="done", actor="anna")
    run_until_settled(deliverer(settings_for(db, receiver.url, webhooks=hooks)))
    assert [r.event["type"] for r in receiver.received] == ["item.status_changed"]


def test_a_wrong_secret_is_refused_by_the_receiver_and_not_retried(
    db: str, receiver: WebhookReceiver
) -> None:
    add_item(db)
    results = run_until_settled(
        deliverer(settings_for(db, receiver.url), environ={"HOOK_SECRET": "not-the-secret"})
    )
    assert [(r.outcome, r.status_code) for r in results] == [("failed", 401)]
    assert receiver.received == [] and len(receiver.rejected) == 1
    with session_scope(db) as s:
        (attempt,) = s.scalars(select(IntegrationAttempt)).all()
        assert attempt.outcome == "failed" and attempt.next_attempt_at is None


def test_server_errors_are_retried_with_backoff_then_delivered(
    db: str, receiver: WebhookReceiver
) -> None:
    add_item(db)
    receiver.fail_next(500, times=2)
    results = run_until_settled(deliverer(settings_for(db, receiver.url)))
    assert [(r.outcome, r.status_code) for r in results] == [
        ("retry", 500),
        ("retry", 500),
        ("delivered", 204),
    ]
    assert len(receiver.received) == 1
    with session_scope(db) as s:
        log = s.scalars(select(IntegrationAttempt).order_by(IntegrationAttempt.id)).all()
        assert [(a.attempt, a.outcome, a.status_code) for a in log] == [
            (1, "retry", 500),
            (2, "retry", 500),
            (3, "delivered", 204),
        ]
        # each retry was scheduled after the try, by the backoff (base 0.01 s, doubling)
        first, second = log[0], log[1]
        assert first.next_attempt_at is not None and second.next_attempt_at is not None
        assert first.next_attempt_at > first.at and second.next_attempt_at > second.at
        assert log[2].next_attempt_at is None and log[2].duration_ms > 0


@pytest.mark.parametrize("status", [400, 404, 410, 422])
def test_permanent_client_errors_are_not_retried(
    db: str, receiver: WebhookReceiver, status: int
) -> None:
    add_item(db)
    receiver.fail_next(status, times=5)
    results = run_until_settled(deliverer(settings_for(db, receiver.url)))
    assert [(r.outcome, r.status_code) for r in results] == [("failed", status)]
    assert receiver.requests == 1


@pytest.mark.parametrize("status", [408, 429, 503])
def test_timeouts_and_rate_limits_are_retried(
    db: str, receiver: WebhookReceiver, status: int
) -> None:
    add_item(db)
    receiver.fail_next(status)
    results = run_until_settled(deliverer(settings_for(db, receiver.url)))
    assert [r.outcome for r in results] == ["retry", "delivered"]


def test_unreachable_and_slow_receivers_are_retried_until_attempts_run_out(db: str) -> None:
    add_item(db)
    with WebhookReceiver(SECRET, delay_s=1.0) as slow:
        s = settings_for(db, slow.url, webhook_timeout_s=0.2, webhook_max_attempts=2)
        results = run_until_settled(deliverer(s))
    assert [(r.outcome, r.error) for r in results] == [
        ("retry", "timed out"),
        ("retry", "timed out"),
    ]
    with session_scope(db) as session:
        d = session.scalar(select(IntegrationDelivery))
        assert d is not None and d.status == "failed" and d.attempts == 2
        last = session.scalars(select(IntegrationAttempt).order_by(IntegrationAttempt.id)).all()[-1]
        assert last.outcome == "failed"  # gave up: out of attempts

    with session_scope(db) as session:
        session.execute(delete(IntegrationEvent))
    add_item(db)
    closed = WebhookReceiver(SECRET).start()
    url = closed.url
    closed.stop()  # nothing listens there now
    results = run_until_settled(deliverer(settings_for(db, url, webhook_max_attempts=1)))
    assert results[0].outcome == "retry" and "connection failed" in (results[0].error or "")
    with session_scope(db) as session:
        d = session.scalar(select(IntegrationDelivery))
        assert (
            d is not None and d.status == "failed" and "connection failed" in (d.last_error or "")
        )


def test_backoff_doubles_is_capped_and_jittered() -> None:
    rng = random.Random(7)
    waits = [deliveries.backoff(n, base_s=10, max_s=300, rng=rng) for n in range(1, 8)]
    for n, w in enumerate(waits, start=1):
        ceiling = min(300, 10 * 2 ** (n - 1))
        assert ceiling / 2 <= w < ceiling
    assert len({round(w, 6) for w in waits}) == len(waits)


def test_the_background_loop_delivers_while_running(db: str, receiver: WebhookReceiver) -> None:
    s = settings_for(db, receiver.url, webhook_poll_s=0.05)
    d = deliverer(s)

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(d.run(stop))
        refs = [await asyncio.to_thread(add_item, db, f"problem number {i}") for i in range(5)]
        for _ in range(200):
            if len(receiver.received) == len(refs):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task
        await d.aclose()
        assert sorted(r.event["data"]["item"]["ref"] for r in receiver.received) == sorted(refs)

    asyncio.run(go())
    with session_scope(db) as session:
        statuses = session.scalars(select(IntegrationDelivery.status)).all()
        assert statuses == ["delivered"] * 5


def test_old_delivered_events_are_purged_but_pending_ones_kept(
    db: str, receiver: WebhookReceiver
) -> None:
    add_item(db)
    run_until_settled(deliverer(settings_for(db, receiver.url)))
    add_item(db, "another problem")
    with session_scope(db) as s:
        deliveries.dispatch(s, settings=settings_for(db, receiver.url), now=utcnow())
        removed = deliveries.purge(s, before=utcnow() + timedelta(days=1))
    assert removed == 1
    assert [e.payload["item"]["text"] for e in events(db)] == ["another problem"]


def test_events_older_than_the_log_are_never_sent_and_purged_daily(
    db: str, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from earshot.cli.app import main

    add_item(db, "an old problem")
    with session_scope(db) as s:
        for ev in s.scalars(select(IntegrationEvent)):
            ev.created_at = utcnow() - timedelta(days=31)
    fresh = add_item(db, "a new problem")
    run_until_settled(deliverer(settings_for(db, receiver.url)))
    assert [r.event["data"]["item"]["ref"] for r in receiver.received] == [fresh]

    monkeypatch.setenv("DATABASE_URL", db)
    assert main(["purge"]) == 0
    assert "integration_events: 1" in capsys.readouterr().out
    assert [e.ref for e in events(db)] == [fresh]


def test_erasing_a_customer_with_everything_erases_their_items_events(db: str) -> None:
    from earshot.privacy.erasure import erase_customer

    mine = add_item(db, "my own problem")
    with session_scope(db) as s:
        other = service.save_feedback(
            s, item=FeedbackIn(customer_key="o" * 32, description="someone else's"), ref_prefix="WH"
        ).ref
        report = erase_customer(s, customer_key="k" * 32, everything=True)
    assert report.deleted["integration_events"] == 1
    assert [e.ref for e in events(db)] == [other]
    assert mine != other


def test_earshot_deliver_once_sends_what_is_due(
    db: str, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    from earshot.cli.app import main

    ref = add_item(db)
    config = tmp_path / "config.yml"
    config.write_text(
        f"webhooks:\n  - name: roadmap\n    url: {receiver.url}\n    secret_env: HOOK_SECRET\n"
    )
    monkeypatch.setenv("EARSHOT_CONFIG", str(config))
    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    assert main(["deliver", "--once"]) == 0
    assert "1 attempt(s): 1 delivered" in capsys.readouterr().out
    assert [r.event["data"]["item"]["ref"] for r in receiver.received] == [ref]
