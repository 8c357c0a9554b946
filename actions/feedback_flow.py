"""What the feedback actions share: the form's slots, labels, reading the customer's
latest message, and turning the slots into a stored item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet

from actions.common import channel, customer_key, db, language, settings
from earshot import i18n
from earshot.feedback import service as core
from earshot.feedback.schemas import FeedbackIn, FeedbackType, Importance, Source

FORM = "feedback_form"
SKIPPED = "skipped"
NO_PRODUCT = "none"
# The question asked again because its answer carried nothing (see feedback_form).
REASKED = "feedback_reasked"

# Slots of one pass through the form; every way in clears them first.
FLOW_SLOTS = (
    "feedback_source",
    "feedback_campaign",
    "feedback_product",
    "feedback_type_guess",
    "feedback_type",
    "feedback_text",
    "feedback_similar",
    "feedback_similar_ref",
    "feedback_similar_text",
    "feedback_benefit",
    "feedback_frequency",
    "feedback_attachment",
    "feedback_attachments",
    "feedback_importance",
    "feedback_consent",
    "feedback_confirm",
    "feedback_outcome",
    REASKED,
)

# Kinds of feedback the form offers (labels per language in earshot.i18n).
FEEDBACK_TYPES = ("problem", "idea", "complaint", "praise", "other")


def reset_flow() -> list[EventType]:
    return [SlotSet(name, None) for name in FLOW_SLOTS]


def choose_payload(question: str, option: str) -> str:
    """A button payload answering `question`; see the note in domain/feedback.yml."""
    return '/choose{"value": "' + f"{question}:{option}" + '"}'


def product_name(key: str | None) -> str | None:
    return settings().product_name(key) if key and key != NO_PRODUCT else None


@dataclass(frozen=True)
class Message:
    """The customer's latest message as the feedback actions need it."""

    intent: str
    confidence: float
    text: str
    entities: dict[str, str]

    @property
    def is_payload(self) -> bool:
        """Button presses and commands arrive as "/intent{...}" payloads."""
        return self.text.startswith("/")


def latest(tracker: Tracker) -> Message:
    msg = tracker.latest_message or {}
    intent = msg.get("intent") or {}
    entities = {
        str(e.get("entity")): str(e.get("value"))
        for e in msg.get("entities") or []
        if e.get("entity") and e.get("value") is not None
    }
    return Message(
        intent=str(intent.get("name") or ""),
        confidence=float(intent.get("confidence") or 0.0),
        text=str(msg.get("text") or "").strip(),
        entities=entities,
    )


def _text(tracker: Tracker, slot: str) -> str | None:
    value = tracker.get_slot(slot)
    return None if value in (None, "", SKIPPED) else str(value)


def draft(tracker: Tracker, *, complete: bool) -> FeedbackIn:
    """The item as the slots describe it; an incomplete one never carries consent."""
    product = _text(tracker, "feedback_product")
    type_ = _text(tracker, "feedback_type") or _text(tracker, "feedback_type_guess") or "other"
    importance = _text(tracker, "feedback_importance")
    source = _text(tracker, "feedback_source") or Source.chat.value
    return FeedbackIn(
        customer_key=customer_key(tracker),
        channel=channel(tracker),
        source=Source(source),
        campaign_id=_text(tracker, "feedback_campaign"),
        language=language(tracker),
        product=None if product == NO_PRODUCT else product,
        type=FeedbackType(type_),
        description=_text(tracker, "feedback_text") or "",
        benefit=_text(tracker, "feedback_benefit"),
        frequency=_text(tracker, "feedback_frequency"),
        importance=Importance(importance) if importance else None,
        attachments=list(tracker.get_slot("feedback_attachments") or []),
        complete=complete,
        consent=complete and tracker.get_slot("feedback_consent") == "yes",
    )


def save(tracker: Tracker, *, complete: bool) -> str:
    """Store the item the slots describe; returns its reference code."""
    s = settings()
    with db() as session:
        row = core.save_feedback(
            session,
            item=draft(tracker, complete=complete),
            ref_prefix=s.company.ref_prefix,
            catalogue=s.catalogue,
        )
        return row.ref


def summary(slots: dict[str, Any], lang: str) -> str:
    """The confirmation summary: what will be stored, in the customer's words."""

    def t(key: str) -> str:
        return i18n.text(key, lang)

    type_ = str(slots.get("feedback_type") or "other")
    product = product_name(slots.get("feedback_product")) or t("no_product")
    lines = [
        f"{t('summary_product')}: {product}",
        f"{t('summary_kind')}: {i18n.labels('type', lang).get(type_, type_)}",
        f'{t("summary_words")}: "{slots.get("feedback_text") or ""}"',
    ]
    benefit = slots.get("feedback_benefit")
    if benefit and benefit != SKIPPED:
        label = t("summary_should_have" if type_ == "complaint" else "summary_would_let")
        lines.append(f"{label}: {benefit}")
    frequency = slots.get("feedback_frequency")
    if frequency and frequency != SKIPPED:
        label = i18n.labels("frequency", lang).get(frequency, frequency)
        lines.append(f"{t('summary_frequency')}: {label}")
    photos = len(slots.get("feedback_attachments") or [])
    if photos:
        lines.append(f"{t('summary_photos')}: {photos}")
    importance = slots.get("feedback_importance")
    if importance and importance != SKIPPED:
        label = i18n.labels("importance", lang).get(importance, importance)
        lines.append(f"{t('summary_importance')}: {label}")
    consent = t("yes" if slots.get("feedback_consent") == "yes" else "no")
    lines.append(f"{t('summary_contact')}: {consent}")
    return "\n".join(lines)
