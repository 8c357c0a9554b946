"""Feedback capture: the ways into the feedback form and storing what it collected."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import customer_key, db, language, settings
from actions.feedback_flow import latest, product_name, reset_flow, save
from earshot.feedback import service as core
from earshot.feedback.schemas import Source
from earshot.outreach import campaigns

SPONTANEOUS = ("feedback_idea", "feedback_problem", "feedback_complaint", "feedback_praise")


class ActionFeedbackStart(Action):
    """Open the feedback form from /feedback, "I have feedback" or feedback told straight
    away. Told straight away, the message is the description, its kind the guess and its
    product detected; a feedback question asked shortly before counts as answered.

    Slots: feedback_* (cleared first). Forms: feedback_form (next in the rule).
    """

    def name(self) -> str:
        return "action_feedback_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        msg = latest(tracker)
        events = reset_flow()
        source = Source.command if msg.is_payload else Source.chat
        product = campaign = None
        with db() as session:
            ask = core.close_ask(session, customer_key=customer_key(tracker), outcome="answered")
        if ask is not None:
            source, campaign, product = Source(ask.trigger), ask.campaign_id, ask.product
        if msg.intent in SPONTANEOUS and msg.text and not msg.is_payload:
            detected = core.detect_safely(msg.text, settings().catalogue)
            guess = core.suggest_type(detected, msg.intent)
            events += [
                SlotSet("feedback_text", msg.text),
                SlotSet("feedback_type_guess", guess.value),
            ]
            product = detected.product or product
        events += [
            SlotSet("feedback_source", source.value),
            SlotSet("feedback_campaign", campaign),
            SlotSet("feedback_product", product),
        ]
        return events


class ActionFeedbackDeepLink(Action):
    """`/start fb-<product>` or `/start c-<campaign>`: open the form for that product or
    running campaign; anything else greets as /start does.

    Entities: deep_link. Slots: feedback_entry (the rule branches on it), feedback_*.
    Responses: utter_feedback_intro_product, utter_feedback_intro_campaign (utter_start
    follows in the rule for unknown links).
    """

    def name(self) -> str:
        return "action_feedback_deep_link"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        link = latest(tracker).entities.get("deep_link", "").strip().lower()
        s = settings()
        kind, _, arg = link.partition("-")
        events = reset_flow()
        if kind == "fb" and product_name(arg):
            dispatcher.utter_message(
                response="utter_feedback_intro_product", product_name=product_name(arg)
            )
            return [
                *events,
                SlotSet("feedback_source", Source.deep_link.value),
                SlotSet("feedback_product", arg),
                SlotSet("feedback_entry", True),
            ]
        campaign = campaigns.find_campaign(s.campaigns, arg) if kind == "c" else None
        if campaign is not None and campaigns.campaign_active(campaign):
            question = campaigns.campaign_question(campaign, language(tracker), s.default_language)
            dispatcher.utter_message(response="utter_feedback_intro_campaign", question=question)
            return [
                *events,
                SlotSet("feedback_source", Source.campaign.value),
                SlotSet("feedback_campaign", campaign.id),
                SlotSet("feedback_product", campaign.product),
                SlotSet("feedback_entry", True),
            ]
        return [SlotSet("feedback_entry", False)]


class ActionSubmitFeedback(Action):
    """End of the feedback form: store the item and give its reference, or add the
    customer as a supporter of the similar item they recognised, or, when cancelled,
    keep what was given as an incomplete item.

    Slots: feedback_* (cleared afterwards), feedback_outcome, feedback_similar,
    feedback_similar_ref, feedback_confirm. Responses: utter_feedback_saved ({ref}),
    utter_feedback_supported ({ref}, {supporters}), utter_feedback_cancelled,
    utter_feedback_cancelled_kept ({ref}).
    """

    def name(self) -> str:
        return "action_submit_feedback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if tracker.get_slot("feedback_outcome") == "cancelled":
            if tracker.get_slot("feedback_text"):
                ref = save(tracker, complete=False)
                dispatcher.utter_message(response="utter_feedback_cancelled_kept", ref=ref)
            else:
                dispatcher.utter_message(response="utter_feedback_cancelled")
            return reset_flow()
        similar = tracker.get_slot("feedback_similar_ref")
        if tracker.get_slot("feedback_similar") == "yes" and similar:
            with db() as session:
                item = core.add_supporter(
                    session, ref=str(similar), customer_key=customer_key(tracker)
                )
                found = (item.ref, item.supporters) if item else None
            if found:
                dispatcher.utter_message(
                    response="utter_feedback_supported", ref=found[0], supporters=found[1]
                )
                return reset_flow()
        # Confirmed, or the similar item vanished meanwhile: store it as the customer's own.
        confirmed = tracker.get_slot("feedback_confirm") == "yes" or similar is not None
        ref = save(tracker, complete=confirmed)
        dispatcher.utter_message(response="utter_feedback_saved", ref=ref)
        return reset_flow()
