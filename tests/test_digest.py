"""The weekly digest: the numbers a product manager reads, redacted and safely rendered."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.orm import Session

from earshot.feedback import queries as feedback_queries
from earshot.feedback.schemas import FeedbackIn, FeedbackType
from earshot.insights import digest as digest_mod
from earshot.insights.digest import build_digest, render_html, render_markdown
from earshot.storage.models import Feedback, ServiceRating, Supporter

SINCE = datetime(2023, 5, 1, tzinfo=timezone.utc)
UNTIL = SINCE + timedelta(days=7)
IN = SINCE + timedelta(days=2)
BEFORE = SINCE - timedelta(days=30)
NAMES = {"bulb": "Lumen Bulb", "plug": "Lumen Plug"}


def make(session: Session, *, at: datetime = IN, **fields: Any) -> Feedback:
    orm_only = {k: fields.pop(k) for k in ("status", "supporters") if k in fields}
    row = feedback_queries.create_feedback(session, item=FeedbackIn(**fields), ref_prefix="DG")
    row.created_at = at
    for k, v in orm_only.items():
        setattr(row, k, v)
    session.flush()
    return row


def supporters(session: Session, item: Feedback, n: int, at: datetime, prefix: str) -> None:
    for i in range(n):
        session.add(Supporter(feedback_id=item.id, customer_key=f"{prefix}{i:031d}", created_at=at))
    item.supporters += n
    session.flush()


def rate(session: Session, topic: str, helpful: bool, n: int, at: datetime = IN) -> None:
    for _ in range(n):
        session.add(ServiceRating(topic=topic, helpful=helpful, created_at=at))
    session.flush()


@pytest.fixture
def sample(session: Session) -> dict[str, Feedback]:
    items = {
        "idea_big": make(
            session,
            at=BEFORE,
            product="bulb",
            type=FeedbackType.idea,
            description="A sunrise alarm that slowly brightens the bulb",
            supporters=1,
        ),
        "idea_small": make(
            session, product="plug", type=FeedbackType.idea, description="An energy meter"
        ),
        "idea_done": make(
            session,
            product="bulb",
            type=FeedbackType.idea,
            description="Done idea",
            status="done",
            supporters=90,
        ),
        "angry": make(
            session,
            product="plug",
            type=FeedbackType.complaint,
            description="No answer, call me on +31 6 12345678 or mail ann@example.org",
            sentiment=-0.9,
        ),
        "happy": make(
            session,
            product="bulb",
            type=FeedbackType.praise,
            description="Colours are <b>gorgeous</b> | best",
            sentiment=0.9,
        ),
        "no_product": make(
            session, type=FeedbackType.problem, description="Something is off with billing"
        ),
        "old": make(
            session, at=BEFORE, product="plug", type=FeedbackType.problem, description="Old news"
        ),
    }
    supporters(session, items["idea_big"], 12, IN, "g")
    supporters(session, items["idea_big"], 3, BEFORE, "h")
    supporters(session, items["idea_small"], 2, IN, "s")
    rate(session, "reset_device", helpful=False, n=3)
    rate(session, "reset_device", helpful=True, n=1)
    rate(session, "pairing", helpful=False, n=1)
    rate(session, "pairing", helpful=True, n=4)
    rate(session, "one_vote", helpful=False, n=1)
    rate(session, "old_topic", helpful=False, n=9, at=BEFORE)
    return items


def test_digest_numbers(session: Session, sample: dict[str, Feedback]) -> None:
    d = build_digest(session, since=SINCE, until=UNTIL, catalogue_names=NAMES)
    assert d.total_new == 5
    by_product = {p.product: p for p in d.new_by_product}
    assert set(by_product) == {"Lumen Bulb", "Lumen Plug", "No product"}
    assert by_product["Lumen Bulb"].total == 2 and by_product["Lumen Bulb"].by_type["praise"] == 1
    assert by_product["Lumen Plug"].by_type == {
        "problem": 0, "idea": 1, "complaint": 1, "praise": 0, "other": 0,
    }  # fmt: skip

    top = [i.ref for i in d.top_ideas]
    assert top[:2] == [sample["idea_big"].ref, sample["idea_small"].ref]
    assert sample["idea_done"].ref not in top  # done ideas are off the list
    assert d.top_ideas[0].supporters == 16 and d.top_ideas[0].gained == 12
    assert d.top_ideas[0].product == "Lumen Bulb"

    assert [(m.ref, m.gained) for m in d.movers] == [
        (sample["idea_big"].ref, 12),
        (sample["idea_small"].ref, 2),
    ]

    quotes = {q.ref: q for q in d.quotes}
    assert sample["angry"].ref in quotes and sample["happy"].ref in quotes
    assert sample["old"].ref not in quotes
    assert d.quotes[0].ref == sample["angry"].ref  # the most negative first

    assert [(t.topic, t.unhelpful, t.votes) for t in d.service_topics] == [
        ("reset_device", 3, 4),
        ("pairing", 1, 5),
    ]
    assert d.service_topics[0].rate == pytest.approx(0.75)


def test_quotes_are_redacted(session: Session, sample: dict[str, Feedback]) -> None:
    # The angry item was stored unredacted (feedback_queries.create_feedback is below the redaction
    # in feedback.save_feedback), so the digest's own redaction is what is tested here.
    assert "ann@example.org" in sample["angry"].description
    d = build_digest(session, since=SINCE, until=UNTIL, catalogue_names=NAMES)
    angry = next(q for q in d.quotes if q.ref == sample["angry"].ref)
    assert angry.text == "No answer, call me on [phone] or mail [email]"
    for text in (render_markdown(d), render_html(d)):
        assert "ann@example.org" not in text and "12345678" not in text
        assert "[email]" in text and "[phone]" in text


def test_markdown_reads_well_and_escapes(session: Session, sample: dict[str, Feedback]) -> None:
    d = build_digest(session, since=SINCE, until=UNTIL, catalogue_names=NAMES)
    md = render_markdown(d)
    assert md.startswith("# Customer feedback digest\n")
    assert "2023-05-01 00:00 UTC to 2023-05-08 00:00 UTC: **5** new feedback items." in md
    for heading in (
        "## New items by product",
        "## Top ideas",
        "## Biggest movers",
        "## In customers' words",
        "## Service answers that did not help",
    ):
        assert heading in md
    assert "| Lumen Bulb | 2 | 0 | 1 | 0 | 1 | 0 |" in md
    assert f"| {sample['idea_big'].ref} | Lumen Bulb |" in md
    assert "| reset_device | 75% | 3 | 4 |" in md
    # Customer text cannot break the table or inject HTML.
    assert "\\<b>gorgeous\\</b> \\| best" in md
    assert "\n\n\n" not in md


def test_markdown_escape_keeps_text_readable() -> None:
    assert digest_mod._md("see [here](http://x.example) <img src=x>\nnext | line") == (
        "see [here]\\(http://x.example) \\<img src=x> next \\| line"
    )
    assert digest_mod._md("reset_device [email]") == "reset_device [email]"


def test_html_is_escaped(session: Session, sample: dict[str, Feedback]) -> None:
    d = build_digest(session, since=SINCE, until=UNTIL, catalogue_names=NAMES)
    html = render_html(d)
    assert html.startswith("<!doctype html>")
    assert "&lt;b&gt;gorgeous&lt;/b&gt;" in html and "<b>gorgeous" not in html
    assert "<h2>Top ideas</h2>" in html and "Lumen Plug" in html


def test_empty_period_is_readable(session: Session) -> None:
    since = datetime(2001, 1, 1, tzinfo=timezone.utc)
    d = build_digest(session, since=since, until=since + timedelta(days=7), catalogue_names={})
    assert d.total_new == 0 and d.movers == [] and d.quotes == [] and d.service_topics == []
    md = render_markdown(d)
    assert "No new feedback in this period." in md
    assert "No item gained supporters in this period." in md
    assert "<p" in render_html(d)
    none_open = replace(d, top_ideas=[])
    assert "No open ideas yet." in render_markdown(none_open)
    assert "No open ideas yet." in render_html(none_open)


def test_top_ideas_are_not_bound_to_the_period(session: Session) -> None:
    idea = make(
        session,
        at=datetime(2000, 6, 1, tzinfo=timezone.utc),
        type=FeedbackType.idea,
        description="A dimmer schedule",
        supporters=10_000,  # above whatever else the database holds
    )
    since = datetime(2001, 1, 1, tzinfo=timezone.utc)
    d = build_digest(session, since=since, until=since + timedelta(days=7), catalogue_names={})
    assert d.total_new == 0
    assert d.top_ideas[0].ref == idea.ref
    md = render_markdown(d)
    assert "Open ideas with the most supporters." in md and idea.ref in md
    assert "No open ideas yet." not in md


def test_naive_times_are_refused(session: Session) -> None:
    with pytest.raises(ValueError):
        build_digest(session, since=datetime(2023, 1, 1), until=datetime(2023, 1, 8))
