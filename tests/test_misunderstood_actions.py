"""The action server records misunderstood messages where customers meet them: the
fallback, out of scope, a 👎 vote (the question that got the answer) and close answers."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.misunderstood import ActionOutOfScope
from actions.service import ActionAskHelpful, ActionFallbackOptions, ActionStoreRating
from earshot.settings import get_settings
from earshot.storage.db import migrate, session_scope
from earshot.storage.models import MisunderstoodMessage

_senders = (f"{n:032x}" for n in itertools.count(0xA000))


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database of this test's own: the actions commit, so the shared one stays clean."""
    url = f"sqlite:///{tmp_path / 'earshot.db'}"
    migrate(url)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("MISUNDERSTOOD_MARGIN", "0.15")
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def parse(text: str, intent: str, *ranked: tuple[str, float]) -> dict[str, Any]:
    return {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "entities": [],
        "response_selector": {
            "faq": {
                "response": {"intent_response_key": f"faq/{ranked[0][0]}"},
                "ranking": [
                    {"intent_response_key": f"faq/{t}", "confidence": c} for t, c in ranked
                ],
            }
        },
    }


def tracker(sender: str, latest: dict[str, Any], events: list[dict[str, Any]],
            **slots: Any) -> Tracker:  # fmt: skip
    return Tracker(sender, {"language": "en", **slots}, latest, events, False, None, {}, None)


def run(action: Any, t: Tracker) -> CollectingDispatcher:
    dispatcher = CollectingDispatcher()
    asyncio.run(action.run(dispatcher, t, {}))
    return dispatcher


def stored(url: str, sender: str) -> list[tuple[str, list[str], str | None]]:
    with session_scope(url) as s:
        rows = s.scalars(
            select(MisunderstoodMessage)
            .where(MisunderstoodMessage.customer_key == sender)
            .order_by(MisunderstoodMessage.id)
        ).all()
        return [(r.text, r.reasons, r.answered_topic) for r in rows]


def test_thumbs_down_records_the_question_that_got_the_answer(db: str) -> None:
    sender = next(_senders)
    question = parse("is it possible to report issues with payment?", "faq",
                     ("payment_methods", 0.83), ("payment_problem", 0.1))  # fmt: skip
    vote = {"text": '/rate_answer{"helpful": "no"}', "intent": {"name": "rate_answer"},
            "entities": [{"entity": "helpful", "value": "no"}]}  # fmt: skip
    events = [
        {"event": "user", "text": question["text"], "parse_data": question},
        {"event": "bot", "text": "We accept iDEAL..."},
        {"event": "user", "text": vote["text"], "parse_data": vote},
    ]
    said = run(ActionStoreRating(), tracker(sender, vote, events, last_topic="payment_methods"))
    assert said.messages[0]["response"] == "utter_sorry_not_helpful"
    assert stored(db, sender) == [
        ("is it possible to report issues with payment?", ["thumbs_down"], "payment_methods")
    ]
    up = {**vote, "entities": [{"entity": "helpful", "value": "yes"}]}
    other = next(_senders)
    run(ActionStoreRating(), tracker(other, up, events, last_topic="payment_methods"))
    assert stored(db, other) == []


def test_close_answers_are_recorded_and_clear_ones_are_not(db: str) -> None:
    close, clear = next(_senders), next(_senders)
    text = "where could I check when my item is going to arrive?"
    latest = parse(text, "faq", ("order_track", 0.42), ("returns_refunds", 0.41))
    said = run(ActionAskHelpful(), tracker(close, latest, []))
    assert said.messages[0]["response"] == "utter_did_that_help"  # the answer goes on
    assert stored(db, close) == [(text, ["low_margin"], "order_track")]
    latest = parse("where is my order", "faq", ("order_track", 0.95), ("delivery_time", 0.02))
    run(ActionAskHelpful(), tracker(clear, latest, []))
    assert stored(db, clear) == []


def test_fallback_and_out_of_scope_are_recorded_redacted(db: str) -> None:
    sender = next(_senders)
    vague = parse("can you help me buy something, I'm on +31 6 12345678", "nlu_fallback",
                  ("order_place", 0.7), ("delivery_options", 0.1))  # fmt: skip
    said = run(ActionFallbackOptions(), tracker(sender, vague, []))
    assert said.messages[0]["response"] == "utter_fallback_options"
    weather = parse("will it rain tomorrow", "out_of_scope", ("delivery_time", 0.3),
                    ("order_track", 0.2))  # fmt: skip
    said = run(ActionOutOfScope(), tracker(sender, weather, []))
    assert said.messages[0]["response"] == "utter_out_of_scope"
    assert stored(db, sender) == [
        ("can you help me buy something, I'm on [phone]", ["fallback"], None),
        ("will it rain tomorrow", ["out_of_scope"], None),
    ]
