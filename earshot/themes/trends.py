"""Themes over time: volume, supporters and sentiment per ISO week, and emerging themes.

The emerging rule: a theme is emerging when its items of the last two weeks arrive at
least `EMERGING_FACTOR` times as fast per week as over the eight weeks before, and the
last two weeks brought at least `EMERGING_MIN_ITEMS` items (so two items after none do
not count). A theme that is new altogether (nothing in the eight weeks before) emerges
on the minimum alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from earshot.storage.models import Feedback, Theme, ThemeMember, utcnow

RECENT = timedelta(weeks=2)
BEFORE = timedelta(weeks=8)
EMERGING_FACTOR = 2.0
EMERGING_MIN_ITEMS = 5


@dataclass(frozen=True)
class Week:
    """One ISO week of a theme (`start` is its Monday)."""

    start: date
    items: int
    supporters: int
    sentiment: float | None


def week_start(when: datetime) -> date:
    """The Monday of the ISO week `when` falls in."""
    day = when.date()
    return day - timedelta(days=day.weekday())


def weekly(
    session: Session, *, theme_ids: Sequence[int], now: datetime | None = None, weeks: int = 12
) -> dict[int, list[Week]]:
    """Per theme: its last `weeks` ISO weeks, oldest first, empty weeks included."""
    now = now or utcnow()
    last = week_start(now)
    starts = [last - timedelta(weeks=k) for k in range(weeks - 1, -1, -1)]
    since = datetime.combine(starts[0], datetime.min.time(), tzinfo=now.tzinfo)
    items: dict[tuple[int, date], int] = defaultdict(int)
    supporters: dict[tuple[int, date], int] = defaultdict(int)
    feelings: dict[tuple[int, date], list[float]] = defaultdict(list)
    rows = session.execute(
        select(ThemeMember.theme_id, Feedback.created_at, Feedback.supporters, Feedback.sentiment)
        .join(Feedback, Feedback.id == ThemeMember.feedback_id)
        .where(ThemeMember.theme_id.in_(list(theme_ids)), Feedback.created_at >= since)
    )
    for tid, created, sup, sentiment in rows:
        key = (int(tid), week_start(created))
        items[key] += 1
        supporters[key] += int(sup or 0)
        if sentiment is not None:
            feelings[key].append(float(sentiment))
    return {
        tid: [
            Week(
                s,
                items[(tid, s)],
                supporters[(tid, s)],
                sum(feelings[(tid, s)]) / len(feelings[(tid, s)]) if feelings[(tid, s)] else None,
            )
            for s in starts
        ]
        for tid in theme_ids
    }


@dataclass(frozen=True)
class Emerging:
    """A theme growing fast, with the numbers behind the call."""

    theme_id: int
    language: str
    label: str
    recent: int  # items in the last two weeks
    before: int  # items in the eight weeks before
    since: datetime  # when it was first seen emerging (this time)

    @property
    def recent_rate(self) -> float:
        """Items per week over the last two weeks."""
        return self.recent / (RECENT / timedelta(weeks=1))

    @property
    def before_rate(self) -> float:
        """Items per week over the eight weeks before."""
        return self.before / (BEFORE / timedelta(weeks=1))


def is_emerging(recent: int, before: int) -> bool:
    """The rule: enough items lately, arriving at least twice as fast as before."""
    recent_rate = recent / (RECENT / timedelta(weeks=1))
    before_rate = before / (BEFORE / timedelta(weeks=1))
    return recent >= EMERGING_MIN_ITEMS and recent_rate >= EMERGING_FACTOR * before_rate


def emerging_themes(session: Session, now: datetime | None = None) -> list[Emerging]:
    """The active themes emerging at `now`, fastest growing first.

    Records when each first became emerging (`Theme.emerging_since`), and forgets it
    (and its announcement) when the theme calms down, so a later surge counts anew.
    """
    now = now or utcnow()
    start = now - RECENT - BEFORE
    recent: dict[int, int] = defaultdict(int)
    before: dict[int, int] = defaultdict(int)
    for tid, created in session.execute(
        select(ThemeMember.theme_id, Feedback.created_at)
        .join(Feedback, Feedback.id == ThemeMember.feedback_id)
        .join(Theme, Theme.id == ThemeMember.theme_id)
        .where(Theme.status == "active", Feedback.created_at >= start, Feedback.created_at < now)
    ):
        if created >= now - RECENT:
            recent[int(tid)] += 1
        else:
            before[int(tid)] += 1
    out: list[Emerging] = []
    flagged = session.scalars(select(Theme).where(Theme.emerging_since.is_not(None))).all()
    hot = {tid for tid in recent if is_emerging(recent[tid], before[tid])}
    for theme in flagged:
        if theme.id not in hot:
            theme.emerging_since = theme.emerging_announced_at = None
    for tid in hot:
        found = session.get(Theme, tid)
        assert found is not None
        theme = found
        if theme.emerging_since is None:
            theme.emerging_since = now
        out.append(
            Emerging(
                tid, theme.language, theme.label, recent[tid], before[tid], theme.emerging_since
            )
        )
    out.sort(key=lambda e: (-(e.recent_rate - e.before_rate), e.theme_id))
    session.flush()
    return out


def newly_emerging(session: Session, now: datetime | None = None) -> list[Emerging]:
    """Emerging themes not announced yet, now marked announced: call it, then send a
    "theme emerging" event for each returned theme (each surge is returned once)."""
    now = now or utcnow()
    fresh = []
    for e in emerging_themes(session, now):
        theme = session.get(Theme, e.theme_id)
        assert theme is not None
        if theme.emerging_announced_at is None:
            theme.emerging_announced_at = now
            fresh.append(e)
    session.flush()
    return fresh
