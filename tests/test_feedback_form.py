"""The feedback form's validation action through rasa-sdk's own `run`, with the real
domain: answers that carry nothing are asked once more in other words and then skipped,
"skip" / "overslaan", "cancel" / "stoppen" and "no" / "nee" steer every step, words typed
at the photo question are kept, and the SDK picks the next question."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.feedback_flow import FLOW_SLOTS
from actions.feedback_form import ValidateFeedbackForm, carries_content, prompts
from earshot.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent


def _domain() -> dict[str, Any]:
    merged: dict[str, Any] = {"responses": {}, "forms": {}, "slots": {}}
    for path in sorted((ROOT / "rasa_project/domain").glob("*.yml")):
        part = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key in merged:
            merged[key].update(part.get(key) or {})
    return merged


DOMAIN = _domain()


@pytest.fixture(autouse=True)
def _database(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The similar-idea lookup reads a throwaway database of this test session."""
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


PROBLEM = {
    "feedback_product": "doorbell",
    "feedback_type": "problem",
    "feedback_text": "The chime stays silent when a visitor presses the button",
    "feedback_similar": "none",
}


def tracker(
    asked: str | None,
    text: str,
    intent: str,
    slots: dict[str, Any] | None = None,
    *,
    confidence: float = 0.95,
    entities: list[dict[str, Any]] | None = None,
    fallback: bool = False,
) -> Tracker:
    """The tracker Rasa sends when the form validates the customer's latest message."""
    ranking = [{"name": intent, "confidence": confidence}]
    if fallback:  # below the threshold: Rasa puts nlu_fallback on top
        ranking.insert(0, {"name": "nlu_fallback", "confidence": 0.6})
    message = {
        "text": text,
        "intent": ranking[0],
        "intent_ranking": ranking,
        "entities": entities or [],
        "metadata": {"language": "en", "channel": "telegram"},
    }
    values = {name: None for name in FLOW_SLOTS} | {"language": "en", "requested_slot": asked}
    values |= slots or {}
    events = [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": text, "parse_data": message},
        {"event": "slot", "name": "requested_slot", "value": asked},
        {"event": "action", "name": "feedback_form"},
    ]
    return Tracker(
        "customer-key",
        values,
        message,
        events,
        False,
        None,
        {"name": "feedback_form"} if asked else {},
        "action_listen",
    )


def run(t: Tracker) -> tuple[dict[str, Any], list[str]]:
    """The slots the validation action sets (last value wins) and the responses it sends."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ValidateFeedbackForm().run(dispatcher, t, DOMAIN))
    slots = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    kinds = [e["event"] for e in events if e.get("event") != "slot"]
    said = [str(m.get("response")) for m in dispatcher.messages]
    return slots | {"_events": kinds}, said


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("yes", "affirm"),
        ("ok", "affirm"),
        ("ja hoor", "affirm"),
        ("idk", "dont_know"),
        ("geen idee", "dont_know"),
        ("no", "deny"),
        ("nee", "deny"),
        ("?", "nlu_fallback"),
        ("👍", "nlu_fallback"),
        ("...", "out_of_scope"),
        ("hmm", "out_of_scope"),
        ("What happened?", "faq"),
        ("wat is er gebeurd", "feedback_problem"),
    ],
)
def test_answers_that_carry_nothing_for_the_description(text: str, intent: str) -> None:
    assert not carries_content(text, intent, prompts("feedback_text", DOMAIN))


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("The chime stays silent when a visitor presses the button", "feedback_problem"),
        ("de app valt steeds uit", "feedback_problem"),
        ("yes, and then the app crashes every single morning at seven", "affirm"),
        ("crashes", "nlu_fallback"),
    ],
)
def test_answers_that_say_something(text: str, intent: str) -> None:
    assert carries_content(text, intent, prompts("feedback_text", DOMAIN))


def test_yes_as_description_is_asked_again_then_ends_the_form() -> None:
    slots = {"feedback_product": "app", "feedback_type": "problem"}
    first, said = run(tracker("feedback_text", "yes", "affirm", slots))
    assert first["feedback_text"] is None and first["feedback_reasked"] == "feedback_text"
    assert first["requested_slot"] == "feedback_text"  # asked again (reworded by the ask)
    assert said == []

    second, said = run(tracker("feedback_text", "ok", "affirm", slots | first))
    assert second["feedback_outcome"] == "cancelled"  # nothing to pass on
    assert second["requested_slot"] is None and second["feedback_text"] is None


def test_a_real_description_after_the_second_question_is_kept() -> None:
    slots = {"feedback_product": "app", "feedback_type": "praise"}
    slots |= {"feedback_reasked": "feedback_text"}
    done, _ = run(
        tracker("feedback_text", "the new dark mode looks great", "feedback_praise", slots)
    )
    assert done["feedback_text"] == "the new dark mode looks great"
    assert done["feedback_reasked"] is None and done["requested_slot"] == "feedback_consent"


def test_typing_at_the_photo_question_keeps_the_words_then_moves_on() -> None:
    said_text = "the light blinks red after the update"
    slots = PROBLEM | {"feedback_frequency": "daily"}
    first, said = run(tracker("feedback_attachment", said_text, "feedback_problem", slots))
    assert said == ["utter_feedback_detail_added"]
    assert first["feedback_text"] == f"{PROBLEM['feedback_text']}\n{said_text}"
    assert first["feedback_attachment"] is None
    assert first["requested_slot"] == "feedback_attachment"

    second, said = run(tracker("feedback_attachment", "yes", "affirm", slots | first))
    assert said == ["utter_feedback_moving_on"]
    assert second["feedback_attachment"] == "skipped"
    assert second["requested_slot"] == "feedback_importance"
    assert "feedback_text" not in second  # "yes" adds nothing to the description


@pytest.mark.parametrize(
    ("text", "intent"), [("no I don't", "deny"), ("nee hoor", "deny"), ("overslaan", "skip")]
)
def test_no_or_skip_at_the_photo_question_skips_it(text: str, intent: str) -> None:
    slots = PROBLEM | {"feedback_frequency": "rarely"}
    done, said = run(tracker("feedback_attachment", text, intent, slots))
    assert done["feedback_attachment"] == "skipped" and done["feedback_reasked"] is None
    assert done["requested_slot"] == "feedback_importance"
    assert "feedback_text" not in done and said == []


def test_a_photo_is_kept() -> None:
    photo = [{"entity": "file_id", "value": "AgAD-photo"}]
    slots = PROBLEM | {"feedback_frequency": "rarely"}
    done, said = run(tracker("feedback_attachment", "/media", "media", slots, entities=photo))
    assert done["feedback_attachments"] == ["AgAD-photo"]
    assert done["feedback_attachment"] == "received" and said == ["utter_feedback_photo_received"]


@pytest.mark.parametrize(
    ("text", "intent", "fallback"),
    [
        ("skip", "skip", False),
        ("overslaan", "skip", False),
        ("Overslaan", "out_of_scope", True),  # the button's title, typed
        ("nee", "deny", False),
        ("no", "deny", False),
    ],
)
def test_skip_and_no_in_both_languages_skip_a_question(
    text: str, intent: str, fallback: bool
) -> None:
    slots = PROBLEM | {"feedback_frequency": "daily", "feedback_attachment": "skipped"}
    done, said = run(tracker("feedback_importance", text, intent, slots, fallback=fallback))
    assert done["feedback_importance"] == "skipped"
    assert done["requested_slot"] == "feedback_consent" and said == []


@pytest.mark.parametrize(
    ("text", "intent"),
    [("cancel", "cancel"), ("stoppen", "cancel"), ("annuleren aub", "faq")],  # the button
)
@pytest.mark.parametrize("asked", ["feedback_text", "feedback_frequency", "feedback_consent"])
def test_cancel_in_both_languages_ends_the_form(text: str, intent: str, asked: str) -> None:
    slots = {"feedback_product": "app", "feedback_type": "problem"}
    done, _ = run(tracker(asked, text, intent, slots))
    assert done["feedback_outcome"] == "cancelled" and done["requested_slot"] is None


def test_a_button_question_asks_once_more_then_moves_on() -> None:
    first, said = run(tracker("feedback_frequency", "qwzx", "nlu_fallback", PROBLEM))
    assert said == ["utter_feedback_pick_button"]
    assert first["feedback_frequency"] is None and first["requested_slot"] == "feedback_frequency"

    second, said = run(tracker("feedback_frequency", "hmm", "out_of_scope", PROBLEM | first))
    assert said == ["utter_feedback_moving_on"]
    assert second["feedback_frequency"] == "skipped"
    assert second["requested_slot"] == "feedback_attachment"


def test_an_old_keyboard_is_not_counted_as_an_answer() -> None:
    stale = [{"entity": "value", "value": "product:hub"}]
    slots = PROBLEM | {"feedback_reasked": "feedback_frequency"}
    done, said = run(tracker("feedback_frequency", "/choose", "choose", slots, entities=stale))
    assert said == ["utter_feedback_pick_button"]
    assert done["feedback_frequency"] is None and done["requested_slot"] == "feedback_frequency"


@pytest.mark.parametrize(("text", "value"), [("Dagelijks", "daily"), ("every day", "daily")])
def test_typed_options_in_both_languages(text: str, value: str) -> None:
    done, _ = run(tracker("feedback_frequency", text, "nlu_fallback", PROBLEM, fallback=True))
    assert done["feedback_frequency"] == value
    assert done["requested_slot"] == "feedback_attachment"


def test_the_confirmation_is_never_skipped_silently() -> None:
    slots = PROBLEM | {
        "feedback_frequency": "daily",
        "feedback_attachment": "skipped",
        "feedback_importance": "important",
        "feedback_consent": "no",
    }
    first, said = run(tracker("feedback_confirm", "skip", "skip", slots))
    assert said == ["utter_feedback_pick_button"] and first["requested_slot"] == "feedback_confirm"
    second, _ = run(tracker("feedback_confirm", "hmm", "out_of_scope", slots | first))
    assert second["feedback_outcome"] == "cancelled"  # kept as incomplete, never sent
    yes, _ = run(tracker("feedback_confirm", "ja, verstuur het", "affirm", slots))
    assert yes["feedback_confirm"] == "yes" and yes["requested_slot"] is None


def test_the_questions_fit_the_kind_of_feedback() -> None:
    praise = {"feedback_product": "app", "feedback_type": "praise"}
    done, _ = run(tracker("feedback_text", "love the new scenes", "feedback_praise", praise))
    assert done["requested_slot"] == "feedback_consent"  # no follow-up, no importance
    problem = {"feedback_product": "app", "feedback_text": "it crashes", "feedback_type_guess": "x"}
    kind, _ = run(tracker("feedback_type", "Probleem", "nlu_fallback", problem, fallback=True))
    assert kind["feedback_type"] == "problem"
    assert kind["feedback_similar"] == "none"  # nothing similar stored yet: not asked
    assert kind["requested_slot"] == "feedback_frequency"


def test_starting_something_else_leaves_the_form() -> None:
    done, _ = run(tracker("feedback_frequency", "how do I reset my hub", "faq", {}))
    assert done["_events"] == ["active_loop", "action_execution_rejected"]
    assert done["requested_slot"] is None


def test_values_known_before_the_question_are_kept_as_they_are() -> None:
    t = tracker(None, "the app keeps freezing", "feedback_problem")
    t.events.append({"event": "slot", "name": "feedback_text", "value": "the app keeps freezing"})
    t.slots["feedback_text"] = "the app keeps freezing"
    t.events.append({"event": "slot", "name": "feedback_product", "value": "app"})
    t.slots["feedback_product"] = "app"
    done, said = run(t)
    assert done["feedback_text"] == "the app keeps freezing" and done["feedback_product"] == "app"
    assert done["requested_slot"] == "feedback_type" and said == []


def test_a_description_like_the_example_of_the_question_is_kept() -> None:
    # The reworded question's example ("The app logs me out every morning.") is no
    # question: an answer in those words may be exactly what happened.
    said = "the app logs me out"
    assert carries_content(said, "feedback_problem", prompts("feedback_text", DOMAIN))
