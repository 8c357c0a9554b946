"""The Misunderstood queue: record what the assistant likely got wrong, group it, learn.

Recorded (by the action server, from Rasa's parse data): messages that went to the
fallback or out of scope, the question whose answer was voted 👎, and answers whose top
two FAQ topics were close (the response selector's ranking; margin setting
``misunderstood_margin``). Texts are redacted before they are stored. The dashboard
groups them by meaning and a team member assigns them to a topic, to out of scope or to
"new topic needed"; assignments go to kb/learned/ (earshot.knowledge.learned) for the next training.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from earshot.knowledge import learned
from earshot.privacy.redaction import redact
from earshot.storage.models import MisunderstoodEvent, MisunderstoodMessage, utcnow

FALLBACK = "fallback"
OUT_OF_SCOPE = "out_of_scope"
THUMBS_DOWN = "thumbs_down"
LOW_MARGIN = "low_margin"
REASONS = (FALLBACK, OUT_OF_SCOPE, THUMBS_DOWN, LOW_MARGIN)
REASON_LABELS = {
    FALLBACK: "went to the fallback",
    OUT_OF_SCOPE: "declined as out of scope",
    THUMBS_DOWN: "answer voted 👎",
    LOW_MARGIN: "two topics were close",
}
TOPICS_KEPT = 3
DEFAULT_MARGIN = 0.15
# The same customer's same text within this window is one message with several reasons
# (an answer with a low margin that is then voted down).
SAME_MESSAGE_WITHIN = timedelta(hours=1)
# Mean cosine similarity of WordLlama sentence vectors at which groups merge. Measured on
# the train parts of Banking77 and CLINC150 (scripts/misunderstood_grouping.py,
# reports/misunderstood-grouping.md): at 0.45 a group holds one intent 88-96% of the way
# (homogeneity) with the best agreement (ARI 0.47-0.52); lower mixes intents, which a
# whole-group assignment would then teach wrongly. Agglomerative beat a hand-written
# centroid grouping slightly at the same purity and does not depend on message order.
GROUP_THRESHOLD = 0.45


# --------------------------------------------------------------------------- parse data


def ranking(parse_data: Mapping[str, Any] | None) -> list[tuple[str, float]]:
    """(topic, confidence) of the FAQ response selector, best first."""
    selector = (parse_data or {}).get("response_selector") or {}
    entries = (selector.get("faq") or {}).get("ranking") or []
    out = []
    for entry in entries:
        key = str(entry.get("intent_response_key") or "")
        if "/" in key:
            out.append((key.split("/", 1)[1], float(entry.get("confidence") or 0.0)))
    return sorted(out, key=lambda kv: -kv[1])


def considered_topics(parse_data: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The topics the model weighed, as stored: [{"topic", "confidence"}], best first."""
    return [
        {"topic": topic, "confidence": round(conf, 4)}
        for topic, conf in ranking(parse_data)[:TOPICS_KEPT]
    ]


def margin(parse_data: Mapping[str, Any] | None) -> float | None:
    """Confidence of the best topic minus the second's; None with fewer than two."""
    ranked = ranking(parse_data)
    return ranked[0][1] - ranked[1][1] if len(ranked) >= 2 else None


def is_low_margin(parse_data: Mapping[str, Any] | None, threshold: float) -> bool:
    m = margin(parse_data)
    return m is not None and m < threshold


# --------------------------------------------------------------------------- recording


def record(
    session: Session,
    *,
    text: str,
    reason: str,
    language: str,
    customer_key: str | None,
    parse_data: Mapping[str, Any] | None = None,
    answered_topic: str | None = None,
    now: datetime | None = None,
) -> MisunderstoodMessage | None:
    """Store a misunderstood message, redacted; None when there is nothing to learn from
    (empty text, a button payload). A repeat within the hour adds its reason instead."""
    if reason not in REASONS:
        raise ValueError(f"unknown reason {reason!r}")
    text = " ".join(redact(str(text or "")).split())
    if not text or text.startswith("/"):
        return None
    now = now or utcnow()
    existing = session.scalar(
        select(MisunderstoodMessage)
        .where(
            MisunderstoodMessage.customer_key == customer_key,
            MisunderstoodMessage.text == text,
            MisunderstoodMessage.created_at >= now - SAME_MESSAGE_WITHIN,
        )
        .order_by(MisunderstoodMessage.id.desc())
        .limit(1)
    )
    if existing is not None and customer_key is not None:
        if reason not in existing.reasons:
            existing.reasons = [*existing.reasons, reason]
        existing.answered_topic = existing.answered_topic or answered_topic
        return existing
    row = MisunderstoodMessage(
        created_at=now,
        customer_key=customer_key,
        language=language,
        text=text,
        reasons=[reason],
        topics=considered_topics(parse_data),
        answered_topic=answered_topic,
        margin=margin(parse_data),
    )
    session.add(row)
    session.flush()
    return row


# --------------------------------------------------------------------------- grouping


@dataclass
class Group:
    """Similar messages; `messages` newest first."""

    messages: list[MisunderstoodMessage]

    @property
    def newest(self) -> datetime:
        return self.messages[0].created_at

    @property
    def ids(self) -> list[int]:
        return [m.id for m in self.messages]

    @property
    def reasons(self) -> list[str]:
        """Every reason in the group, most frequent first."""
        counts: dict[str, int] = {}
        for m in self.messages:
            for r in m.reasons:
                counts[r] = counts.get(r, 0) + 1
        return sorted(counts, key=lambda r: (-counts[r], REASONS.index(r)))

    @property
    def guesses(self) -> list[tuple[str, float]]:
        """The model's topics across the group: mean confidence where it was considered."""
        sums: dict[str, list[float]] = {}
        for m in self.messages:
            for t in m.topics or []:
                sums.setdefault(str(t["topic"]), []).append(float(t["confidence"]))
        n = len(self.messages)
        scored = [(k, sum(v) / n) for k, v in sums.items()]
        return sorted(scored, key=lambda kv: -kv[1])[:TOPICS_KEPT]

    @property
    def languages(self) -> list[str]:
        return sorted({m.language for m in self.messages})


def vectors(texts: Sequence[str]) -> np.ndarray:
    """Unit-length WordLlama sentence vectors (the shipped static embedding)."""
    from earshot.embeddings import embedder

    return embedder().embed(list(texts), normalise=True)


def cluster(vecs: np.ndarray, threshold: float = GROUP_THRESHOLD) -> list[int]:
    """A group number per row: average-linkage agglomerative clustering on cosine
    similarity, merging while the groups' mean similarity is at least ``threshold``."""
    from sklearn.cluster import AgglomerativeClustering

    if len(vecs) < 2:
        return [0] * len(vecs)
    model = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=1 - threshold
    )
    return [int(label) for label in model.fit_predict(vecs)]


def group(
    messages: Sequence[MisunderstoodMessage], threshold: float = GROUP_THRESHOLD
) -> list[Group]:
    """Messages grouped by similarity of meaning, per language; newest group first."""
    ordered = sorted(messages, key=lambda m: (m.created_at, m.id), reverse=True)
    groups: list[Group] = []
    by_lang: dict[str, list[MisunderstoodMessage]] = {}
    for m in ordered:
        by_lang.setdefault(m.language, []).append(m)
    for msgs in by_lang.values():
        labels = cluster(vectors([m.text for m in msgs]), threshold)
        found: dict[int, list[MisunderstoodMessage]] = {}
        for m, label in zip(msgs, labels, strict=True):
            found.setdefault(label, []).append(m)
        groups += [Group(g) for g in found.values()]
    return sorted(groups, key=lambda g: (g.newest, g.messages[0].id), reverse=True)


def open_messages(session: Session, *, limit: int = 500) -> Sequence[MisunderstoodMessage]:
    """Unassigned messages, newest first (bounded: the queue is worked from the top)."""
    return session.scalars(
        select(MisunderstoodMessage)
        .where(MisunderstoodMessage.assignment.is_(None))
        .order_by(MisunderstoodMessage.created_at.desc(), MisunderstoodMessage.id.desc())
        .limit(limit)
    ).all()


def history(session: Session, *, limit: int = 50) -> Sequence[MisunderstoodEvent]:
    return session.scalars(
        select(MisunderstoodEvent)
        .order_by(MisunderstoodEvent.at.desc(), MisunderstoodEvent.id.desc())
        .limit(limit)
    ).all()


# --------------------------------------------------------------------------- assigning


@dataclass
class Assignment:
    """The outcome of assigning messages: what was learned, and what was not, and why."""

    target: str
    added: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Training:
    """What an assignment is checked against: the KB and the test sets."""

    kb_dir: Path
    topics: Mapping[str, Mapping[str, Sequence[str]]]  # lang -> topic -> examples
    other: Mapping[str, Sequence[str]]  # lang -> other training texts (core NLU)
    held_out: frozenset[str]  # normalised texts of every test set

    @classmethod
    def load(cls, kb_dir: Path, languages: Sequence[str], rasa_dir: Path) -> Training:
        """Read the KB (with its learned files), the core NLU data and the test parts."""
        from earshot.knowledge.kb import load_kb

        kb = load_kb(kb_dir, languages=languages)
        topics = {lang: {t.key: t.examples[lang] for t in kb.topics} for lang in languages}
        other = {lang: _core_examples(rasa_dir, lang) for lang in languages}
        held_out = learned.held_out_texts([rasa_dir / "tests"])
        return cls(Path(kb_dir), topics, other, frozenset(held_out))

    def targets(self) -> list[str]:
        keys = sorted({k for by_topic in self.topics.values() for k in by_topic})
        return [*keys, learned.OUT_OF_SCOPE, learned.NEW_TOPIC]


def _core_examples(rasa_dir: Path, language: str) -> list[str]:
    """Hand-written NLU examples of a language (data/nlu/core.yml, core_<lang>.yml)."""
    import yaml

    name = "core.yml" if language == "en" else f"core_{language}.yml"
    path = Path(rasa_dir) / "data" / "nlu" / name
    if not path.is_file():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [
        line.strip()[2:]
        for block in data.get("nlu", [])
        if isinstance(block.get("examples"), str)
        for line in block["examples"].splitlines()
        if line.strip().startswith("- ")
    ]


def assign(
    session: Session,
    *,
    ids: Iterable[int],
    target: str,
    actor: str,
    training: Training,
    now: datetime | None = None,
) -> Assignment:
    """Assign messages to a topic, out_of_scope or new_topic_needed: write the texts to
    kb/learned/<language>.yml (checked: see earshot.knowledge.learned), mark the messages assigned
    and record who did it. Texts that cannot be learned (duplicates, test-set texts) are
    still marked assigned, so the queue empties; the result says why they were skipped."""
    if target not in training.targets():
        raise learned.LearnedError(f"'{target}' is not a topic of the knowledge base")
    if not actor.strip():
        raise learned.LearnedError("who is assigning?")
    rows = session.scalars(
        select(MisunderstoodMessage)
        .where(MisunderstoodMessage.id.in_(list(ids)))
        .order_by(MisunderstoodMessage.created_at, MisunderstoodMessage.id)
    ).all()
    if not rows:
        raise learned.LearnedError("no such message (already removed?)")
    result = Assignment(target=target)
    by_lang: dict[str, list[MisunderstoodMessage]] = {}
    for row in rows:
        by_lang.setdefault(row.language, []).append(row)
    now = now or utcnow()
    for lang, msgs in by_lang.items():
        if lang not in training.topics:
            result.skipped += [(m.text, f"language '{lang}' is not configured") for m in msgs]
            continue
        added = learned.add_examples(
            training.kb_dir,
            language=lang,
            key=target,
            texts=[m.text for m in msgs],
            topics=training.topics[lang],
            training=training.other.get(lang, ()),
            tests=training.held_out,
        )
        result.added += added.added
        result.skipped += added.skipped
        for m in msgs:
            session.add(
                MisunderstoodEvent(
                    message_id=m.id,
                    actor=actor,
                    old_value=m.assignment,
                    new_value=target,
                    language=lang,
                    at=now,
                )
            )
            m.assignment, m.assigned_by, m.assigned_at = target, actor, now
    session.flush()
    return result
