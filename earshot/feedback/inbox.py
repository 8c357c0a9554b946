"""The feedback inbox's reads: filtered pages, one item's details, similar items.

Every query is bounded: the inbox fetches one page through a keyset cursor and similar
items look at a capped number of candidates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from earshot.feedback import similar, triage
from earshot.feedback.schemas import FeedbackType, Status
from earshot.insights.export import ExportFilter
from earshot.storage.models import Feedback, Notification, Supporter
from earshot.themes import service as themes

PAGE_SIZE = 25
Sort = Literal["recent", "supporters"]
SORTS: tuple[Sort, ...] = ("recent", "supporters")
TYPES: tuple[str, ...] = tuple(t.value for t in FeedbackType)
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)


@dataclass(frozen=True)
class InboxFilter:
    """The inbox's filters, parsed from the query string; invalid values are dropped."""

    product: str = ""
    type: str = ""
    status: str = ""
    language: str = ""
    since: date | None = None
    until: date | None = None  # inclusive: the whole day
    q: str = ""
    sort: Sort = "recent"

    @classmethod
    def parse(
        cls,
        params: Mapping[str, str],
        *,
        products: Sequence[str],
        languages: Sequence[str],
    ) -> InboxFilter:
        def pick(name: str, allowed: Sequence[str]) -> str:
            value = params.get(name, "").strip()
            return value if value in allowed else ""

        sort = params.get("sort", "recent")
        return cls(
            product=pick("product", [*products, "none"]),
            type=pick("type", TYPES),
            status=pick("status", STATUSES),
            language=pick("language", languages),
            since=_date(params.get("since", "")),
            until=_date(params.get("until", "")),
            q=" ".join(params.get("q", "").split())[:200],
            sort="supporters" if sort == "supporters" else "recent",
        )

    def query_params(self, **changes: Any) -> dict[str, str]:
        """These filters as query parameters (empty ones left out), with `changes`."""
        values: dict[str, Any] = {
            "product": self.product,
            "type": self.type,
            "status": self.status,
            "language": self.language,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "q": self.q,
            "sort": self.sort if self.sort != "recent" else "",
        }
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v not in ("", None)}

    @property
    def since_dt(self) -> datetime | None:
        return start_of(self.since) if self.since else None

    @property
    def until_dt(self) -> datetime | None:
        return start_of(self.until + timedelta(days=1)) if self.until else None

    def export_filter(self) -> ExportFilter:
        """The same selection for export(); the text search has no export equivalent."""
        product = None if self.product in ("", "none") else [self.product]
        return ExportFilter(
            since=self.since_dt,
            until=self.until_dt,
            product=product,
            type=[self.type] if self.type else None,
            status=[self.status] if self.status else None,
            language=[self.language] if self.language else None,
        )

    @property
    def export_differs(self) -> bool:
        """True when the export cannot apply every filter (text search, "no product")."""
        return bool(self.q) or self.product == "none"


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip()) if value.strip() else None
    except ValueError:
        return None


def start_of(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def filtered(f: InboxFilter) -> Select[Any]:
    stmt = select(Feedback)
    if f.product == "none":
        stmt = stmt.where(Feedback.product.is_(None))
    elif f.product:
        stmt = stmt.where(Feedback.product == f.product)
    for name in ("type", "status", "language"):
        value = getattr(f, name)
        if value:
            stmt = stmt.where(getattr(Feedback, name) == value)
    if f.since_dt:
        stmt = stmt.where(Feedback.created_at >= f.since_dt)
    if f.until_dt:
        stmt = stmt.where(Feedback.created_at < f.until_dt)
    if f.q:
        pattern = _like(f.q)
        conds: list[ColumnElement[bool]] = [
            Feedback.description.ilike(pattern, escape="\\"),
            Feedback.benefit.ilike(pattern, escape="\\"),
        ]
        if re.fullmatch(r"[A-Za-z]{1,4}-[0-9A-Za-z]{1,8}", f.q):
            conds.append(Feedback.ref == f.q.upper())
        stmt = stmt.where(or_(*conds))
    return stmt


@dataclass(frozen=True)
class Page:
    items: list[Feedback]
    total: int
    next_cursor: str | None  # the page after this one
    prev_cursor: str | None  # the page before this one (None on the first page)


def _cursor_of(item: Feedback, sort: Sort) -> str:
    if sort == "supporters":
        return f"{item.supporters}.{item.id}"
    return f"{item.created_at.astimezone(timezone.utc).isoformat()}.{item.id}"


def _parse_cursor(cursor: str, sort: Sort) -> tuple[Any, int] | None:
    head, _, tail = cursor.rpartition(".")
    try:
        ident = int(tail)
        if sort == "supporters":
            return int(head), ident
        when = datetime.fromisoformat(head)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)), ident


def inbox_page(
    session: Session,
    f: InboxFilter,
    *,
    after: str = "",
    before: str = "",
    page_size: int = PAGE_SIZE,
) -> Page:
    """One page of the inbox, newest or most supported first.

    Keyset pagination: a cursor holds the sort key and id of a row at a page edge, so a
    page costs the same at the end of a large table as at its start.
    """
    key = Feedback.supporters if f.sort == "supporters" else Feedback.created_at
    base = filtered(f)
    total = int(session.scalar(select(func.count()).select_from(base.subquery())) or 0)
    stmt = base
    backwards = False
    edge = _parse_cursor(before, f.sort) if before else None
    if edge is not None:
        backwards = True
        stmt = stmt.where(or_(key > edge[0], and_(key == edge[0], Feedback.id > edge[1])))
        stmt = stmt.order_by(key.asc(), Feedback.id.asc())
    else:
        start = _parse_cursor(after, f.sort) if after else None
        if start is not None:
            stmt = stmt.where(or_(key < start[0], and_(key == start[0], Feedback.id < start[1])))
        stmt = stmt.order_by(key.desc(), Feedback.id.desc())
    rows = list(session.scalars(stmt.limit(page_size + 1)))
    more = len(rows) > page_size
    rows = rows[:page_size]
    if backwards:
        rows.reverse()
        has_prev, has_next = more, True
    else:
        has_prev, has_next = bool(after) and start is not None, more
    return Page(
        items=rows,
        total=total,
        next_cursor=_cursor_of(rows[-1], f.sort) if rows and has_next else None,
        prev_cursor=_cursor_of(rows[0], f.sort) if rows and has_prev else None,
    )


# --- similar items -------------------------------------------------------------------------

SIMILAR_CANDIDATES = 500


def similar_items(
    session: Session, item: Feedback, *, limit: int = 5, threshold: float | None = None
) -> list[tuple[Feedback, float]]:
    """Items of the same product and language related to `item`, best first, scored by
    `earshot.feedback.similar` (the measure the chat and the merge suggestions use).

    Looks at the most recent candidates only, so the cost stays flat on a large table.
    """
    if not item.description:
        return []
    stmt = select(Feedback).where(
        Feedback.id != item.id,
        Feedback.status != "duplicate",
        Feedback.language == item.language,
        Feedback.description != "",
    )
    stmt = stmt.where(
        Feedback.product == item.product if item.product else Feedback.product.is_(None)
    )
    stmt = stmt.order_by(Feedback.id.desc()).limit(SIMILAR_CANDIDATES)
    others = list(session.scalars(stmt))
    if not others:
        return []
    found = similar.scores(
        item.description, [o.description for o in others], language=item.language
    )
    limit_score = similar.RELATED_THRESHOLD if threshold is None else threshold
    scored = [
        (o, float(s)) for o, s in zip(others, found.tolist(), strict=False) if s >= limit_score
    ]
    scored.sort(key=lambda pair: (-pair[1], -pair[0].supporters, -pair[0].id))
    return scored[:limit]


def item_details(session: Session, *, ref: str) -> dict[str, Any] | None:
    """One item with its original, duplicates, similar items, history and notices; None if
    no item has that ref."""
    item = session.scalar(select(Feedback).where(Feedback.ref == ref.strip().upper()))
    if item is None:
        return None
    original = session.get(Feedback, item.duplicate_of_id) if item.duplicate_of_id else None
    duplicates = session.scalars(
        select(Feedback).where(Feedback.duplicate_of_id == item.id).order_by(Feedback.id)
    ).all()
    supporters = list(
        session.scalars(select(Supporter.created_at).where(Supporter.feedback_id == item.id))
    )
    # Per status: how many customers were queued a message and how many were sent it.
    notifications = session.execute(
        select(Notification.status, func.count(), func.count(Notification.sent_at))
        .where(Notification.feedback_id == item.id)
        .group_by(Notification.status)
        .order_by(func.min(Notification.id))
    ).all()
    return {
        "item": item,
        "original": original,
        "duplicates": duplicates,
        "similar": similar_items(session, item),
        "duplicate_threshold": similar.duplicate_threshold(item.language),
        "theme": themes.theme_of(session, feedback_id=item.id),
        "suggestions": themes.open_suggestions(session, feedback_id=item.id, limit=5),
        "history": triage.history(session, ref=item.ref),
        "supporter_rows": len(supporters),
        "notifications": notifications,
        "recipients": len(triage.recipients(session, item=item)),
    }
