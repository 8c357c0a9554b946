"""Team statistics for /stats: windows, counts, top ideas and the Telegram-sized text."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.orm import Session

from earshot.feedback import queries as feedback_queries
from earshot.feedback.schemas import FeedbackIn
from earshot.insights.stats import TELEGRAM_LIMIT, format_stats_text, team_stats
from earshot.storage.models import Feedback

NOW = datetime(2030, 6, 15, 12, 0, tzinfo=timezone.utc)
NAMES = {"bulb": "Lumen Bulb", "app": "Lumen app"}


def make(session: Session, *, days_ago: float, **fields: Any) -> Feedback:
    orm = {k: fields.pop(k) for k in ("status", "supporters") if k in fields}
    fields.setdefault("description", "a remark")
    row = feedback_queries.create_feedback(session, item=FeedbackIn(**fields), ref_prefix="ST")
    row.created_at = NOW - timedelta(days=days_ago)
    for k, v in orm.items():
        setattr(row, k, v)
    session.flush()
    return row


def test_counts_per_window_and_top_ideas(session: Session) -> None:
    make(session, days_ago=1, product="bulb", type="idea", supporters=4, description="dim at dusk")
    make(session, days_ago=3, product="bulb", type="problem", status="planned")
    make(session, days_ago=10, product="app", type="idea", supporters=9, description="widgets")
    make(session, days_ago=20, type="praise")
    make(session, days_ago=40, product="app", type="idea", supporters=20, status="done")
    make(session, days_ago=0.5, product="app", type="idea", supporters=2, status="duplicate")
    make(session, days_ago=-1, product="app", type="idea")  # after `now`: not counted

    stats = team_stats(session, now=NOW)
    week, month = stats.windows[7], stats.windows[30]
    assert week.total == 3
    assert week.by_type == {"idea": 2, "problem": 1}
    assert week.by_product == {"bulb": 2, "app": 1}
    assert week.by_status == {"new": 1, "duplicate": 1, "planned": 1}
    assert month.total == 5
    assert month.by_product == {"app": 2, "bulb": 2, None: 1}
    # Open ideas only: the done and the duplicate one are left out.
    top = [(i.snippet, i.supporters) for i in stats.top_ideas if i.ref.startswith("ST")]
    assert top[:2] == [("widgets", 9), ("dim at dusk", 4)]


def test_text_is_plain_and_fits_one_telegram_message(session: Session) -> None:
    make(
        session,
        days_ago=1,
        product="bulb",
        type="idea",
        supporters=3,
        description="call me on +31 6 12345678 about dimming",
    )
    text = format_stats_text(team_stats(session, now=NOW), NAMES)
    assert "Last 7 days: 1 new item" in text and "Lumen Bulb 1" in text
    assert "Top open ideas by supporters:" in text and "3 supporters" in text
    assert "12345678" not in text  # customer text is redacted
    for i in range(60):
        make(
            session,
            days_ago=2,
            product="bulb",
            type="idea",
            supporters=50 + i,
            description="x" * 500,
        )
    stats = team_stats(session, now=NOW, top=60)
    long = format_stats_text(stats, {"bulb": "B" * 3000})
    assert len(long) <= TELEGRAM_LIMIT and long.endswith("…")


def test_empty_database_and_naive_time(session: Session) -> None:
    text = format_stats_text(team_stats(session, now=datetime(1990, 1, 1, tzinfo=timezone.utc)), {})
    assert "Last 30 days: 0 new items" in text
    with pytest.raises(ValueError):
        team_stats(session, now=datetime(2030, 1, 1))
