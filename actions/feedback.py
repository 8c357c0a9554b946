"""Feedback capture actions."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import channel, customer_key, db, language, settings
from earshot.schemas import FeedbackIn, FeedbackType, Source
from earshot.storage import repo


class ActionSubmitFeedback(Action):
    """Store the feedback the customer gave and answer with its reference code.

    Slots: feedback_text (filled by feedback_form). Responses: utter_feedback_saved ({ref}).
    """

    def name(self) -> str:
        return "action_submit_feedback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        text = str(tracker.get_slot("feedback_text") or "").strip()
        item = FeedbackIn(
            customer_key=customer_key(tracker),
            channel=channel(tracker),
            source=Source.chat,
            language=language(tracker),
            type=FeedbackType.other,
            description=text,
        )
        with db() as session:
            row = repo.create_feedback(session, item=item, ref_prefix=settings().company.ref_prefix)
            ref = row.ref
        dispatcher.utter_message(response="utter_feedback_saved", ref=ref)
        return [SlotSet("feedback_text", None)]
