"""Pydantic v2 schemas: what goes into and comes out of the core, apart from the ORM."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field


class FeedbackType(str, Enum):
    problem = "problem"
    idea = "idea"
    complaint = "complaint"
    praise = "praise"
    other = "other"


class Source(str, Enum):
    chat = "chat"
    after_service = "after_service"
    deep_link = "deep_link"
    campaign = "campaign"
    command = "command"
    import_ = "import"


class Status(str, Enum):
    new = "new"
    under_review = "under_review"
    planned = "planned"
    in_progress = "in_progress"
    done = "done"
    declined = "declined"
    duplicate = "duplicate"


class Importance(str, Enum):
    nice_to_have = "nice_to_have"
    important = "important"
    blocking = "blocking"


# Innovation feeds the roadmap; service and reputation are how customers experience us;
# sales is about buying. Documented in docs/architecture.md ("Feedback categories").
CATEGORY_BY_TYPE = {
    FeedbackType.idea: "innovation",
    FeedbackType.problem: "service",
    FeedbackType.complaint: "reputation",
    FeedbackType.praise: "reputation",
    FeedbackType.other: "service",
}
SALES_PRODUCTS: frozenset[str] = frozenset()


def category_for(type_: FeedbackType, text: str = "") -> str:
    """The documented rule: purchase and price matters are sales, else by type."""
    lowered = text.lower()
    if any(w in lowered for w in ("price", "expensive", "cheap", "discount", "buy", "order")):
        if type_ in (FeedbackType.complaint, FeedbackType.other, FeedbackType.idea):
            return "sales"
    return CATEGORY_BY_TYPE[type_]


class FeedbackIn(BaseModel):
    """A feedback item as captured by a channel, before it is stored."""

    model_config = ConfigDict(str_strip_whitespace=True)

    customer_key: str | None = None
    channel: str = "telegram"
    source: Source = Source.chat
    campaign_id: str | None = None
    language: str = "en"
    product: str | None = None
    type: FeedbackType = FeedbackType.other
    description: str = Field(default="", max_length=8000)
    benefit: str | None = Field(default=None, max_length=8000)
    frequency: str | None = None
    importance: Importance | None = None
    sentiment: float | None = Field(default=None, ge=-1, le=1)
    attachments: list[str] = []
    complete: bool = True
    consent: bool = False
    consent_version: str | None = None
    contact: str | None = None
