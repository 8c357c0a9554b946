"""Closing the loop: tell a customer what became of their feedback."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common import db
from earshot.feedback import queries as feedback_queries

SUMMARY_CHARS = 80
STATUSES = ("planned", "done", "declined")


class ActionNotifyStatus(Action):
    """Say that the customer's item (entity ref) moved to a status (entity status).

    Responses: utter_status_planned, utter_status_done, utter_status_declined.
    """

    def name(self) -> str:
        return "action_notify_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        ref = next(tracker.get_latest_entity_values("ref"), None)
        status = next(tracker.get_latest_entity_values("status"), None)
        if not ref or status not in STATUSES:
            return []
        with db() as session:
            item = feedback_queries.feedback_by_ref(session, ref=str(ref))
            if item is None:
                return []
            text = " ".join(item.description.split())
        summary = text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"
        dispatcher.utter_message(response=f"utter_status_{status}", ref=item.ref, summary=summary)
        return []
