"""Service answers: "did that help?", fallback with likely topics, and human handoff."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import customer_key, db, language, settings
from actions.misunderstood import remember, remember_if_close, remember_thumbs_down
from earshot import i18n
from earshot.feedback import queries as feedback_queries
from earshot.knowledge import misunderstood

TRANSCRIPT_TURNS = 10


@cache
def _topic_titles(lang: str) -> dict[str, str]:
    """A short human title per topic: its first example question in ``lang``."""
    from earshot.knowledge.kb import load_kb

    s = settings()
    kb = load_kb(s.knowledge_base, languages=s.languages)
    return {t.key: t.examples[lang][0] for t in kb.topics}


def answered_topic(tracker: Tracker) -> str | None:
    """The FAQ topic the response selector picked for the latest message."""
    selector = (tracker.latest_message or {}).get("response_selector") or {}
    key = ((selector.get("faq") or {}).get("response") or {}).get("intent_response_key")
    return str(key).split("/", 1)[1] if key and "/" in str(key) else None


def mentioned_product(text: str) -> str | None:
    from earshot.classify.products import find_product

    return find_product(text, settings().catalogue)


class ActionAskHelpful(Action):
    """After an answer, ask "did that help?" once per topic per conversation.

    Slots: last_topic, last_product, rated_topics, fallback_count. Responses: utter_did_that_help.
    """

    def name(self) -> str:
        return "action_ask_helpful"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        entities = {
            e.get("entity"): e.get("value") for e in tracker.latest_message.get("entities", [])
        }
        topic = answered_topic(tracker) or entities.get("topic")
        if topic is None:
            return []
        events: list[EventType] = [SlotSet("last_topic", topic), SlotSet("fallback_count", 0.0)]
        remember_if_close(tracker, topic)
        product = mentioned_product(str(tracker.latest_message.get("text") or ""))
        if product:
            events.append(SlotSet("last_product", product))
        rated = list(tracker.get_slot("rated_topics") or [])
        if topic not in rated:
            dispatcher.utter_message(response="utter_did_that_help")
            events.append(SlotSet("rated_topics", [*rated, topic]))
        return events


class ActionStoreRating(Action):
    """Store a 👍/👎 vote on the last answer as a service rating, and react to it.

    Slots: last_topic, last_vote. Entities: helpful. Responses: utter_glad_it_helped,
    utter_sorry_not_helpful.
    """

    def name(self) -> str:
        return "action_store_rating"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        value = next(tracker.get_latest_entity_values("helpful"), None)
        topic = tracker.get_slot("last_topic")
        if value not in ("yes", "no") or not topic:
            return []
        helpful = value == "yes"
        with db() as session:
            feedback_queries.record_rating(
                session,
                topic=str(topic),
                helpful=helpful,
                customer_key=customer_key(tracker),
                language=language(tracker),
            )
        if not helpful:
            remember_thumbs_down(tracker, str(topic))
        dispatcher.utter_message(
            response="utter_glad_it_helped" if helpful else "utter_sorry_not_helpful"
        )
        return [SlotSet("last_vote", "up" if helpful else "down")]


class ActionFallbackOptions(Action):
    """On low confidence offer the two likely topics and "something else"; a second
    failure in a row offers a person.

    Slots: fallback_count. Responses: utter_fallback_options, utter_offer_human.
    """

    def name(self) -> str:
        return "action_fallback_options"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        count = int(tracker.get_slot("fallback_count") or 0) + 1
        remember(tracker, misunderstood.FALLBACK)
        if count >= 2:
            dispatcher.utter_message(response="utter_offer_human")
            return [SlotSet("fallback_count", 0.0)]
        selector = (tracker.latest_message or {}).get("response_selector") or {}
        ranking = (selector.get("faq") or {}).get("ranking") or []
        lang = language(tracker)
        titles = _topic_titles(lang)
        buttons: list[dict[str, str]] = []
        for entry in ranking:
            key = str(entry.get("intent_response_key") or "").split("/", 1)[-1]
            if key in titles and len(buttons) < 2:
                payload = "/faq_choice" + json.dumps({"topic": key})
                buttons.append({"title": titles[key], "payload": payload})
        buttons.append({"title": i18n.text("something_else", lang), "payload": "/fallback_other"})
        dispatcher.utter_message(response="utter_fallback_options", buttons=buttons)
        return [SlotSet("fallback_count", float(count))]


class ActionAnswerTopic(Action):
    """Answer the topic a customer picked from the fallback buttons.

    Entities: topic. Responses: utter_faq/<topic> (generated from the knowledge base).
    """

    def name(self) -> str:
        return "action_answer_topic"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        topic = next(tracker.get_latest_entity_values("topic"), None)
        if topic not in _topic_titles(settings().default_language):
            dispatcher.utter_message(response="utter_rephrase")
            return []
        dispatcher.utter_message(response=f"utter_faq/{topic}")
        return [SlotSet("last_topic", topic), SlotSet("fallback_count", 0.0)]


def transcript(tracker: Tracker, turns: int = TRANSCRIPT_TURNS) -> str:
    """The last turns of the conversation, personal data redacted."""
    from earshot.privacy.redaction import redact

    lines = []
    for event in tracker.events:
        text = event.get("text")
        if not text or str(text).startswith("/"):
            continue
        who = (
            "Customer"
            if event.get("event") == "user"
            else "Assistant"
            if event.get("event") == "bot"
            else None
        )
        if who:
            lines.append(f"{who}: {redact(str(text))}")
    return "\n".join(lines[-2 * turns :])


class ActionHandoff(Action):
    """Hand the conversation to a person: forward a transcript to the support chat, or
    give the contact options when no support chat is configured.

    Slots: handoff_active. Responses: utter_handoff_done, utter_handoff_no_chat,
    utter_contact_options. Custom message: {"handoff": {...}} for the channel to forward.
    """

    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        chat_id = settings().support_chat_id
        if chat_id is None:
            dispatcher.utter_message(response="utter_handoff_no_chat")
            dispatcher.utter_message(response="utter_contact_options")
            return []
        dispatcher.utter_message(
            json_message={
                "handoff": {
                    "support_chat_id": chat_id,
                    "topic": tracker.get_slot("last_topic"),
                    "transcript": transcript(tracker),
                }
            }
        )
        dispatcher.utter_message(response="utter_handoff_done")
        return [SlotSet("handoff_active", True)]
