"""The customer's language: confirm a choice, or offer the languages on buttons."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common import settings

# The channel adds the front end's current language as an entity of this extractor;
# an explicit choice comes from a button or `/language nl` payload instead.
CHANNEL_EXTRACTOR = "EarshotInput"


class ActionSetLanguage(Action):
    """Confirm an explicit language choice (the `language` slot is already set from the
    payload's entity), or ask which language when none was given or it is not offered.

    Slots: language. Entities: language. Responses: utter_language_set,
    utter_choose_language.
    """

    def name(self) -> str:
        return "action_set_language"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        chosen = next(
            (
                e.get("value")
                for e in tracker.latest_message.get("entities", [])
                if e.get("entity") == "language" and e.get("extractor") != CHANNEL_EXTRACTOR
            ),
            None,
        )
        if chosen in settings().languages:
            dispatcher.utter_message(response="utter_language_set")
        else:
            dispatcher.utter_message(response="utter_choose_language")
        return []
