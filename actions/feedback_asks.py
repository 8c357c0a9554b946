"""Asking for feedback: one polite question after service, campaign questions, and the
answers to them (yes, not now, don't ask me again)."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import channel, customer_key, db, language, settings
from actions.feedback_flow import latest, product_name, reset_flow
from earshot.conversations import queries as conversations
from earshot.feedback import service as core
from earshot.feedback.schemas import Source
from earshot.outreach import campaigns


class ActionMaybeAskFeedback(Action):
    """After a 👍 or "thanks" following an answer, maybe ask one feedback question.

    Only if the rules allow it (core.may_ask_after_service: not opted out, not asked
    within ask_interval_days, no handoff, no 👎 just now); the ask is logged.
    Slots: last_product, handoff_active, last_vote (service dialogue).
    Responses: utter_feedback_ask_product ({product_name}), utter_feedback_ask_general.
    """

    def name(self) -> str:
        return "action_maybe_ask_feedback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        key = customer_key(tracker)
        product = tracker.get_slot("last_product")
        name = product_name(product)
        with db() as session:
            allowed = core.may_ask_after_service(
                session,
                customer_key=key,
                interval_days=settings().ask_interval_days,
                handoff_active=bool(tracker.get_slot("handoff_active")),
                last_vote=tracker.get_slot("last_vote"),
            )
            if allowed:
                core.record_ask(
                    session,
                    customer_key=key,
                    trigger=Source.after_service.value,
                    product=product if name else None,
                    channel=channel(tracker),
                )
        if not allowed:
            return []
        if name:
            dispatcher.utter_message(response="utter_feedback_ask_product", product_name=name)
        else:
            dispatcher.utter_message(response="utter_feedback_ask_general")
        return []


class ActionCampaignAsk(Action):
    """Put a campaign's question to the customer, in their language, with Answer / Not
    now / Don't ask me again. Triggered by the channel's outbox worker through Rasa's
    HTTP API; says nothing (so nothing is sent) when the campaign is unknown or over, the
    customer opted out, a person is handling the chat, or they were already asked.

    Entities: campaign. Slots: handoff_active.
    Responses: utter_campaign_question ({question}).
    """

    def name(self) -> str:
        return "action_campaign_ask"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        s = settings()
        campaign_id = next(tracker.get_latest_entity_values("campaign"), None)
        campaign = campaigns.find_campaign(s.campaigns, str(campaign_id or ""))
        if campaign is None or not campaigns.campaign_active(campaign):
            return []
        key = customer_key(tracker)
        with db() as session:
            if not core.may_ask_campaign(
                session, customer_key=key, handoff_active=bool(tracker.get_slot("handoff_active"))
            ) or core.asked_in_campaign(session, customer_key=key, campaign_id=campaign.id):
                return []
            customer = conversations.get_customer(session, user_key=key)
            # Proactive turns carry no message metadata: use the language we know them by.
            lang = (customer.language if customer else None) or language(tracker)
            core.record_ask(
                session,
                customer_key=key,
                trigger=Source.campaign.value,
                product=campaign.product,
                campaign_id=campaign.id,
            )
        question = campaigns.campaign_question(campaign, lang, s.default_language)
        dispatcher.utter_message(response="utter_campaign_question", question=question)
        return []


class ActionFeedbackAskAccept(Action):
    """Yes / Answer to a feedback question: open the form for what was asked about.

    A pressed Yes opens the form even when the question is old (it was then not an
    answer, just welcome feedback); a typed yes does so only when a question is open.
    Slots: feedback_entry (the rule branches on it), feedback_* (cleared first, then
    source, campaign and product of the question). Forms: feedback_form (next in the rule).
    """

    def name(self) -> str:
        return "action_feedback_ask_accept"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        with db() as session:
            ask = core.close_ask(session, customer_key=customer_key(tracker), outcome="answered")
        if ask is None and not latest(tracker).is_payload:
            return [SlotSet("feedback_entry", False)]
        events = [*reset_flow(), SlotSet("feedback_entry", True)]
        if ask is None:
            return [*events, SlotSet("feedback_source", Source.chat.value)]
        return [
            *events,
            SlotSet("feedback_source", ask.trigger),
            SlotSet("feedback_campaign", ask.campaign_id),
            SlotSet("feedback_product", ask.product),
        ]


class ActionFeedbackAskDecline(Action):
    """Not now: close the question as declined.

    Responses: utter_feedback_ask_declined.
    """

    def name(self) -> str:
        return "action_feedback_ask_decline"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        with db() as session:
            core.close_ask(session, customer_key=customer_key(tracker), outcome="declined")
        dispatcher.utter_message(response="utter_feedback_ask_declined")
        return []


class ActionFeedbackStopAsking(Action):
    """Don't ask me again (button, /stop or in words): never ask this customer again.

    Responses: utter_feedback_stopped_asking.
    """

    def name(self) -> str:
        return "action_feedback_stop_asking"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        with db() as session:
            core.opt_out(session, customer_key=customer_key(tracker), channel=channel(tracker))
        dispatcher.utter_message(response="utter_feedback_stopped_asking")
        return []
