"""Team statistics for the `/stats` command: what came in lately and which ideas lead.

`team_stats` counts feedback created in the last 7 and 30 days by type, product and
status, and lists the open ideas with the most supporters; `format_stats_text` lays that
out as plain text that fits one Telegram message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from earshot.feedback.schemas import FeedbackType, Status
from earshot.storage.models import Feedback, utcnow

WINDOWS: tuple[int, ...] = (7, 30)
# Ideas that are finished or folded into another item are no longer "top" candidates.
CLOSED: tuple[str, ...] = (Status.done.value, Status.declined.value, Status.duplicate.value)
TELEGRAM_LIMIT = 4096
SNIPPET_LENGTH = 80
NO_PRODUCT = "No product"


@dataclass(frozen=True)
class WindowStats:
    """Feedback created in the `days` before `Stats.generated_at`."""

    days: int
    total: int
    by_type: dict[str, int] = field(default_factory=dict)
    by_product: dict[str | None, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class IdeaLine:
    ref: str
    product: str | None
    snippet: str
    supporters: int
    status: str


@dataclass(frozen=True)
class ThemeLine:
    """A theme (earshot/themes) as /stats and the digest show it."""

    id: int
    label: str
    language: str
    size: int
    supporters: int
    emerging: bool
    recent: int  # items in the last two weeks


@dataclass(frozen=True)
class Stats:
    generated_at: datetime
    windows: dict[int, WindowStats]
    top_ideas: list[IdeaLine]
    themes: list[ThemeLine] = field(default_factory=list)  # emerging first, then largest


def theme_lines(session: Session, *, now: datetime, top: int = 5) -> list[ThemeLine]:
    """The emerging themes, then the largest others, `top` in all."""
    from earshot.themes import service as themes
    from earshot.themes import trends

    emerging = {e.theme_id: e for e in trends.emerging_themes(session, now)}
    found = themes.summaries(session, ids=list(emerging)) if emerging else []
    found += [s for s in themes.summaries(session, min_size=2, limit=top) if s.id not in emerging]
    return [
        ThemeLine(
            id=s.id,
            label=s.label,
            language=s.language,
            size=s.size,
            supporters=s.supporters,
            emerging=s.id in emerging,
            recent=emerging[s.id].recent if s.id in emerging else 0,
        )
        for s in found[: max(top, len(emerging))]
    ]


def snippet(text: str, length: int = SNIPPET_LENGTH) -> str:
    """One line of customer text, redacted of personal data before it is cut."""
    from earshot.privacy.redaction import redact

    # Redact before cutting, so a truncated e-mail address or number cannot slip through.
    text = " ".join(redact(text or "").split())
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


def _counts(
    session: Session, column: InstrumentedAttribute[Any], period: tuple[Any, ...]
) -> dict[Any, int]:
    rows = session.execute(select(column, func.count()).where(*period).group_by(column)).all()
    # Largest first, then by name, so the text reads the same from run to run.
    return dict(sorted(((k, int(n)) for k, n in rows), key=lambda kv: (-kv[1], str(kv[0] or ""))))


def team_stats(session: Session, *, now: datetime | None = None, top: int = 5) -> Stats:
    """Counts for the last 7 and 30 days and the `top` open ideas by supporters."""
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    windows: dict[int, WindowStats] = {}
    for days in WINDOWS:
        since = now - timedelta(days=days)
        period = (Feedback.created_at >= since, Feedback.created_at <= now)
        by_type = _counts(session, Feedback.type, period)
        windows[days] = WindowStats(
            days=days,
            total=sum(by_type.values()),
            by_type=by_type,
            by_product=_counts(session, Feedback.product, period),
            by_status=_counts(session, Feedback.status, period),
        )
    ideas = session.execute(
        select(
            Feedback.ref,
            Feedback.product,
            Feedback.description,
            Feedback.supporters,
            Feedback.status,
        )
        .where(Feedback.type == FeedbackType.idea.value, Feedback.status.not_in(CLOSED))
        .order_by(Feedback.supporters.desc(), Feedback.created_at.desc(), Feedback.id.desc())
        .limit(top)
    ).all()
    return Stats(
        generated_at=now,
        themes=theme_lines(session, now=now),
        windows=windows,
        top_ideas=[
            IdeaLine(ref=r, product=p, snippet=snippet(d), supporters=int(s), status=st)
            for r, p, d, s, st in ideas
        ],
    )


def _label(value: str) -> str:
    return value.replace("_", " ")


def _counts_line(counts: Mapping[str, int], limit: int = 8) -> str:
    if not counts:
        return "none"
    items = list(counts.items())
    parts = [f"{name} {n}" for name, n in items[:limit]]
    rest = sum(n for _, n in items[limit:])
    if rest:
        parts.append(f"others {rest}")
    return ", ".join(parts)


def format_stats_text(stats: Stats, product_names: Mapping[str, str]) -> str:
    """Plain text (no Markdown, so customer text cannot break formatting), ≤ 4096 chars."""

    def product(key: str | None) -> str:
        return product_names.get(key, key) if key else NO_PRODUCT

    lines = [f"Feedback statistics ({stats.generated_at:%Y-%m-%d %H:%M} UTC)"]
    for days in sorted(stats.windows):
        w = stats.windows[days]
        lines += ["", f"Last {days} days: {w.total} new item{'' if w.total == 1 else 's'}"]
        if not w.total:
            continue
        lines.append("By type: " + _counts_line({_label(k): v for k, v in w.by_type.items()}))
        lines.append(
            "By product: " + _counts_line({product(k): v for k, v in w.by_product.items()})
        )
        lines.append("By status: " + _counts_line({_label(k): v for k, v in w.by_status.items()}))
    lines += ["", "Top open ideas by supporters:"]
    if not stats.top_ideas:
        lines.append("none yet")
    for i, idea in enumerate(stats.top_ideas, start=1):
        lines.append(
            f"{i}. {idea.ref} ({product(idea.product)}, {idea.supporters} "
            f"supporter{'' if idea.supporters == 1 else 's'}, {_label(idea.status)}): "
            f"{idea.snippet}"
        )
    hot = [t for t in stats.themes if t.emerging]
    if hot:
        lines += ["", "Emerging themes (last two weeks at least twice as busy as before):"]
        lines += [f"- {t.label} ({t.language}): {t.recent} items in two weeks" for t in hot]
    calm = [t for t in stats.themes if not t.emerging]
    if calm:
        lines += ["", "Largest themes:"]
        lines += [
            f"- {t.label} ({t.language}): {t.size} items, {t.supporters} supporters" for t in calm
        ]
    text = "\n".join(lines)
    if len(text) > TELEGRAM_LIMIT:  # long product names could overflow; cut cleanly
        text = text[: TELEGRAM_LIMIT - 1].rsplit("\n", 1)[0] + "\n…"
    return text
