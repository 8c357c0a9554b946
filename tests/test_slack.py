"""Slack: important new items and the weekly digest reach the channel in Block Kit, through
slack-sdk's AsyncWebClient pointed at testkit's fake Slack Web API.

The deliverer commits, so this module has databases of its own (SQLite, PostgreSQL).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import sessionmaker

from earshot.feedback import service, triage
from earshot.feedback.schemas import FeedbackIn, FeedbackType
from earshot.integrations import deliveries
from earshot.integrations.deliverer import Deliverer, digest_week, schedule_digest
from earshot.settings import Settings, load_settings
from earshot.storage.db import engine_for, session_scope
from earshot.storage.models import (
    Feedback,
    IntegrationAttempt,
    IntegrationDelivery,
    IntegrationEvent,
)
from testkit.slack_api import FakeSlack, block_errors
from tests.conftest import empty_items_and_events

TOKEN = "xoxb-test-token"


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
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(TOKEN, channels=("#product",)) as slack:
        yield slack


def settings_for(url: str, slack_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "company": {"name": "Test Co", "ref_prefix": "SL"},
        "products": [{"key": "bulb", "name": "Lumen Bulb"}],
        "dashboard_url": "https://earshot.example",
        "slack_bot_token": TOKEN,
        "slack_channel": "#product",
        "slack_api_base_url": slack_url + "/api/",
        "slack_supporters": 3,
        "slack_negative_sentiment": -0.3,
        "webhook_retry_base_s": 0.01,
        "webhook_retry_max_s": 0.02,
    }
    values.update(overrides)
    return load_settings(**values)


def add(url: str, text: str, type_: FeedbackType, sentiment: float | None) -> str:
    with session_scope(url) as s:
        item = FeedbackIn(
            customer_key="a" * 32, type=type_, description=text, sentiment=sentiment, product="bulb"
        )
        return service.save_feedback(s, item=item, ref_prefix="SL").ref


def deliver(settings: Settings, rounds: int = 1) -> list[deliveries.Result]:
    d = Deliverer(settings, sessionmaker(engine_for(settings.db_url), expire_on_commit=False))

    async def go() -> list[deliveries.Result]:
        out: list[deliveries.Result] = []
        try:
            for _ in range(rounds):
                out += await d.tick()
                await asyncio.sleep(0.05)
        finally:
            await d.aclose()
        return out

    return asyncio.run(go())


def test_important_items_go_to_the_channel_and_others_do_not(db: str, fake: FakeSlack) -> None:
    angry = add(
        db, "The bulb keeps dropping wifi <every> night & it is awful", FeedbackType.problem, -0.7
    )
    add(db, "The bulb is a bit slow to respond", FeedbackType.problem, -0.1)  # mild
    idea = add(db, "A sunrise alarm that fades the bulb in", FeedbackType.idea, 0.5)
    deliver(settings_for(db, fake.url))
    assert len(fake.messages) == 1
    (msg,) = fake.messages
    assert msg["channel"] == "#product" and angry in msg["text"]
    assert block_errors(msg["blocks"]) == []
    header, quote, context, actions = msg["blocks"]
    assert header["text"]["text"] == f"New problem {angry}"
    assert "&lt;every&gt;" in quote["text"]["text"] and "&amp;" in quote["text"]["text"]
    assert "-0.70" in context["elements"][0]["text"]
    assert actions["elements"][0]["url"] == f"https://earshot.example/items/{angry}"

    # the idea reaches 3 supporters: announced once, not again at 4
    with session_scope(db) as s:
        for key in ("b" * 32, "c" * 32, "d" * 32):
            service.add_supporter(s, ref=idea, customer_key=key)
    deliver(settings_for(db, fake.url))
    assert len(fake.messages) == 2
    assert (
        fake.messages[1]["blocks"][0]["text"]["text"] == f"{idea}: 3 customers now want this idea"
    )

    # merging a duplicate (its author moves over as a supporter) takes another idea to 3
    other = add(db, "Wake me up with light fading in", FeedbackType.idea, 0.3)
    dup = add(db, "Sunrise wake-up light please", FeedbackType.idea, 0.3)
    with session_scope(db) as s:
        service.add_supporter(s, ref=other, customer_key="e" * 32)
        row = s.scalar(select(Feedback).where(Feedback.ref == dup))
        assert row is not None
        row.customer_key = "f" * 32  # another customer than the original's author
    deliver(settings_for(db, fake.url))
    assert len(fake.messages) == 2  # 2 supporters: not yet
    with session_scope(db) as s:
        triage.merge(s, ref=dup, into_ref=other, actor="anna")
    deliver(settings_for(db, fake.url))
    assert len(fake.messages) == 3
    title = fake.messages[2]["blocks"][0]["text"]["text"]
    assert title == f"{other}: 3 customers now want this idea"


def test_weekly_digest_is_posted_once_per_week(db: str, fake: FakeSlack) -> None:
    s = settings_for(db, fake.url, slack_digest_weekday=1, slack_digest_hour=9)
    add(db, "Let the bulb fade in slowly as a sunrise alarm", FeedbackType.idea, 0.4)
    monday = datetime(2026, 12, 7, 8, 59, tzinfo=timezone.utc)
    with session_scope(db) as session:
        assert schedule_digest(session, settings=s, now=monday) is None  # not yet due
        first = schedule_digest(session, settings=s, now=monday + timedelta(minutes=2))
        later = schedule_digest(session, settings=s, now=monday + timedelta(days=2))
    assert first is not None and later is None  # once per ISO week
    assert digest_week(monday, s) == ("2026-W50", datetime(2026, 12, 7, 9, tzinfo=timezone.utc))
    # the digest covers the week before; widen it to include the item made just now
    with session_scope(db) as session:
        ev = session.scalar(
            select(IntegrationEvent).where(IntegrationEvent.kind == "digest.weekly")
        )
        assert ev is not None
        ev.payload = {
            **ev.payload,
            "until": (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat(),
        }
    deliver(s)
    digests = [m for m in fake.messages if m["text"].startswith("Feedback digest")]
    assert len(digests) == 1
    blocks = digests[0]["blocks"]
    assert block_errors(blocks) == []
    text = str(blocks)
    assert "Top ideas" in text and "sunrise alarm" in text and "Lumen Bulb 1" in text


def test_slack_errors_permanent_and_temporary(db: str, fake: FakeSlack) -> None:
    add(db, "The bulb burns out after a week, terrible", FeedbackType.problem, -0.8)
    results = deliver(settings_for(db, fake.url, slack_channel="#nowhere"))
    assert [(r.outcome, r.error) for r in results] == [("failed", "channel_not_found")]

    with session_scope(db) as s:
        s.execute(delete(IntegrationEvent))
    add(db, "The plug clicks loudly and it is awful", FeedbackType.problem, -0.8)
    results = deliver(settings_for(db, fake.url, slack_bot_token="xoxb-revoked"))
    assert [(r.outcome, r.error) for r in results] == [("failed", "invalid_auth")]

    with session_scope(db) as s:
        s.execute(delete(IntegrationEvent))
    add(db, "The doorbell never rings, awful", FeedbackType.problem, -0.8)
    fake.rate_limited = 1
    results = deliver(settings_for(db, fake.url), rounds=1)
    assert [(r.outcome, r.status_code) for r in results] == [("retry", 429)]
    with session_scope(db) as s:
        d = s.scalar(select(IntegrationDelivery))
        attempt = s.scalar(select(IntegrationAttempt))
        assert d is not None and d.status == "pending" and attempt is not None
        # Slack's Retry-After (1 s) wins over the shorter backoff (at most 0.02 s here)
        assert d.next_attempt_at is not None
        assert d.next_attempt_at - attempt.at >= timedelta(seconds=1)


def test_fake_slack_checks_blocks_like_slack() -> None:
    assert block_errors([{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}])
    assert block_errors([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}])
    assert block_errors([{"type": "banner"}])
    assert block_errors([]) and block_errors([{"type": "divider"}] * 51)
    assert block_errors([{"type": "divider"}]) == []
