"""The feedback form: which questions fit, reading each answer, and asking.

`ValidateFeedbackForm` follows rasa-sdk's form contract: `required_slots` says which
questions fit what is known, each `extract_<slot>` reads the customer's message as the
answer to its question, each `validate_<slot>` decides whether that answer carries
something, and `get_validation_events` (rasa-sdk 3's successor of 2.x's `validate`) first
deals with messages that steer the form instead of answering it, then calls `super()`.
The SDK itself then sets the next `requested_slot` from `required_slots`.

Understanding "skip", "cancel", "no" and "I don't know" is NLU's job (intents skip, cancel,
deny, dont_know; English and Dutch examples in rasa_project/data/nlu/form_control*.yml).
A typed button title of the question ("Overslaan", "Daily") counts as pressing it.

An answer that carries nothing for its question ("yes" or "idk" as a description, a lone
emoji, the question repeated, text at the photo question) gets the question once more
in other words; a second such answer moves on as if skipped. Without a description
there is nothing to pass on, so there moving on ends the form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActionExecutionRejected, ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import REQUESTED_SLOT
from rasa_sdk.types import DomainDict

from actions.common import customer_key, db, language, settings
from actions.feedback_flow import (
    FEEDBACK_TYPES,
    FLOW_SLOTS,
    FORM,
    NO_PRODUCT,
    REASKED,
    SKIPPED,
    Message,
    choose_payload,
    latest,
    reset_flow,
    save,
    summary,
)
from earshot import i18n
from earshot.feedback import service as core


def cancel_button(lang: str) -> dict[str, str]:
    return {"title": i18n.text("cancel_button", lang), "payload": "/cancel"}


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
# Intents of short replies that say nothing about the matter itself.
CONTENTLESS_INTENTS = frozenset({"affirm", "deny", "skip", "dont_know"})
# Up to this many words such a reply is only a reply; longer, it may carry content.
SHORT_REPLY_WORDS = 6
# Up to this many words, a message naming the Cancel or Skip button means pressing it.
CONTROL_WORDS = 3
# At the photo question a "no, but ..." this long still skips, and its words are kept.
DETAIL_WORDS = 7

# English synonyms of the options beside their button titles (matched in every language).
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
# "choose" payloads of the domain's buttons: '/choose{{"value": "importance:blocking"}}'.
_CHOICE = re.compile(r'"value":\s*"(\w+):(\w+)"')
_QUOTED = re.compile(r'"[^"]*"')


def _has(text: str, phrases: Iterable[str]) -> bool:
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


def _words(text: str) -> list[str]:
    return core.normalise(text).split()


def carries_content(text: str, intent: str, prompts: Iterable[str]) -> bool:
    """Whether a typed answer says anything about the matter: not a bare yes/no/skip/
    "I don't know" (by its NLU intent), not one off-topic word ("hmm"), not only symbols
    or emoji, not the question repeated (all its words are words of the question)."""
    words = _words(text)
    if not any(ch.isalnum() for ch in text) or not words:
        return False
    if intent in CONTENTLESS_INTENTS and len(words) <= SHORT_REPLY_WORDS:
        return False
    if intent == "out_of_scope" and len(words) == 1:  # "hmm", "test", "bla"
        return False
    return not any(set(words) <= set(_words(p)) for p in prompts)


@dataclass(frozen=True)
class Reading:
    """What a message means for the question asked.

    kind: answer (value: an option, the text, a photo's file id, or the words typed when
    they are no option), skip, cancel, leave (something else was started), ahead (the
    feedback itself, told before it was asked for), ignore (not for this question: an
    older keyboard, a photo elsewhere; hint explains).
    """

    kind: str
    value: Any = None
    hint: str | None = None


def read_answer(
    slot: str,
    msg: Message,
    slots: dict[str, Any],
    options: dict[str, str],
    *,
    intent: str | None = None,
) -> Reading:
    """Interpret the customer's message as the answer to question `slot`.

    `options` maps the normalised button titles of the question, in every language, to
    what pressing them sends ("daily", "skip", "cancel"); `intent` is NLU's best intent
    other than the fallback (defaults to the message's intent).
    """
    intent = intent or msg.intent
    norm = core.normalise(msg.text)
    if msg.intent == "media":
        file_id = msg.entities.get("file_id")
        if slot == "feedback_attachment" and file_id:
            return Reading("answer", file_id)
        return Reading("ignore", hint="utter_media_note")
    if msg.intent == "choose":
        question, _, option = msg.entities.get("value", "").partition(":")
        if f"feedback_{question}" == slot and option:
            if slot == "feedback_confirm" and option != "yes":
                return Reading("cancel")
            return Reading("answer", option)
        return Reading("ignore", hint="utter_feedback_pick_button")  # an older keyboard
    if msg.intent == "campaign_ask":  # a campaign question arriving mid-form: not now
        return Reading("ignore")
    pressed = None if msg.is_payload else options.get(norm) or _control_title(norm, options)
    if msg.intent == "cancel" or pressed == "cancel":
        return Reading("cancel")
    if msg.intent == "skip" or pressed == "skip":
        return Reading("skip")
    if msg.is_payload:
        return Reading("leave")  # a command or another button: the customer moved on
    if pressed:
        return Reading("answer", pressed)
    if _told_ahead(slot, msg, slots):
        return Reading("ahead")
    if slot in TEXT_SLOTS:
        return Reading("answer", msg.text)
    if slot == "feedback_attachment":
        return Reading("skip") if intent == "deny" else Reading("answer", msg.text)
    if slot in YES_NO_SLOTS and intent in ("affirm", "deny"):
        yes = intent == "affirm"
        if slot == "feedback_confirm" and not yes:
            return Reading("cancel")
        return Reading("answer", "yes" if yes else "no")
    typed = _typed_option(slot, msg, norm)
    if typed is not None:
        return Reading("answer", typed)
    if intent == "deny" and slot != "feedback_confirm":
        return Reading("skip")  # "no" / "nee" to a question that may be skipped
    if msg.intent in LEAVE_INTENTS and msg.confidence >= LEAVE_CONFIDENCE:
        return Reading("leave")
    return Reading("answer", msg.text)  # no option: validation asks again


def _control_title(norm: str, options: dict[str, str]) -> str | None:
    """ "annuleren aub", "skip please": a short message naming the Cancel or Skip button."""
    words = norm.split()
    if len(words) > CONTROL_WORDS:
        return None
    return next(
        (v for t, v in options.items() if v in ("cancel", "skip") and _has(norm, [t])), None
    )


def _told_ahead(slot: str, msg: Message, slots: dict[str, Any]) -> bool:
    """The customer described their feedback while asked for the product or kind."""
    return (
        slot in ("feedback_product", "feedback_type")
        and slots.get("feedback_text") is None
        and msg.intent.startswith("feedback_")
        and len(msg.text.split()) >= 4
    )


def _typed_option(slot: str, msg: Message, norm: str) -> str | None:
    if slot == "feedback_product":
        catalogue = settings().catalogue
        return (
            core.product_from_label(norm, catalogue)
            or core.detect_safely(msg.text, catalogue).product
        )
    for option, words in OPTION_WORDS.get(slot, {}).items():
        if _has(norm, words):
            return option
    return None


def valid_options(slot: str) -> frozenset[str]:
    """The values a question's answer may take (besides skipping)."""
    if slot == "feedback_product":
        return frozenset([*settings().catalogue, NO_PRODUCT])
    if slot == "feedback_type":
        return frozenset(FEEDBACK_TYPES)
    if slot == "feedback_confirm":
        return frozenset({"yes"})
    if slot in YES_NO_SLOTS:
        return frozenset({"yes", "no"})
    return frozenset(OPTION_WORDS.get(slot, {}))


def skipped(slot: str, slots: dict[str, Any]) -> dict[str, Any]:
    """The slots when question `slot` is skipped. No description or no confirmation
    leaves nothing to send: the form ends, keeping an item only if it was described."""
    if slot in ("feedback_text", "feedback_confirm"):
        return {slot: None, "feedback_outcome": "cancelled"}
    if slot == "feedback_attachment":
        return {slot: "received" if slots.get("feedback_attachments") else SKIPPED}
    defaults = {
        "feedback_product": NO_PRODUCT,
        "feedback_type": slots.get("feedback_type_guess") or "other",
        "feedback_similar": "no",
        "feedback_consent": "no",
    }
    return {slot: defaults.get(slot, SKIPPED)}


def _variations(domain: DomainDict, names: Iterable[str]) -> list[dict[str, Any]]:
    responses = domain.get("responses") or {}
    return [v for name in names for v in responses.get(name) or []]


def _ask_responses(slot: str, domain: DomainDict) -> list[str]:
    """Names of the responses that ask question `slot`, reworded ones included."""
    short = slot.removeprefix("feedback_")
    prefixes = (f"utter_ask_{slot}", f"utter_feedback_reask_{short}")
    return [n for n in (domain.get("responses") or {}) if n.startswith(prefixes)]


def prompts(slot: str, domain: DomainDict) -> list[str]:
    """What question `slot` says, in every language and wording, without its quoted
    examples (an answer like an example may well be true)."""
    texts = (str(v.get("text") or "") for v in _variations(domain, _ask_responses(slot, domain)))
    return [_QUOTED.sub(" ", t) for t in texts]


def button_options(slot: str, domain: DomainDict) -> dict[str, str]:
    """Normalised titles of the question's buttons, in every language -> what they send."""
    out: dict[str, str] = {}
    for v in _variations(domain, _ask_responses(slot, domain)):
        for button in v.get("buttons") or []:
            payload = str(button.get("payload") or "")
            choice = _CHOICE.search(payload)
            value = choice.group(2) if choice else payload.lstrip("/")
            out[core.normalise(str(button.get("title") or ""))] = value
    for lang in settings().languages:  # buttons the ask actions build
        out[core.normalise(i18n.text("cancel_button", lang))] = "cancel"
        if slot == "feedback_type":
            out.update({core.normalise(t): k for k, t in i18n.labels("type", lang).items()})
        if slot == "feedback_product":
            out[core.normalise(i18n.text("no_product", lang))] = NO_PRODUCT
    if slot == "feedback_product":
        out.update({core.normalise(p.name): p.key for p in settings().products})
    out.pop("", None)
    return out


def flow_slots(tracker: Tracker) -> dict[str, Any]:
    return {name: tracker.get_slot(name) for name in FLOW_SLOTS}


class ValidateFeedbackForm(FormValidationAction):
    """Read the answer to the question asked; the SDK then picks the next question.

    Slots: all feedback_* slots of feedback_form (see domain/feedback.yml); asks each via
    utter_ask_<slot> / action_ask_<slot>. Responses: utter_feedback_pick_button,
    utter_feedback_photo_received, utter_feedback_detail_added, utter_feedback_moving_on,
    utter_media_note, utter_feedback_interrupted_kept.

    Cancel ends the form with feedback_outcome "cancelled" (action_submit_feedback keeps
    what was given). Starting something else stores what was given as incomplete and
    deactivates the form, rejecting this run so the rule for the new message applies.
    """

    def name(self) -> str:
        return "validate_feedback_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        """The domain's questions that fit the kind of feedback and what is known."""
        fitting = questions(flow_slots(tracker))
        return [slot for slot in domain_slots if slot in fitting]

    async def get_validation_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Messages that steer the form come first; then the SDK validates the answer
        extracted for the question; then, once enough is known, a similar item is sought."""
        asked = self._answering(tracker)
        if asked:
            reading = self._read(asked, tracker, domain)
            if reading.kind == "leave":
                return self._leave(dispatcher, tracker)
            if reading.kind == "cancel":
                return [SlotSet("feedback_outcome", "cancelled")]
            if reading.kind == "ahead":
                return self._ahead(asked, tracker)
            if reading.kind == "ignore":
                if reading.hint:
                    dispatcher.utter_message(response=reading.hint)
                # Setting the slot (to nothing) keeps Rasa from rejecting the form.
                return [SlotSet(asked, None)]
        events = await super().get_validation_events(dispatcher, tracker, domain)
        return [*events, *self._similar(tracker, flow_slots(tracker))]

    # ------------------------------------------------------------------ extraction

    async def extract_feedback_product(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._extract("feedback_product", tracker, domain)

    async def extract_feedback_type(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._extract("feedback_type", tracker, domain)

    async def extract_feedback_text(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._extract("feedback_text", tracker, domain)

    async def extract_feedback_similar(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._extract("feedback_similar", tracker, domain)

    async def extract_feedback_benefit(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._extract("feedback_benefit", tracker, domain)

    async def extract_feedback_frequency(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._extract("feedback_frequency", tracker, domain)

    async def extract_feedback_attachment(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._extract("feedback_attachment", tracker, domain)

    async def extract_feedback_importance(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._extract("feedback_importance", tracker, domain)

    async def extract_feedback_consent(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._extract("feedback_consent", tracker, domain)

    async def extract_feedback_confirm(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._extract("feedback_confirm", tracker, domain)

    # ------------------------------------------------------------------ validation

    async def validate_feedback_product(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._option("feedback_product", value, dispatcher, tracker)

    async def validate_feedback_type(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._option("feedback_type", value, dispatcher, tracker)

    async def validate_feedback_text(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._text("feedback_text", value, dispatcher, tracker, domain)

    async def validate_feedback_similar(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._option("feedback_similar", value, dispatcher, tracker)

    async def validate_feedback_benefit(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._text("feedback_benefit", value, dispatcher, tracker, domain)

    async def validate_feedback_frequency(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._option("feedback_frequency", value, dispatcher, tracker)

    async def validate_feedback_attachment(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """A photo is kept; typed words are kept as detail of the description, and the
        question is asked once more in other words (after that, it is skipped)."""
        slot = "feedback_attachment"
        if self._answering(tracker) != slot:
            return {slot: value}
        slots = flow_slots(tracker)
        msg = latest(tracker)
        if msg.intent == "media":
            dispatcher.utter_message(response="utter_feedback_photo_received")
            photos = [*(slots.get("feedback_attachments") or []), value]
            return {slot: "received", "feedback_attachments": photos, REASKED: None}
        # Words about the matter are kept; a "no" keeps them only when it says more.
        detail = not msg.is_payload and carries_content(
            msg.text, _intent(tracker), prompts(slot, domain)
        )
        if value == SKIPPED and len(_words(msg.text)) < DETAIL_WORDS:
            detail = False
        kept: dict[str, Any] = {}
        if detail and slots.get("feedback_text"):
            dispatcher.utter_message(response="utter_feedback_detail_added")
            kept = {"feedback_text": f"{slots['feedback_text']}\n{msg.text}"}
        if value == SKIPPED:
            return {**skipped(slot, slots), **kept, REASKED: None}
        return {**self._again(slot, dispatcher, tracker), **kept}

    async def validate_feedback_importance(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._option("feedback_importance", value, dispatcher, tracker)

    async def validate_feedback_consent(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._option("feedback_consent", value, dispatcher, tracker)

    async def validate_feedback_confirm(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._option("feedback_confirm", value, dispatcher, tracker)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _answering(tracker: Tracker) -> str | None:
        """The question the latest message answers, if the form runs right after it."""
        asked = tracker.get_slot(REQUESTED_SLOT)
        return str(asked) if asked and answered_now(tracker) else None

    @staticmethod
    def _read(slot: str, tracker: Tracker, domain: DomainDict) -> Reading:
        return read_answer(
            slot,
            latest(tracker),
            flow_slots(tracker),
            button_options(slot, domain),
            intent=_intent(tracker),
        )

    def _extract(self, slot: str, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        """The answer to `slot` when it was asked and just answered; SKIPPED for skip."""
        if self._answering(tracker) != slot:
            return {}
        reading = self._read(slot, tracker, domain)
        if reading.kind == "skip":
            return {slot: SKIPPED}
        return {slot: reading.value} if reading.kind == "answer" else {}

    def _option(
        self, slot: str, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> dict[str, Any]:
        """One of the question's options, or skipped; anything else is asked again."""
        if self._answering(tracker) != slot:
            return {slot: value}  # known before it was asked (a deep link, the message)
        if value == SKIPPED:
            if slot == "feedback_confirm":
                return self._again(slot, dispatcher, tracker, hint="utter_feedback_pick_button")
            return {**skipped(slot, flow_slots(tracker)), REASKED: None}
        if value in valid_options(slot):
            return {slot: value, REASKED: None}
        return self._again(slot, dispatcher, tracker, hint="utter_feedback_pick_button")

    def _text(
        self,
        slot: str,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        """Words that say something; skipped (a follow-up) or asked again otherwise."""
        if self._answering(tracker) != slot:
            return {slot: value}
        if value == SKIPPED and slot != "feedback_text":
            return {**skipped(slot, flow_slots(tracker)), REASKED: None}
        text = str(value or "")
        if value != SKIPPED and carries_content(text, _intent(tracker), prompts(slot, domain)):
            return {slot: text, REASKED: None}
        return self._again(slot, dispatcher, tracker)

    @staticmethod
    def _again(
        slot: str, dispatcher: CollectingDispatcher, tracker: Tracker, hint: str | None = None
    ) -> dict[str, Any]:
        """Ask once more (the ask actions word it anew), or move on when it was."""
        slots = flow_slots(tracker)
        if slots.get(REASKED) != slot:
            if hint:
                dispatcher.utter_message(response=hint)
            return {slot: None, REASKED: slot}
        moved = skipped(slot, slots)
        if not moved.get("feedback_outcome"):
            dispatcher.utter_message(response="utter_feedback_moving_on")
        return {**moved, REASKED: None}

    @staticmethod
    def _ahead(asked: str, tracker: Tracker) -> list[EventType]:
        """The customer described it early: keep that, and ask the question again."""
        msg = latest(tracker)
        detected = core.detect_safely(msg.text, settings().catalogue)
        product = detected.product if asked == "feedback_product" else None
        return [
            SlotSet("feedback_text", msg.text),
            SlotSet("feedback_type_guess", core.suggest_type(detected, msg.intent).value),
            SlotSet(asked, product),
        ]

    @staticmethod
    def _similar(tracker: Tracker, slots: dict[str, Any]) -> list[EventType]:
        """Once type, product and description are known, look for the same wish."""
        if (
            "feedback_similar" not in questions(slots)
            or slots.get("feedback_similar") is not None
            or slots.get("feedback_similar_ref")
            or slots.get("feedback_text") is None
            or slots.get("feedback_product") is None
        ):
            return []
        product = slots["feedback_product"]
        s = settings()
        with db() as session:
            match = core.find_similar(
                session,
                text=str(slots["feedback_text"]),
                product=None if product == NO_PRODUCT else str(product),
                exclude_customer=customer_key(tracker),
                catalogue=s.catalogue,
                language=language(tracker),
            )
        if match is None:
            return [SlotSet("feedback_similar", "none")]
        text = " ".join(match.description.split())
        return [
            SlotSet("feedback_similar_ref", match.ref),
            SlotSet("feedback_similar_text", text if len(text) <= 200 else text[:199] + "…"),
        ]

    @staticmethod
    def _leave(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        """Keep what was said as an incomplete item and give the new message to the
        rules: the form is deactivated and this run rejected. feedback_outcome "left"
        leaves the SDK no question to request next."""
        if tracker.get_slot("feedback_text"):
            ref = save(tracker, complete=False)
            dispatcher.utter_message(response="utter_feedback_interrupted_kept", ref=ref)
        return [
            *reset_flow(),
            SlotSet("feedback_outcome", "left"),
            SlotSet(REQUESTED_SLOT, None),
            ActiveLoop(None),
            ActionExecutionRejected(FORM),
        ]


def _intent(tracker: Tracker) -> str:
    """NLU's best intent for the latest message, passing over the fallback."""
    best = tracker.get_intent_of_latest_message(skip_fallback_intent=True)
    return str(best or latest(tracker).intent)


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
    """Ask for the description, worded for the kind of feedback, or in other words when
    the first answer carried nothing.

    Slots: feedback_text, feedback_type, feedback_reasked. Responses:
    utter_ask_feedback_text_<type>, utter_feedback_reask_text.
    """

    def name(self) -> str:
        return "action_ask_feedback_text"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if tracker.get_slot(REASKED) == "feedback_text":
            dispatcher.utter_message(response="utter_feedback_reask_text")
            return []
        type_ = tracker.get_slot("feedback_type")
        type_ = type_ if type_ in FEEDBACK_TYPES else "other"
        dispatcher.utter_message(response=f"utter_ask_feedback_text_{type_}")
        return []


class ActionAskFeedbackBenefit(Action):
    """Ask the one follow-up of ideas ("what would it let you do?") and complaints
    ("what should have happened?"), in other words when asked again.

    Slots: feedback_benefit, feedback_type, feedback_reasked. Responses:
    utter_ask_feedback_benefit_<idea|complaint>, utter_feedback_reask_benefit_<...>.
    """

    def name(self) -> str:
        return "action_ask_feedback_benefit"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        type_ = "complaint" if tracker.get_slot("feedback_type") == "complaint" else "idea"
        again = tracker.get_slot(REASKED) == "feedback_benefit"
        prefix = "utter_feedback_reask_benefit" if again else "utter_ask_feedback_benefit"
        dispatcher.utter_message(response=f"{prefix}_{type_}")
        return []


class ActionAskFeedbackAttachment(Action):
    """Ask for a screenshot or photo, in other words when asked again.

    Slots: feedback_attachment, feedback_reasked. Responses: utter_ask_feedback_attachment,
    utter_feedback_reask_attachment.
    """

    def name(self) -> str:
        return "action_ask_feedback_attachment"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        again = tracker.get_slot(REASKED) == "feedback_attachment"
        response = "utter_feedback_reask_attachment" if again else "utter_ask_feedback_attachment"
        dispatcher.utter_message(response=response)
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
