"""Record what the assistant likely got wrong, for the dashboard's Misunderstood queue.

The service actions call `remember` where a misunderstanding shows: the fallback, out of
scope, a 👎 vote, an answer whose top two topics were close. The core
(earshot.knowledge.misunderstood) redacts and stores; a failure to record is logged and
never costs the customer an answer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common import customer_key, db, language, settings
from earshot.knowledge import misunderstood

log = logging.getLogger(__name__)


def remember(
    tracker: Tracker,
    reason: str,
    *,
    text: str | None = None,
    parse_data: Mapping[str, Any] | None = None,
    answered_topic: str | None = None,
) -> None:
    """Store the message (by default the latest) as misunderstood for `reason`."""
    latest = tracker.latest_message or {}
    try:
        with db() as session:
            misunderstood.record(
                session,
                text=str(text if text is not None else latest.get("text") or ""),
                reason=reason,
                language=language(tracker),
                customer_key=customer_key(tracker),
                parse_data=parse_data if parse_data is not None else latest,
                answered_topic=answered_topic,
            )
    except Exception:
        log.exception("could not record a misunderstood message (%s)", reason)


def remember_if_close(tracker: Tracker, answered_topic: str | None) -> None:
    """An answer was given: record it when the top two topics were close."""
    if misunderstood.is_low_margin(tracker.latest_message, settings().misunderstood_margin):
        remember(tracker, misunderstood.LOW_MARGIN, answered_topic=answered_topic)


def question_answered(tracker: Tracker) -> dict[str, Any] | None:
    """The customer's last typed message before the current one (a vote, a button): the
    question that got the answer being rated, with its parse data."""
    users = [e for e in tracker.events if e.get("event") == "user"]
    for event in reversed(users[:-1]):
        text = str(event.get("text") or "")
        if text and not text.startswith("/"):
            return {"text": text, "parse_data": event.get("parse_data") or {}}
    return None


def remember_thumbs_down(tracker: Tracker, answered_topic: str | None) -> None:
    """A 👎 vote: record the question whose answer it was."""
    question = question_answered(tracker)
    if question is not None:
        remember(
            tracker,
            misunderstood.THUMBS_DOWN,
            text=question["text"],
            parse_data=question["parse_data"],
            answered_topic=answered_topic,
        )


class ActionOutOfScope(Action):
    """Say what the assistant can help with, and record the declined request.

    Responses: utter_out_of_scope.
    """

    def name(self) -> str:
        return "action_out_of_scope"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_out_of_scope")
        remember(tracker, misunderstood.OUT_OF_SCOPE)
        return []
