"""The dashboard overview's figures: volume, products, sentiment, helpfulness, CSAT and
response rates per week, aggregated in SQL."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from earshot.feedback.inbox import start_of
from earshot.feedback.schemas import FeedbackType
from earshot.storage.models import AskLog, Feedback, ServiceRating

# How long a feedback question stays open for an answer (as earshot.feedback.service.ASK_OPEN_FOR).
ASK_OPEN_FOR = timedelta(days=1)


def _day(session: Session, column: Any) -> Any:
    """The UTC calendar day of a timestamp column, in the database's own terms."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)  # SQLite keeps UTC text


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class Rate:
    label: str
    hits: int
    total: int

    @property
    def rate(self) -> float:
        return self.hits / self.total if self.total else 0.0


@dataclass
class Overview:
    since: datetime
    until: datetime
    weeks: list[date] = field(default_factory=list)
    volume: dict[date, dict[str, int]] = field(default_factory=dict)  # week -> type -> n
    total: int = 0
    products: list[tuple[str | None, int]] = field(default_factory=list)
    top_ideas: list[tuple[str, str, int]] = field(default_factory=list)  # ref, text, n
    sentiment: dict[date, float | None] = field(default_factory=dict)  # week -> mean
    helpful: list[Rate] = field(default_factory=list)  # per service topic
    csat: Rate = field(default_factory=lambda: Rate("all", 0, 0))
    csat_weekly: dict[date, float | None] = field(default_factory=dict)
    response: list[Rate] = field(default_factory=list)  # per ask trigger
    response_all: Rate = field(default_factory=lambda: Rate("all", 0, 0))
    open_ideas: int = 0


def overview(session: Session, *, days: int, now: datetime, top: int = 8) -> Overview:
    """Aggregates for the overview charts over the last `days` days (whole weeks)."""
    first_week = week_start((now - timedelta(days=days - 1)).date())
    since = start_of(first_week)
    ov = Overview(since=since, until=now)
    ov.weeks = [
        first_week + timedelta(weeks=i) for i in range((now.date() - first_week).days // 7 + 1)
    ]
    period = (Feedback.created_at >= since, Feedback.created_at <= now)

    day = _day(session, Feedback.created_at)
    volume: dict[date, dict[str, int]] = {w: defaultdict(int) for w in ov.weeks}
    sent_sum: dict[date, float] = defaultdict(float)
    sent_n: dict[date, int] = defaultdict(int)
    rows = session.execute(
        select(
            day,
            Feedback.type,
            func.count(),
            func.sum(Feedback.sentiment),
            func.count(Feedback.sentiment),
        )
        .where(*period)
        .group_by(day, Feedback.type)
    )
    for d, type_, n, s_sum, s_n in rows:
        w = week_start(_as_date(d))
        if w not in volume:
            continue
        volume[w][type_] += int(n)
        ov.total += int(n)
        if s_n:
            sent_sum[w] += float(s_sum or 0.0)
            sent_n[w] += int(s_n)
    ov.volume = {w: dict(v) for w, v in volume.items()}
    ov.sentiment = {w: (sent_sum[w] / sent_n[w] if sent_n[w] else None) for w in ov.weeks}

    ov.products = [
        (p, int(n))
        for p, n in session.execute(
            select(Feedback.product, func.count())
            .where(*period)
            .group_by(Feedback.product)
            .order_by(func.count().desc(), Feedback.product)
            .limit(top)
        )
    ]

    open_idea = (
        Feedback.type == FeedbackType.idea.value,
        Feedback.status.not_in(("done", "declined", "duplicate")),
    )
    ov.top_ideas = [
        (ref, desc, int(n))
        for ref, desc, n in session.execute(
            select(Feedback.ref, Feedback.description, Feedback.supporters)
            .where(*open_idea)
            .order_by(Feedback.supporters.desc(), Feedback.id.desc())
            .limit(top)
        )
    ]
    ov.open_ideas = int(session.scalar(select(func.count()).where(*open_idea)) or 0)

    rated = (ServiceRating.created_at >= since, ServiceRating.created_at <= now)
    yes = func.sum(case((ServiceRating.helpful.is_(True), 1), else_=0))
    ov.helpful = [
        Rate(topic, int(h or 0), int(n))
        for topic, h, n in session.execute(
            select(ServiceRating.topic, yes, func.count())
            .where(*rated)
            .group_by(ServiceRating.topic)
            .order_by(func.count().desc(), ServiceRating.topic)
            .limit(top * 2)
        )
    ]
    rday = _day(session, ServiceRating.created_at)
    weekly_yes: dict[date, int] = defaultdict(int)
    weekly_n: dict[date, int] = defaultdict(int)
    for d, h, n in session.execute(select(rday, yes, func.count()).where(*rated).group_by(rday)):
        w = week_start(_as_date(d))
        weekly_yes[w] += int(h or 0)
        weekly_n[w] += int(n)
    ov.csat = Rate("all", sum(weekly_yes.values()), sum(weekly_n.values()))
    ov.csat_weekly = {w: (weekly_yes[w] / weekly_n[w] if weekly_n[w] else None) for w in ov.weeks}

    answered = func.sum(case((AskLog.outcome == "answered", 1), else_=0))
    # A question asked within the last day may still be answered: leave those out.
    settled = or_(AskLog.outcome != "asked", AskLog.asked_at < now - ASK_OPEN_FOR)
    ov.response = [
        Rate(trigger, int(a or 0), int(n))
        for trigger, a, n in session.execute(
            select(AskLog.trigger, answered, func.count())
            .where(AskLog.asked_at >= since, AskLog.asked_at <= now, settled)
            .group_by(AskLog.trigger)
            .order_by(func.count().desc(), AskLog.trigger)
        )
    ]
    ov.response_all = Rate(
        "all", sum(r.hits for r in ov.response), sum(r.total for r in ov.response)
    )
    return ov
