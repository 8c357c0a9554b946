"""The feedback form: which question comes next, reading each answer, and asking.

Every slot of the form has a custom mapping; `ValidateFeedbackForm` reads the answer to
the question it asked (buttons, typed words, a photo) itself, so "cancel", "skip", a
stale button or a different command are told apart from an answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActionExecutionRejected, ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import REQUESTED_SLOT

from actions.common import customer_key, db, language, settings
from actions.feedback_flow import (
    FEEDBACK_TYPES,
    FLOW_SLOTS,
    FORM,
    NO_PRODUCT,
    SKIPPED,
    Message,
    choose_payload,
    latest,
    reset_flow,
    save,
    summary,
)
from earshot import feedback as core
from earshot import i18n


def cancel_button(lang: str) -> dict[str, str]:
    return {"title": i18n.text("cancel_button", lang), "payload": "/cancel"}


CANCEL_WORDS = frozenset(
    {
        "cancel",
        "stop",
        "quit",
        "abort",
        "exit",
        "never mind",
        "nevermind",
        "forget it",
        "cancel it",
        "stop it",
        "cancel that",
    }
)
SKIP_WORDS = frozenset({"skip", "skip it", "skip this", "pass", "next"})
YES_WORDS = ("yes", "yeah", "yep", "yup", "sure", "ok", "okay", "correct", "confirm", "send")
NO_WORDS = ("no", "nope", "nah", "not really")
# Typed messages that clearly start something else; below this confidence a message at a
# button question is more likely a badly typed answer, so the question is asked again.
LEAVE_CONFIDENCE = 0.8
LEAVE_INTENTS = frozenset(
    {
        "faq",
        "human_agent",
        "give_feedback",
        "feedback_idea",
        "feedback_problem",
        "feedback_complaint",
        "feedback_praise",
        "stop_asking",
        "greet",
        "goodbye",
    }
)

# Words recognised when an option is typed instead of pressed (normalised text).
OPTION_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "feedback_type": {
        "problem": ("problem", "bug", "issue", "broken", "error", "fault", "not working"),
        "idea": ("idea", "suggestion", "wish", "feature", "request"),
        "complaint": ("complaint", "complain", "unhappy", "angry"),
        "praise": ("praise", "compliment", "love it", "great"),
        "other": ("other", "something else"),
    },
    "feedback_frequency": {
        "always": ("always", "all the time", "constantly", "every time"),
        "daily": ("daily", "every day", "each day"),
        "weekly": ("weekly", "every week", "each week"),
        "rarely": ("rarely", "sometimes", "occasionally", "seldom"),
        "once": ("once", "one time"),
    },
    "feedback_importance": {
        "blocking": ("blocking", "blocker", "blocked", "critical", "urgent", "cant use"),
        "nice_to_have": ("nice to have", "nice", "minor", "not important", "low"),
        "important": ("important", "medium", "major"),
    },
}
YES_NO_SLOTS = ("feedback_similar", "feedback_consent", "feedback_confirm")
TEXT_SLOTS = ("feedback_text", "feedback_benefit")
FOLLOW_UPS: dict[str, tuple[str, ...]] = {
    "idea": ("feedback_benefit",),
    "problem": ("feedback_frequency", "feedback_attachment"),
    "complaint": ("feedback_benefit",),
    "praise": (),
    "other": (),
}
# Praise needs no urgency rating.
NO_IMPORTANCE = frozenset({"praise"})


def _has(text: str, phrases: tuple[str, ...]) -> bool:
    return any(re.search(rf"\b{re.escape(p)}\b", text) for p in phrases)


def questions(slots: dict[str, Any]) -> list[str]:
    """The form's questions for what is known so far, in order."""
    if slots.get("feedback_outcome"):
        return []
    order = ["feedback_product", "feedback_type", "feedback_text"]
    type_ = slots.get("feedback_type")
    if type_ in {t.value for t in core.SIMILAR_TYPES}:
        order.append("feedback_similar")
        if slots.get("feedback_similar") == "yes":  # "me too": nothing more to ask
            return order
    if type_ is None:
        return order
    order += FOLLOW_UPS.get(type_, ())
    if type_ not in NO_IMPORTANCE:
        order.append("feedback_importance")
    return [*order, "feedback_consent", "feedback_confirm"]


def next_question(slots: dict[str, Any]) -> str | None:
    return next((q for q in questions(slots) if slots.get(q) is None), None)


def answered_now(tracker: Tracker) -> bool:
    """True when the form runs right after the customer's message (not after a detour)."""
    marker_seen = False
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "user":
            return True
        if kind == "action":
            name = event.get("name")
            if name == FORM and not marker_seen:
                marker_seen = True  # the form's own execution, added for the validation
                continue
            if name == "action_extract_slots":
                continue
            return False
    return False


@dataclass(frozen=True)
class Reading:
    """What a message means for the question asked."""

    kind: str  # value | cancel | invalid | leave
    value: Any = None
    hint: str | None = None  # response explaining why the question is asked again


def _yes_no(msg: Message, norm: str) -> str | None:
    if msg.intent == "affirm" or _has(norm, YES_WORDS):
        return "yes"
    if msg.intent == "deny" or _has(norm, NO_WORDS):
        return "no"
    return None


def _typed_option(slot: str, msg: Message, norm: str) -> str | None:
    if slot == "feedback_product":
        if _has(norm, ("not about a product", "no product", "none", "general", "nothing")):
            return NO_PRODUCT
        catalogue = settings().catalogue
        return (
            core.product_from_label(norm, catalogue)
            or core.detect_safely(msg.text, catalogue).product
        )
    if slot in YES_NO_SLOTS:
        return _yes_no(msg, norm)
    for option, words in OPTION_WORDS.get(slot, {}).items():
        if _has(norm, words):
            return option
    return None


def _skip_value(slot: str, slots: dict[str, Any]) -> Reading:
    if slot == "feedback_text":
        return Reading("invalid", hint="utter_feedback_need_text")
    if slot == "feedback_confirm":
        return Reading("invalid", hint="utter_feedback_pick_button")
    defaults = {
        "feedback_product": NO_PRODUCT,
        "feedback_type": slots.get("feedback_type_guess") or "other",
        "feedback_similar": "no",
        "feedback_consent": "no",
    }
    return Reading("value", defaults.get(slot, SKIPPED))


def read_answer(slot: str, msg: Message, slots: dict[str, Any]) -> Reading:
    """Interpret the customer's message as the answer to question `slot`."""
    norm = core.normalise(msg.text)
    if msg.intent == "cancel" or norm in CANCEL_WORDS:
        return Reading("cancel")
    if msg.intent == "campaign_ask":  # a campaign question arriving mid-form: not now
        return Reading("invalid")
    if msg.intent == "media":
        file_id = msg.entities.get("file_id")
        if slot == "feedback_attachment" and file_id:
            return Reading("value", file_id)
        return Reading("invalid", hint="utter_media_note")
    if msg.intent == "skip" or norm in SKIP_WORDS:
        return _skip_value(slot, slots)
    if msg.intent == "choose":
        question, _, option = msg.entities.get("value", "").partition(":")
        if f"feedback_{question}" == slot and option:
            if slot == "feedback_confirm" and option != "yes":
                return Reading("cancel")
            return Reading("value", option)
        return Reading("invalid", hint="utter_feedback_pick_button")  # an older keyboard
    if msg.is_payload:
        return Reading("leave")  # a command or another button: the customer moved on
    if slot in TEXT_SLOTS:
        return Reading("value", msg.text) if msg.text else Reading("invalid")
    if slot == "feedback_attachment":
        if _yes_no(msg, norm) == "no":
            return Reading("value", SKIPPED)
        return Reading("invalid", hint="utter_feedback_need_photo")
    typed = _typed_option(slot, msg, norm)
    if slot == "feedback_confirm" and typed == "no":
        return Reading("cancel")
    if typed is not None:
        return Reading("value", typed)
    if msg.intent in LEAVE_INTENTS and msg.confidence >= LEAVE_CONFIDENCE:
        return Reading("leave")
    return Reading("invalid", hint="utter_feedback_pick_button")


class ValidateFeedbackForm(FormValidationAction):
    """Read the answer to the question asked, then pick the next question.

    Slots: all feedback_* slots of feedback_form (see domain/feedback.yml); asks each via
    utter_ask_<slot> / action_ask_<slot>. Responses: utter_feedback_pick_button,
    utter_feedback_need_text, utter_feedback_need_photo, utter_feedback_photo_received,
    utter_media_note, utter_feedback_interrupted_kept.

    Cancel ends the form with feedback_outcome "cancelled" (action_submit_feedback keeps
    what was given). Starting something else stores what was given as incomplete and
    deactivates the form, rejecting this run so the rule for the new message applies.
    """

    def name(self) -> str:
        return "validate_feedback_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        slots = {name: tracker.get_slot(name) for name in FLOW_SLOTS}
        asked = tracker.get_slot(REQUESTED_SLOT)
        updates: dict[str, Any] = {}
        msg = latest(tracker)
        if asked and answered_now(tracker) and self._is_description(asked, msg, slots):
            # The customer skipped ahead and described it: keep that, ask the question again.
            detected = core.detect_safely(msg.text, settings().catalogue)
            guess = core.suggest_type(detected, msg.intent).value
            updates.update(feedback_text=msg.text, feedback_type_guess=guess)
            if asked == "feedback_product":
                updates[asked] = detected.product
            else:
                updates[asked] = None
        elif asked and answered_now(tracker):
            reading = read_answer(asked, msg, slots)
            if reading.kind == "leave":
                return self._leave(dispatcher, tracker)
            if reading.kind == "cancel":
                updates["feedback_outcome"] = "cancelled"
            elif reading.kind == "value" and asked == "feedback_attachment":
                photos = [*(slots.get("feedback_attachments") or [])]
                if reading.value != SKIPPED:
                    photos.append(reading.value)
                    dispatcher.utter_message(response="utter_feedback_photo_received")
                updates["feedback_attachments"] = photos
                updates[asked] = "received" if photos else SKIPPED
            elif reading.kind == "value":
                updates[asked] = reading.value
            else:
                if reading.hint:
                    dispatcher.utter_message(response=reading.hint)
                # Setting the slot (to nothing) keeps Rasa from rejecting the form.
                updates[asked] = None
        slots.update(updates)
        updates.update(self._similar(tracker, slots))
        slots.update(updates)
        return [
            *(SlotSet(k, v) for k, v in updates.items()),
            SlotSet(REQUESTED_SLOT, next_question(slots)),
        ]

    @staticmethod
    def _is_description(asked: str, msg: Message, slots: dict[str, Any]) -> bool:
        return (
            asked in ("feedback_product", "feedback_type")
            and slots.get("feedback_text") is None
            and msg.intent.startswith("feedback_")
            and not msg.is_payload
            and len(msg.text.split()) >= 4
        )

    @staticmethod
    def _similar(tracker: Tracker, slots: dict[str, Any]) -> dict[str, Any]:
        """Once type, product and description are known, look for the same wish."""
        if (
            "feedback_similar" not in questions(slots)
            or slots.get("feedback_similar") is not None
            or slots.get("feedback_similar_ref")
            or slots.get("feedback_text") is None
            or slots.get("feedback_product") is None
        ):
            return {}
        product = slots["feedback_product"]
        s = settings()
        with db() as session:
            match = core.find_similar(
                session,
                text=str(slots["feedback_text"]),
                product=None if product == NO_PRODUCT else str(product),
                exclude_customer=customer_key(tracker),
                catalogue=s.catalogue,
            )
        if match is None:
            return {"feedback_similar": "none"}
        text = " ".join(match.description.split())
        return {
            "feedback_similar_ref": match.ref,
            "feedback_similar_text": text if len(text) <= 200 else text[:199] + "…",
        }

    @staticmethod
    def _leave(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        if tracker.get_slot("feedback_text"):
            ref = save(tracker, complete=False)
            dispatcher.utter_message(response="utter_feedback_interrupted_kept", ref=ref)
        return [
            *reset_flow(),
            SlotSet(REQUESTED_SLOT, None),
            ActiveLoop(None),
            ActionExecutionRejected(FORM),
        ]


class ActionAskFeedbackProduct(Action):
    """Ask which product the feedback is about: the catalogue on buttons.

    Slots: feedback_product. Responses: utter_ask_feedback_product.
    """

    def name(self) -> str:
        return "action_ask_feedback_product"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        buttons = [
            {"title": p.name, "payload": choose_payload("product", p.key)}
            for p in settings().products
        ]
        lang = language(tracker)
        buttons += [
            {
                "title": i18n.text("no_product", lang),
                "payload": choose_payload("product", NO_PRODUCT),
            },
            cancel_button(lang),
        ]
        dispatcher.utter_message(response="utter_ask_feedback_product", buttons=buttons)
        return []


class ActionAskFeedbackType(Action):
    """Ask (or confirm the guess of) the kind of feedback on buttons, the guess first.

    Slots: feedback_type, feedback_type_guess. Responses: utter_ask_feedback_type,
    utter_ask_feedback_type_guess.
    """

    def name(self) -> str:
        return "action_ask_feedback_type"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        guess = tracker.get_slot("feedback_type_guess")
        lang = language(tracker)
        titles = i18n.labels("type", lang)
        order = sorted(FEEDBACK_TYPES, key=lambda t: t != guess)
        buttons = [{"title": titles[t], "payload": choose_payload("type", t)} for t in order]
        buttons.append(cancel_button(lang))
        if guess in FEEDBACK_TYPES:
            dispatcher.utter_message(
                response="utter_ask_feedback_type_guess",
                type_label=i18n.labels("type_with_article", lang)[guess],
                buttons=buttons,
            )
        else:
            dispatcher.utter_message(response="utter_ask_feedback_type", buttons=buttons)
        return []


class ActionAskFeedbackText(Action):
    """Ask for the description, worded for the kind of feedback.

    Slots: feedback_text, feedback_type. Responses: utter_ask_feedback_text_<type>.
    """

    def name(self) -> str:
        return "action_ask_feedback_text"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        type_ = tracker.get_slot("feedback_type")
        type_ = type_ if type_ in FEEDBACK_TYPES else "other"
        dispatcher.utter_message(response=f"utter_ask_feedback_text_{type_}")
        return []


class ActionAskFeedbackBenefit(Action):
    """Ask the one follow-up of ideas ("what would it let you do?") and complaints
    ("what should have happened?").

    Slots: feedback_benefit, feedback_type. Responses: utter_ask_feedback_benefit_idea,
    utter_ask_feedback_benefit_complaint.
    """

    def name(self) -> str:
        return "action_ask_feedback_benefit"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        type_ = "complaint" if tracker.get_slot("feedback_type") == "complaint" else "idea"
        dispatcher.utter_message(response=f"utter_ask_feedback_benefit_{type_}")
        return []


class ActionAskFeedbackConfirm(Action):
    """Show the summary of what will be stored, with Confirm / Cancel.

    Slots: all feedback_* slots. Responses: utter_ask_feedback_confirm ({summary}).
    """

    def name(self) -> str:
        return "action_ask_feedback_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        slots = {name: tracker.get_slot(name) for name in FLOW_SLOTS}
        dispatcher.utter_message(
            response="utter_ask_feedback_confirm", summary=summary(slots, language(tracker))
        )
        return []
