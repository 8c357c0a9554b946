"""The SQL of deliveries: fanning events out to destinations, claiming due deliveries,
recording each attempt with its backoff, the dashboard's delivery log and "retry now".

Keyword-only functions that take the caller's Session and never commit.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, exists, insert, select, update
from sqlalchemy.orm import Session

from earshot.settings import Settings
from earshot.storage.db import insert_ignoring_conflicts
from earshot.storage.models import (
    IntegrationAttempt,
    IntegrationDelivery,
    IntegrationEvent,
    utcnow,
)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATUSES = (PENDING, DELIVERED, FAILED)
SLACK = "slack"
RETRY_AFTER_MAX_S = 24 * 3600  # a receiver's Retry-After is honoured up to a day
# Types whose negative sentiment makes a new item important enough for Slack.
URGENT_TYPES = frozenset({"problem", "complaint"})


@dataclass(frozen=True)
class Target:
    """Where deliveries go: a webhook endpoint ("webhook:<name>") or Slack ("slack")."""

    name: str
    url: str
    events: frozenset[str]
    secret_env: str | None = None


def targets(settings: Settings) -> list[Target]:
    """The configured destinations; Slack only with a token and a channel."""
    out = [
        Target(f"webhook:{w.name}", w.url, frozenset(w.events), w.secret_env)
        for w in settings.webhooks
    ]
    if settings.slack_bot_token and settings.slack_channel:
        kinds = frozenset(
            {"item.created", "item.supported", "item.merged", "theme.emerging", "digest.weekly"}
        )
        out.append(Target(SLACK, settings.slack_channel, kinds))
    return out


def important(kind: str, payload: dict[str, Any], settings: Settings) -> bool:
    """Whether an event goes to Slack: a problem or complaint with negative sentiment, an
    item reaching `slack_supporters` supporters, an emerging theme, the weekly digest."""
    if kind in ("theme.emerging", "digest.weekly"):
        return True
    item = payload.get("item") or {}
    if kind == "item.created":
        sentiment = item.get("sentiment")
        return (
            item.get("type") in URGENT_TYPES
            and sentiment is not None
            and sentiment <= settings.slack_negative_sentiment
        )
    n = settings.slack_supporters
    if kind == "item.supported" and n:
        return int(payload.get("previous_supporters", 0)) < n <= int(item.get("supporters", 0))
    if kind == "item.merged" and n:  # merging a duplicate's supporters in can cross it too
        into = payload.get("into") or {}
        before = int(payload.get("into_previous_supporters", 0))
        return before < n <= int(into.get("supporters", 0))
    return False


def dispatch(session: Session, *, settings: Settings, now: datetime, limit: int = 500) -> int:
    """Make the deliveries of events not yet dispatched; returns how many were made.

    Events older than `webhook_log_days` are not sent (they are marked dispatched): the
    first start of a deliverer, or a long outage, sends at most that much backlog. Safe
    to run in several processes: a delivery is unique per event and target.
    """
    stale = now - timedelta(days=settings.webhook_log_days)
    events = session.execute(
        select(
            IntegrationEvent.id,
            IntegrationEvent.kind,
            IntegrationEvent.payload,
            IntegrationEvent.created_at,
        )
        .where(IntegrationEvent.dispatched_at.is_(None))
        .order_by(IntegrationEvent.id)
        .limit(limit)
    ).all()
    if not events:
        return 0
    dests = targets(settings)
    rows: list[dict[str, Any]] = []
    for event_id, kind, payload, created_at in events:
        if created_at < stale:
            continue
        for t in dests:
            if kind not in t.events:
                continue
            if t.name == SLACK and not important(kind, payload, settings):
                continue
            rows.append(
                {
                    "event_id": event_id,
                    "target": t.name,
                    "url": t.url,
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    if rows:
        session.execute(insert_ignoring_conflicts(session, IntegrationDelivery), rows)
    session.execute(
        update(IntegrationEvent)
        .where(IntegrationEvent.id.in_([e[0] for e in events]))
        .values(dispatched_at=now)
        .execution_options(synchronize_session=False)
    )
    return len(rows)


@dataclass(frozen=True)
class Job:
    """A claimed delivery, with what the sender needs."""

    delivery_id: int
    event_id: int
    kind: str
    payload: dict[str, Any]
    event_at: datetime
    target: str
    url: str
    attempt: int
    extra: dict[str, Any] = field(default_factory=dict)


def claim_due(session: Session, *, now: datetime, limit: int, lease: timedelta) -> list[Job]:
    """Up to `limit` pending deliveries due by `now`, each leased for `lease`, so another
    deliverer does not take it meanwhile (and it is retried if this one dies).

    One UPDATE sets a lease time of this call's own (random microseconds), then the rows
    holding it are ours: a concurrent claimer's UPDATE skips rows no longer due.
    """
    if limit <= 0:
        return []
    due = (
        select(IntegrationDelivery.id)
        .where(IntegrationDelivery.status == PENDING, IntegrationDelivery.next_attempt_at <= now)
        .order_by(IntegrationDelivery.next_attempt_at, IntegrationDelivery.id)
        .limit(limit)
    )
    ids = list(session.scalars(due))
    if not ids:
        return []
    until = now + lease + timedelta(microseconds=random.randrange(1, 999_999))
    session.execute(
        update(IntegrationDelivery)
        .where(
            IntegrationDelivery.id.in_(ids),
            IntegrationDelivery.status == PENDING,
            IntegrationDelivery.next_attempt_at <= now,
        )
        .values(next_attempt_at=until)
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(
        select(
            IntegrationDelivery.id,
            IntegrationEvent.id,
            IntegrationEvent.kind,
            IntegrationEvent.payload,
            IntegrationEvent.created_at,
            IntegrationDelivery.target,
            IntegrationDelivery.url,
            IntegrationDelivery.attempts,
        )
        .join(IntegrationEvent, IntegrationEvent.id == IntegrationDelivery.event_id)
        .where(IntegrationDelivery.id.in_(ids), IntegrationDelivery.next_attempt_at == until)
        .order_by(IntegrationDelivery.id)
    ).all()
    return [Job(d, e, k, p, at, t, u, n + 1) for d, e, k, p, at, t, u, n in rows]


@dataclass(frozen=True)
class Result:
    """The outcome of one attempt: delivered, retry (temporary) or failed (permanent)."""

    delivery_id: int
    attempt: int
    outcome: str
    status_code: int | None = None
    duration_ms: float = 0.0
    error: str | None = None
    retry_after_s: float | None = None


def backoff(
    attempt: int, *, base_s: float, max_s: float, rng: random.Random | None = None
) -> float:
    """Seconds before try `attempt + 1`: base * 2^(attempt-1), capped, times [0.5, 1)."""
    raw = min(max_s, base_s * 2 ** max(0, attempt - 1))
    return raw * (0.5 + 0.5 * (rng or random).random())


def record(
    session: Session, *, results: Sequence[Result], settings: Settings, now: datetime
) -> None:
    """Store each attempt and move its delivery on: delivered, next try, or failed."""
    changes: list[dict[str, Any]] = []
    attempts: list[dict[str, Any]] = []
    for r in results:
        outcome, next_at = r.outcome, None
        if outcome == "retry":
            if r.attempt >= settings.webhook_max_attempts:
                outcome = FAILED
            else:
                wait = backoff(
                    r.attempt,
                    base_s=settings.webhook_retry_base_s,
                    max_s=settings.webhook_retry_max_s,
                )
                if r.retry_after_s is not None:  # the receiver said when (429, 503)
                    wait = max(wait, min(r.retry_after_s, RETRY_AFTER_MAX_S))
                next_at = now + timedelta(seconds=wait)
        status = {DELIVERED: DELIVERED, FAILED: FAILED}.get(outcome, PENDING)
        changes.append(
            {
                "b_id": r.delivery_id,
                "status": status,
                "attempts": r.attempt,
                "last_status_code": r.status_code,
                "last_error": r.error,
                "next_attempt_at": next_at,
                "delivered_at": now if status == DELIVERED else None,
            }
        )
        attempts.append(
            {
                "delivery_id": r.delivery_id,
                "attempt": r.attempt,
                "at": now,
                "outcome": outcome,
                "status_code": r.status_code,
                "duration_ms": round(r.duration_ms, 1),
                "error": r.error[:2000] if r.error else None,
                "next_attempt_at": next_at,
            }
        )
    if not changes:
        return
    table = cast(Table, IntegrationDelivery.__table__)
    session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            status=bindparam("status"),
            attempts=bindparam("attempts"),
            last_status_code=bindparam("last_status_code"),
            last_error=bindparam("last_error"),
            next_attempt_at=bindparam("next_attempt_at"),
            delivered_at=bindparam("delivered_at"),
        ),
        changes,
    )
    # Purged meanwhile: nothing to log against.
    alive = set(
        session.scalars(select(table.c.id).where(table.c.id.in_([c["b_id"] for c in changes])))
    )
    rows = [a for a in attempts if a["delivery_id"] in alive]
    if rows:
        session.execute(insert(IntegrationAttempt), rows)


def retry_now(session: Session, *, delivery_id: int) -> bool:
    """Make a pending or failed delivery due now; False if there is none or it was
    delivered. A failed one gets one more try (and more while the errors are temporary
    and attempts remain)."""
    d = session.get(IntegrationDelivery, delivery_id)
    if d is None or d.status == DELIVERED:
        return False
    d.status, d.next_attempt_at = PENDING, utcnow()
    session.flush()
    return True


@dataclass(frozen=True)
class DeliveryRow:
    """A line of the dashboard's delivery log."""

    id: int
    kind: str
    ref: str | None
    target: str
    url: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    log: list[IntegrationAttempt]


def deliveries(
    session: Session, *, status: str | None = None, limit: int = 100
) -> list[DeliveryRow]:
    """The latest deliveries (optionally of one status), newest first, with their attempts."""
    stmt = (
        select(IntegrationDelivery, IntegrationEvent)
        .join(IntegrationEvent, IntegrationEvent.id == IntegrationDelivery.event_id)
        .order_by(IntegrationDelivery.id.desc())
        .limit(limit)
    )
    if status in STATUSES:
        stmt = stmt.where(IntegrationDelivery.status == status)
    pairs = session.execute(stmt).all()
    ids = [d.id for d, _ in pairs]
    attempts: dict[int, list[IntegrationAttempt]] = {i: [] for i in ids}
    if ids:
        for a in session.scalars(
            select(IntegrationAttempt)
            .where(IntegrationAttempt.delivery_id.in_(ids))
            .order_by(IntegrationAttempt.id)
        ):
            attempts[a.delivery_id].append(a)
    return [
        DeliveryRow(
            d.id,
            ev.kind,
            ((ev.payload or {}).get("item") or {}).get("ref"),
            d.target,
            d.url,
            d.status,
            d.attempts,
            d.next_attempt_at,
            d.last_status_code,
            d.last_error,
            d.created_at,
            d.delivered_at,
            attempts[d.id],
        )
        for d, ev in pairs
    ]


def counts(session: Session) -> dict[str, int]:
    """Deliveries per status, for the page's tabs."""
    from sqlalchemy import func

    rows = session.execute(
        select(IntegrationDelivery.status, func.count()).group_by(IntegrationDelivery.status)
    ).all()
    found = {s: int(n) for s, n in rows}
    return {s: found.get(s, 0) for s in STATUSES}


def purge(session: Session, *, before: datetime) -> int:
    """Delete events older than `before` with nothing pending (their deliveries and
    attempts go with them), sent or never sent; returns how many events."""
    pending = exists().where(
        IntegrationDelivery.event_id == IntegrationEvent.id, IntegrationDelivery.status == PENDING
    )
    result = session.execute(
        delete(IntegrationEvent)
        .where(IntegrationEvent.created_at < before, ~pending)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
