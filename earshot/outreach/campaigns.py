"""Feedback campaigns: which are running, their question in the customer's language,
queueing the question for every reachable customer, and a campaign's counts.

The queued sends are delivered by the bot through earshot/outreach/outbox.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, exists, func, insert, literal, select
from sqlalchemy.orm import Session

from earshot.feedback.service import ASK_OPEN_FOR
from earshot.settings import Campaign
from earshot.storage.models import AskLog, CampaignSend, Customer, Feedback, utcnow


class CampaignError(Exception):
    """A campaign that does not exist or is not running."""


def find_campaign(campaigns: Iterable[Campaign], campaign_id: str) -> Campaign | None:
    return next((c for c in campaigns if c.id == campaign_id), None)


def campaign_active(campaign: Campaign, now: datetime | None = None) -> bool:
    now = now or utcnow()
    if campaign.starts is not None and now < campaign.starts:
        return False
    return campaign.ends is None or now <= campaign.ends


def campaign_question(campaign: Campaign, language: str | None, default_language: str) -> str:
    """The question in the customer's language, else the default, else any."""
    q = campaign.question
    return q.get(language or "") or q.get(default_language) or next(iter(q.values()), "")


@dataclass(frozen=True)
class Enqueued:
    added: int
    total: int


def enqueue_campaign(
    session: Session, *, campaign: Campaign, now: datetime | None = None
) -> Enqueued:
    """Queue the campaign question for every reachable customer who has not opted out.

    Idempotent: a customer already queued for this campaign is not queued again (the
    unique campaign_id + customer_key constraint backs this up against a concurrent run).
    """
    if not campaign_active(campaign, now):
        raise CampaignError(f"campaign '{campaign.id}' is not running now")

    def queued() -> int:
        stmt = select(func.count()).where(CampaignSend.campaign_id == campaign.id)
        return int(session.scalar(stmt) or 0)

    before = queued()
    already = exists().where(
        CampaignSend.campaign_id == campaign.id, CampaignSend.customer_key == Customer.user_key
    )
    source = select(literal(campaign.id), Customer.user_key, literal("pending")).where(
        Customer.do_not_ask.is_(False), Customer.chat_id.is_not(None), ~already
    )
    session.execute(
        insert(CampaignSend).from_select(["campaign_id", "customer_key", "status"], source)
    )
    total = queued()  # rowcount of INSERT ... SELECT is not reliable on every driver
    return Enqueued(added=total - before, total=total)


@dataclass
class CampaignStatus:
    campaign_id: str
    queued: int = 0  # rows in campaign_sends
    pending: int = 0
    sending: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0  # not sent: the channel could not (e.g. WhatsApp's window closed)
    asked: int = 0  # questions actually put to a customer (ask_log)
    answered: int = 0
    declined: int = 0
    ignored: int = 0
    waiting: int = 0  # asked less than ASK_OPEN_FOR ago, no answer yet
    items: int = 0  # feedback items with this campaign as their source
    extra: dict[str, int] = field(default_factory=dict)


def campaign_status(
    session: Session, *, campaign_id: str, now: datetime | None = None
) -> CampaignStatus:
    """Counts of a campaign: queue progress, asks and what came of them, items received."""
    now = now or utcnow()
    status = CampaignStatus(campaign_id=campaign_id)
    for state, n in session.execute(
        select(CampaignSend.status, func.count())
        .where(CampaignSend.campaign_id == campaign_id)
        .group_by(CampaignSend.status)
    ):
        status.queued += n
        if state in ("pending", "sending", "sent", "failed", "skipped"):
            setattr(status, state, n)
        else:
            status.extra[state] = n
    asks = and_(AskLog.trigger == "campaign", AskLog.campaign_id == campaign_id)
    outcomes: Counter[str] = Counter()
    for outcome, n in session.execute(
        select(AskLog.outcome, func.count()).where(asks).group_by(AskLog.outcome)
    ):
        outcomes[outcome] += n
    status.waiting = int(
        session.scalar(
            select(func.count())
            .select_from(AskLog)
            .where(asks, AskLog.outcome == "asked", AskLog.asked_at >= now - ASK_OPEN_FOR)
        )
        or 0
    )
    status.asked = sum(outcomes.values())
    status.answered = outcomes["answered"]
    status.declined = outcomes["declined"]
    # Still unanswered after ASK_OPEN_FOR counts as ignored, like an explicit "ignored".
    status.ignored = outcomes["ignored"] + outcomes["asked"] - status.waiting
    status.items = int(
        session.scalar(
            select(func.count()).select_from(Feedback).where(Feedback.campaign_id == campaign_id)
        )
        or 0
    )
    return status


@dataclass(frozen=True)
class CampaignRow:
    """A configured campaign as the dashboard lists it."""

    id: str
    running: bool
    status: CampaignStatus
    deliveries: dict[str, int]  # WhatsApp delivery statuses of its asks (accepted..failed)


def campaign_rows(session: Session, *, campaigns: Sequence[Campaign]) -> list[CampaignRow]:
    """Every configured campaign with its counts and its WhatsApp delivery statuses."""
    from earshot.conversations.whatsapp import status_counts

    return [
        CampaignRow(
            id=c.id,
            running=campaign_active(c),
            status=campaign_status(session, campaign_id=c.id),
            deliveries=status_counts(session, kind="campaign", ref=c.id),
        )
        for c in campaigns
    ]
