"""Feedback capture services: saving items, similar-item search, supporters, when we may
ask for feedback and importing outside feedback (campaigns: earshot/outreach/campaigns.py).

Pure core: no Rasa, no Telegram, no I/O at import time. Every function that touches the
database takes the caller's Session (keyword-only) and never commits.
"""

from __future__ import annotations

import csv
import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from earshot.conversations import queries as conversations
from earshot.feedback import queries
from earshot.feedback.schemas import FeedbackIn, FeedbackType, Source, Status
from earshot.integrations.events import emit, item_payload
from earshot.privacy.redaction import redact
from earshot.storage.models import AskLog, Feedback, Supporter, utcnow

log = logging.getLogger(__name__)

# Bump when the consent question's wording changes, so each stored consent says what the
# customer agreed to.
CONSENT_VERSION = "v1"

CLOSED_STATUSES = (Status.done.value, Status.declined.value, Status.duplicate.value)
# Types for which "someone suggested the same" makes sense; praise and complaints are personal.
SIMILAR_TYPES = (FeedbackType.idea, FeedbackType.problem)
# How many recent open items are compared; older ones are the product team's to merge.
SIMILAR_CANDIDATES = 2000
# An ask not answered within this time counts as ignored.
ASK_OPEN_FOR = timedelta(days=1)


# --------------------------------------------------------------------------- classification


@dataclass(frozen=True)
class Detected:
    """What the classifier says about a text."""

    type: FeedbackType
    sentiment: float | None
    product: str | None


def detect(text: str, catalogue: Mapping[str, Sequence[str]]) -> Detected:
    """Type (problem/idea/other), sentiment and product of a text, via `earshot.classify`."""
    from earshot.classify import classify  # lazy: loads the model on first use

    result = classify(text, catalogue)
    return Detected(
        type=FeedbackType(result.type), sentiment=result.sentiment, product=result.product
    )


def detect_safely(text: str, catalogue: Mapping[str, Sequence[str]]) -> Detected:
    """`detect` that never raises: a customer's feedback must not be lost because the
    classifier is unavailable. Then (logged) the sentiment is unknown, the type "other"
    and the product found by its name in the text."""
    try:
        return detect(text, catalogue)
    except Exception:
        log.exception("classifying feedback failed; falling back to product names")
        return Detected(FeedbackType.other, None, product_in_text(text, catalogue))


def suggest_type(detected: Detected, intent: str | None) -> FeedbackType:
    """The kind of feedback to suggest in chat ("I think it's a problem").

    Problem, idea or other is the classifier's call, so the chat and `earshot import` agree
    on it. The classifier has no complaint or praise: the assistant's intent (feedback_*)
    only refines within its call, a service complaint within "problem" or "other" and
    praise within "other".
    """
    kind = (intent or "").removeprefix("feedback_")
    if kind == "complaint" and detected.type in (FeedbackType.problem, FeedbackType.other):
        return FeedbackType.complaint
    if kind == "praise" and detected.type == FeedbackType.other:
        return FeedbackType.praise
    return detected.type


def product_in_text(text: str, catalogue: Mapping[str, Sequence[str]]) -> str | None:
    """The product whose key, name or synonym the text contains as whole words (plurals
    too); the longest name wins. A fallback for when the classifier is unavailable."""
    words = f" {' '.join(_stem(w) for w in normalise(text).split())} "
    best: tuple[int, str] | None = None
    for key, names in catalogue.items():
        for name in (key, *names):
            stems = " ".join(_stem(w) for w in normalise(name).split())
            if stems and f" {stems} " in words and (best is None or len(stems) > best[0]):
                best = (len(stems), key)
    return best[1] if best else None


def product_from_label(label: str, catalogue: Mapping[str, Sequence[str]]) -> str | None:
    """A product key from a key, name or synonym as written in a spreadsheet or message."""
    wanted = normalise(label)
    if not wanted:
        return None
    for key, names in catalogue.items():
        if wanted == normalise(key) or any(wanted == normalise(n) for n in names):
            return key
    return None


# --------------------------------------------------------------------------- saving


def save_feedback(
    session: Session,
    *,
    item: FeedbackIn,
    ref_prefix: str,
    catalogue: Mapping[str, Sequence[str]] | None = None,
) -> Feedback:
    """Store a captured item: free text redacted, sentiment filled in, consent versioned.

    Emits item.created in the same transaction (earshot.integrations)."""
    updates: dict[str, Any] = {
        "description": redact(item.description),
        "benefit": redact(item.benefit) if item.benefit else item.benefit,
        "consent_version": CONSENT_VERSION if item.consent else None,
    }
    if item.sentiment is None and catalogue is not None and item.description:
        updates["sentiment"] = detect_safely(item.description, catalogue).sentiment
    row = queries.create_feedback(
        session, item=item.model_copy(update=updates), ref_prefix=ref_prefix
    )
    emit(session, kind="item.created", payload={"item": item_payload(row)})
    return row


# --------------------------------------------------------------------------- similar items

_STOPWORDS = frozenset(
    """a an the to of for in on at by with from and or but if so as is are was were be been
    being it its this that these those there their they them i id im me my mine we
    our us you your yours he she his her do does did done have has had can could would should
    will shall may might must please pls add adding make making let lets get got also just
    really very much more some any all every when then than what which who how why where
    like love nice great cool good awesome feature option possible thing things way want wish
    wouldve itd suggest suggestion idea think maybe perhaps hi hello thanks thank lumen
    not no yes about into over only still even again always""".split()
)
_WORD = re.compile(r"[a-z0-9]+")


def normalise(text: str) -> str:
    """Lower case, accents and punctuation removed, whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return " ".join(_WORD.findall(plain.replace("'", "")))


def _stem(word: str) -> str:
    """A deliberately light stemmer: plural and verb endings, so "disconnects" meets
    "disconnecting" (character n-grams absorb the rest)."""
    if word.endswith("ies") and len(word) > 5:
        return word[:-3] + "y"
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4 and not word.endswith("ss"):
            word = word[: -len(suffix)]
            break
    # "rename" and "renaming" both become "renam".
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


# Words that name no particular wish or fault: "a dark mode" and "a vacation mode" are
# different ideas, so sharing "mode" must count for little.
_GENERIC = frozenset(
    _stem(w)
    for w in """mode modes support supports supported option setting settings function
    button screen work works working use using used new version update button time times
    day days way better able turn turns""".split()
)


def stem(word: str) -> str:
    """The light stemmer of the wording half of `earshot.feedback.similar`."""
    return _stem(word)


def _terms(text: str, ignore: frozenset[str]) -> list[str]:
    stems = (_stem(w) for w in normalise(text).split() if w not in _STOPWORDS)
    return [t for t in stems if t not in ignore and not t.isdigit()]


def _vector(text: str, ignore: frozenset[str]) -> Counter[str]:
    """Stemmed content words plus their character trigrams (for spelling and morphology)."""
    vec: Counter[str] = Counter()
    for t in _terms(text, ignore):
        if t in _GENERIC:
            vec[f"w:{t}"] += 1
            continue
        vec[f"w:{t}"] += 3
        padded = f" {t} "
        vec.update(f"c:{padded[i : i + 3]}" for i in range(len(padded) - 2))
    return vec


def text_vector(text: str, ignore: frozenset[str] = frozenset()) -> Counter[str]:
    """The wording half of `earshot.feedback.similar`: content-word stems and trigrams."""
    return _vector(text, ignore)


def cosine(a: Counter[str], b: Counter[str]) -> float:
    """Cosine of two sparse count vectors."""
    return _cosine(a, b)


def _cosine(a: Counter[str], b: Counter[str]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(v * b[k] for k, v in a.items() if k in b)
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norm if norm else 0.0


def product_words(catalogue: Mapping[str, Sequence[str]]) -> frozenset[str]:
    """Words naming products: they match on every item of a product, so they are ignored."""
    words: set[str] = set()
    for key, names in catalogue.items():
        for name in (key, *names):
            words.update(_stem(w) for w in normalise(name).split())
    return frozenset(words)


def similarity(a: str, b: str, *, ignore: frozenset[str] = frozenset()) -> float:
    """Cosine similarity (0..1) of two texts over content words and character trigrams."""
    return _cosine(_vector(a, ignore), _vector(b, ignore))


@dataclass(frozen=True)
class SimilarItem:
    ref: str
    description: str
    score: float
    supporters: int


def find_similar(
    session: Session,
    *,
    text: str,
    product: str | None,
    catalogue: Mapping[str, Sequence[str]],
    types: Sequence[FeedbackType] = SIMILAR_TYPES,
    exclude_customer: str | None = None,
    threshold: float | None = None,
    language: str = "en",
) -> SimilarItem | None:
    """The open item on the same product most similar to `text`, if it is close enough.

    Open: not done, declined or merged as a duplicate. The customer's own items are left
    out, so nobody is asked whether they mean what they said themselves.
    """
    from earshot.feedback import similar  # lazy: it imports this module

    ignore = product_words(catalogue)
    if not _vector(text, ignore):
        return None
    stmt = select(Feedback.ref, Feedback.description, Feedback.supporters).where(
        Feedback.status.not_in(CLOSED_STATUSES),
        Feedback.type.in_([t.value for t in types]),
        Feedback.description != "",
        Feedback.product.is_(None) if product is None else Feedback.product == product,
    )
    if exclude_customer:
        stmt = stmt.where(
            (Feedback.customer_key.is_(None)) | (Feedback.customer_key != exclude_customer)
        )
    stmt = stmt.order_by(Feedback.created_at.desc(), Feedback.id.desc()).limit(SIMILAR_CANDIDATES)
    rows = session.execute(stmt).all()
    if not rows:
        return None
    found = similar.scores(text, [r.description for r in rows], ignore=ignore, language=language)
    best = similar.pick_duplicate(found, language, threshold=threshold)
    if best is None:
        return None
    ref, description, supporters = rows[best]
    return SimilarItem(ref, description, float(found[best]), supporters)


def count_supporters(session: Session, *, item: Feedback) -> int:
    """The item's author plus every other customer who supports it."""
    stmt = select(func.count()).select_from(Supporter).where(Supporter.feedback_id == item.id)
    if item.customer_key:
        stmt = stmt.where(Supporter.customer_key != item.customer_key)
    return 1 + int(session.scalar(stmt) or 0)


def add_supporter(session: Session, *, ref: str, customer_key: str) -> Feedback | None:
    """Count `customer_key` as a supporter of item `ref`; idempotent, never the author.

    Returns the item (with its updated supporters count), or None if there is no such item.
    A new supporter emits item.supported.
    """
    item = queries.feedback_by_ref(session, ref=ref)
    if item is None:
        return None
    before = item.supporters
    if customer_key != item.customer_key:
        already = session.scalar(
            select(Supporter.id).where(
                Supporter.feedback_id == item.id, Supporter.customer_key == customer_key
            )
        )
        if already is None:
            session.add(Supporter(feedback_id=item.id, customer_key=customer_key))
            session.flush()
    item.supporters = count_supporters(session, item=item)
    if item.supporters > before:
        payload = {"item": item_payload(item), "previous_supporters": before}
        emit(session, kind="item.supported", payload=payload)
    return item


@dataclass(frozen=True)
class OwnItem:
    ref: str
    status: str
    description: str
    product: str | None
    supported: bool  # True: someone else's item this customer said "me too" to


def items_of_customer(session: Session, *, customer_key: str, limit: int = 20) -> list[OwnItem]:
    """The customer's own items and the ones they support, newest first."""
    own = queries.feedback_of_customer(session, customer_key=customer_key, limit=limit)
    supported = session.execute(
        select(Feedback, Supporter.created_at)
        .join(Supporter, Supporter.feedback_id == Feedback.id)
        .where(Supporter.customer_key == customer_key)
        .order_by(Supporter.created_at.desc())
        .limit(limit)
    ).all()
    rows = [(f.created_at, OwnItem(f.ref, f.status, f.description, f.product, False)) for f in own]
    rows += [
        (at, OwnItem(f.ref, f.status, f.description, f.product, True))
        for f, at in supported
        if f.customer_key != customer_key
    ]
    rows.sort(key=lambda r: r[0], reverse=True)
    return [item for _, item in rows[:limit]]


# --------------------------------------------------------------------------- asking


def _last_ask(session: Session, *, customer_key: str) -> AskLog | None:
    return session.scalar(
        select(AskLog)
        .where(AskLog.customer_key == customer_key)
        .order_by(AskLog.asked_at.desc(), AskLog.id.desc())
        .limit(1)
    )


def may_ask_after_service(
    session: Session,
    *,
    customer_key: str,
    interval_days: int,
    handoff_active: bool = False,
    last_vote: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Whether one feedback question may follow a service answer.

    Never to someone who opted out, never while a person is handling the chat, never
    right after a 👎, and at most once per customer per `interval_days`.
    """
    if handoff_active or last_vote == "down":
        return False
    now = now or utcnow()
    if not queries.may_ask(
        session, customer_key=customer_key, interval_days=interval_days, now=now
    ):
        return False
    # The ask log also counts, so a customer without a customers row is not asked twice.
    last = _last_ask(session, customer_key=customer_key)
    return last is None or now - last.asked_at >= timedelta(days=interval_days)


def may_ask_campaign(session: Session, *, customer_key: str, handoff_active: bool = False) -> bool:
    """Campaign questions go to everyone who has not opted out, unless in a handoff."""
    if handoff_active:
        return False
    customer = conversations.get_customer(session, user_key=customer_key)
    return customer is None or not customer.do_not_ask


def asked_in_campaign(session: Session, *, customer_key: str, campaign_id: str) -> bool:
    """Whether the customer was already put this campaign's question."""
    stmt = select(AskLog.id).where(
        AskLog.customer_key == customer_key, AskLog.campaign_id == campaign_id
    )
    return session.scalar(stmt.limit(1)) is not None


def record_ask(
    session: Session,
    *,
    customer_key: str,
    trigger: str,
    product: str | None = None,
    campaign_id: str | None = None,
    channel: str = "unknown",
    now: datetime | None = None,
) -> AskLog:
    """Log a feedback question; earlier unanswered questions now count as ignored."""
    now = now or utcnow()
    if conversations.get_customer(session, user_key=customer_key) is None:
        conversations.touch_customer(session, user_key=customer_key, channel=channel)
    session.execute(
        update(AskLog)
        .where(AskLog.customer_key == customer_key, AskLog.outcome == "asked")
        .values(outcome="ignored")
    )
    row = queries.log_ask(
        session,
        customer_key=customer_key,
        trigger=trigger,
        product=product,
        campaign_id=campaign_id,
    )
    row.asked_at = now
    session.flush()
    return row


@dataclass(frozen=True)
class OpenAsk:
    trigger: str
    campaign_id: str | None
    product: str | None


def close_ask(
    session: Session,
    *,
    customer_key: str,
    outcome: str,
    max_age: timedelta = ASK_OPEN_FOR,
    now: datetime | None = None,
) -> OpenAsk | None:
    """Close the customer's latest open question as answered/declined/ignored.

    Returns what was asked, or None if there was no question within `max_age`.
    """
    now = now or utcnow()
    row = session.scalar(
        select(AskLog)
        .where(
            AskLog.customer_key == customer_key,
            AskLog.outcome == "asked",
            AskLog.asked_at >= now - max_age,
        )
        .order_by(AskLog.asked_at.desc(), AskLog.id.desc())
        .limit(1)
    )
    if row is None:
        return None
    row.outcome = outcome
    row.answered_at = now
    return OpenAsk(row.trigger, row.campaign_id, row.product)


def opt_out(session: Session, *, customer_key: str, channel: str = "unknown") -> None:
    """Never ask this customer for feedback again; an open question counts as declined."""
    if conversations.get_customer(session, user_key=customer_key) is None:
        conversations.touch_customer(session, user_key=customer_key, channel=channel)
    queries.set_do_not_ask(session, customer_key=customer_key, value=True)
    close_ask(session, customer_key=customer_key, outcome="declined")


# --------------------------------------------------------------------------- import


@dataclass
class ImportResult:
    imported: int = 0
    duplicates: int = 0
    empty: int = 0
    by_type: Counter[str] = field(default_factory=Counter)


class ImportFailed(Exception):
    """The file cannot be imported as asked (e.g. a column is missing)."""


def import_rows(
    session: Session,
    *,
    rows: Iterable[Mapping[str, str | None]],
    text_column: str,
    product_column: str | None = None,
    catalogue: Mapping[str, Sequence[str]],
    ref_prefix: str,
    language: str = "en",
) -> ImportResult:
    """Store outside feedback (reviews, survey answers) as items with source `import`.

    Each text is classified (type problem/idea/other, sentiment, product unless a product
    column names it). Texts already stored, or repeated in the file, are skipped, compared
    after normalisation so case and punctuation do not matter.
    """
    result = ImportResult()
    rows = list(rows)
    from earshot.classify import prepare  # lazy: loads the model on first use

    prepare([" ".join(str(r.get(text_column) or "").split()) for r in rows])
    seen = {normalise(d) for d in session.scalars(select(Feedback.description))}
    seen.discard("")
    for row in rows:
        if text_column not in row:
            raise ImportFailed(f"no column '{text_column}' (columns: {', '.join(row)})")
        if product_column and product_column not in row:
            raise ImportFailed(f"no column '{product_column}' (columns: {', '.join(row)})")
        text = " ".join(str(row.get(text_column) or "").split())
        key = normalise(text)
        if not key:
            result.empty += 1
            continue
        if key in seen:
            result.duplicates += 1
            continue
        seen.add(key)
        found = detect(text, catalogue)
        product = found.product
        if product_column and (row.get(product_column) or "").strip():
            product = product_from_label(str(row[product_column]), catalogue) or product
        item = FeedbackIn(
            channel="import",
            source=Source.import_,
            language=language,
            product=product,
            type=found.type,
            description=text[:8000],
            sentiment=found.sentiment,
        )
        save_feedback(session, item=item, ref_prefix=ref_prefix)
        result.imported += 1
        result.by_type[found.type.value] += 1
    return result


def import_csv(
    session: Session,
    *,
    path: Path,
    text_column: str,
    product_column: str | None = None,
    catalogue: Mapping[str, Sequence[str]],
    ref_prefix: str,
    language: str = "en",
) -> ImportResult:
    """`import_rows` over a CSV file with a header row (UTF-8, BOM tolerated)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            raise ImportFailed(f"{path}: empty file")
        missing = [c for c in (text_column, product_column) if c and c not in reader.fieldnames]
        if missing:
            raise ImportFailed(
                f"{path}: no column {', '.join(repr(m) for m in missing)} "
                f"(columns: {', '.join(reader.fieldnames)})"
            )
        return import_rows(
            session,
            rows=reader,
            text_column=text_column,
            product_column=product_column,
            catalogue=catalogue,
            ref_prefix=ref_prefix,
            language=language,
        )
