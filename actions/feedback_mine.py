"""/myfeedback: the customer's own feedback and what became of it."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common import customer_key, db, language
from actions.feedback_flow import product_name
from earshot import i18n
from earshot.feedback import service as core

EXCERPT_CHARS = 60


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


class ActionMyFeedback(Action):
    """List the customer's feedback (and items they support) with reference and status.

    Responses: utter_my_feedback ({items}), utter_my_feedback_none.
    """

    def name(self) -> str:
        return "action_my_feedback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        with db() as session:
            items = core.items_of_customer(session, customer_key=customer_key(tracker))
        if not items:
            dispatcher.utter_message(response="utter_my_feedback_none")
            return []
        lang = language(tracker)
        statuses = i18n.labels("status", lang)
        lines = []
        for item in items:
            about = product_name(item.product)
            status = statuses.get(item.status, item.status)
            mine = i18n.text("you_support" if item.supported else "you_said", lang)
            line = f'{item.ref} ({status}): {mine} "{_excerpt(item.description)}"'
            lines.append(f"• {line}" + (f" ({about})" if about else ""))
        dispatcher.utter_message(response="utter_my_feedback", items="\n".join(lines))
        return []
