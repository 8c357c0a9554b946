"""Themes in the database: full runs, incremental assignment, team edits, listing,
and duplicate suggestions with their one-click merge.

A full run (`run`) re-clusters each language's items and follows the themes of the last
run by shared members (`cluster.match`), so a theme keeps its id while it stays itself.
Between runs `process_new` puts each new item into the nearest theme (or opens one with a
close unthemed item) and suggests the open items it may duplicate.

What team members do is kept: a renamed theme keeps its name (`label_pinned`); merged and
split themes keep their members (`ThemeMember.manual`), and clusters that mostly hold an
edited theme's items join it. Like the rest of the core, functions take the caller's
Session and never commit.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from earshot.feedback import similar, triage
from earshot.feedback.service import CLOSED_STATUSES
from earshot.storage.db import insert_ignoring_conflicts
from earshot.storage.models import (
    DuplicateSuggestion,
    Feedback,
    Theme,
    ThemeMember,
    ThemeModel,
    utcnow,
)
from earshot.themes import cluster, features

log = logging.getLogger(__name__)

ASSIGN_SIMILARITY = cluster.JOIN_SIMILARITY
# Cosine between a new item and an unthemed one to open a theme of the two.
PAIR_SIMILARITY = 0.35
UNTHEMED_CANDIDATES = 300
CHECK_BACK = timedelta(days=30)
DUPLICATE_CANDIDATES = 2000
MAX_SUGGESTIONS = 3
MAX_LABEL = 160


class ThemeError(Exception):
    """A theme edit that cannot be carried out; the message says why."""


# --------------------------------------------------------------------------- full runs


@dataclass
class RunResult:
    """What a full run did, per language and overall."""

    items: int = 0
    themes: int = 0
    kept: int = 0
    opened: int = 0
    retired: int = 0
    unthemed: int = 0
    seconds: float = 0.0
    languages: list[str] = field(default_factory=list)


def _texts(session: Session, language: str) -> tuple[list[int], list[str]]:
    rows = session.execute(
        select(Feedback.id, Feedback.description)
        .where(Feedback.language == language, Feedback.description != "")
        .order_by(Feedback.id)
    ).all()
    return [r[0] for r in rows], [r[1] for r in rows]


def _checked(session: Session, language: str, now: datetime) -> set[int]:
    """Items whose duplicates need no (more) checking: checked already, or older than
    CHECK_BACK when a run first sees them (a first run on a large history stays cheap)."""
    done = set(
        session.scalars(
            select(ThemeMember.feedback_id)
            .join(Feedback, Feedback.id == ThemeMember.feedback_id)
            .where(ThemeMember.checked.is_(True), Feedback.language == language)
        )
    )
    old = session.scalars(
        select(Feedback.id)
        .outerjoin(ThemeMember, ThemeMember.feedback_id == Feedback.id)
        .where(
            ThemeMember.feedback_id.is_(None),
            Feedback.language == language,
            Feedback.created_at < now - CHECK_BACK,
        )
    )
    return done | set(old)


def languages(session: Session) -> list[str]:
    """The languages items are in."""
    return sorted(code for code in session.scalars(select(Feedback.language).distinct()) if code)


def _bump(session: Session, language: str) -> None:
    """Tell every process its cached themes of `language` are stale."""
    session.execute(
        update(ThemeModel)
        .where(ThemeModel.language == language)
        .values(version=ThemeModel.version + 1)
    )


def run(
    session: Session, *, now: datetime | None = None, only: Sequence[str] | None = None
) -> RunResult:
    """Re-cluster every item of each language, keeping theme ids and team edits."""
    started = time.perf_counter()
    now = now or utcnow()
    result = RunResult()
    for language in only or languages(session):
        _run_language(session, language, now, result)
        result.languages.append(language)
    result.seconds = time.perf_counter() - started
    return result


def _run_language(session: Session, language: str, now: datetime, result: RunResult) -> None:
    ids, texts = _texts(session, language)
    checked = _checked(session, language, now)
    space = features.Space.fit(texts, language)
    x = space.vectors(texts)
    found = cluster.cluster(x, language=language)
    new: dict[int, list[int]] = defaultdict(list)
    for fid, c in zip(ids, found.tolist(), strict=False):
        if c != cluster.NOISE:
            new[c].append(fid)

    themes = {
        t.id: t
        for t in session.scalars(
            select(Theme).where(Theme.language == language, Theme.status == "active")
        )
    }
    old: dict[int, list[int]] = defaultdict(list)
    manual: dict[int, int] = {}
    for fid, tid, is_manual in session.execute(
        select(ThemeMember.feedback_id, ThemeMember.theme_id, ThemeMember.manual).where(
            ThemeMember.theme_id.in_(list(themes))
        )
    ):
        old[tid].append(fid)
        if is_manual:
            manual[fid] = tid
    matched = cluster.match(new, old)
    where = {fid: tid for tid, members in old.items() for fid in members}

    assignment: dict[int, int | None] = dict.fromkeys(ids)
    opened: list[tuple[int, Theme]] = []
    for c, members in new.items():
        tid = matched.get(c)
        if tid is None:
            # Clusters that mostly hold an edited theme's items join it: merges stay merged.
            owner, shared = Counter(where.get(m) for m in members).most_common(1)[0]
            if owner is not None and themes[owner].edited and 2 * shared > len(members):
                tid = owner
        if tid is None:
            theme = Theme(language=language, label="", created_at=now, updated_at=now)
            session.add(theme)
            opened.append((c, theme))
            continue
        for m in members:
            assignment[m] = tid
    session.flush()
    for c, theme in opened:
        themes[theme.id] = theme
        for m in new[c]:
            assignment[m] = theme.id
    for fid, tid in manual.items():
        if fid in assignment:
            assignment[fid] = tid

    index = {fid: i for i, fid in enumerate(ids)}
    members_of: dict[int, list[int]] = defaultdict(list)
    for fid, tid in assignment.items():
        if tid is not None:
            members_of[tid].append(fid)
    named = features.labels(
        {tid: [texts[index[f]] for f in fs] for tid, fs in members_of.items()}, language
    )
    for tid, theme in themes.items():
        fs = members_of.get(tid, [])
        if not fs:
            theme.status, theme.size, theme.updated_at = "retired", 0, now
            result.retired += 1
            continue
        theme.size = len(fs)
        theme.centroid = cluster.centroid(x[[index[f] for f in fs]]).tobytes()
        if not theme.label_pinned:
            theme.label = named[tid][:MAX_LABEL]
        theme.updated_at = now

    session.execute(delete(ThemeMember).where(ThemeMember.feedback_id.in_(_in_language(language))))
    rows = [
        {
            "feedback_id": fid,
            "theme_id": tid,
            "manual": manual.get(fid) == tid and tid is not None,
            "checked": fid in checked,
            "assigned_at": now,
        }
        for fid, tid in assignment.items()
    ]
    # Rows replaced behind the ORM's back: forget the objects it holds for them.
    for obj in [o for o in session.identity_map.values() if isinstance(o, ThemeMember)]:
        session.expunge(obj)
    for start in range(0, len(rows), 5000):
        session.execute(insert(ThemeMember), rows[start : start + 5000])

    model = session.get(ThemeModel, language)
    if model is None:
        model = ThemeModel(language=language, version=0)
        session.add(model)
    model.idf = dict(space.idf)
    model.mean = space.mean.astype(np.float32).tobytes()
    model.documents = space.documents
    model.version = (model.version or 0) + 1
    model.built_at = utcnow()  # the real clock: it also keys the caches of other processes
    session.flush()
    _forget(language)

    result.items += len(ids)
    result.themes += len(members_of)
    opened_ids = {theme.id for _, theme in opened}
    result.kept += sum(1 for t in members_of if t not in opened_ids)
    result.opened += len(opened)
    result.unthemed += sum(1 for t in assignment.values() if t is None)


def _in_language(language: str) -> Any:
    return select(Feedback.id).where(Feedback.language == language).scalar_subquery()


# --------------------------------------------------------------------------- incremental


@dataclass
class _Cached:
    version: tuple[int, datetime]
    space: features.Space
    ids: np.ndarray
    centroids: np.ndarray


_CACHE: dict[tuple[str, str], _Cached] = {}


def _forget(language: str) -> None:
    for key in [k for k in _CACHE if k[1] == language]:
        _CACHE.pop(key, None)


def _state(session: Session, language: str) -> _Cached | None:
    """The language's space and theme centroids, reloaded only when their version moved."""
    found = session.execute(
        select(ThemeModel.version, ThemeModel.built_at).where(ThemeModel.language == language)
    ).first()
    if found is None:
        return None
    version = (int(found[0]), found[1])
    key = (str(session.get_bind().engine.url), language)
    cached = _CACHE.get(key)
    if cached is not None and cached.version == version:
        return cached
    model = session.get(ThemeModel, language)
    assert model is not None
    space = features.Space(
        language, dict(model.idf), np.frombuffer(model.mean, dtype=np.float32), model.documents
    )
    rows = session.execute(
        select(Theme.id, Theme.centroid).where(
            Theme.language == language, Theme.status == "active", Theme.centroid.is_not(None)
        )
    ).all()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    centroids = (
        np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
        if rows
        else np.zeros((0, 1), np.float32)
    )
    cached = _Cached(version, space, ids, centroids)
    _CACHE[key] = cached
    return cached


def assign(session: Session, *, item: Feedback, now: datetime | None = None) -> int | None:
    """Put a new item into its nearest theme, or open one with a close unthemed item.

    Returns the theme id (None: no theme yet). Needs a full run of its language first;
    without one it runs it.
    """
    now = now or utcnow()
    if not item.description:
        _member(session, item.id, None, now)
        return None
    state = _state(session, item.language)
    x = state.space.vectors([item.description])[0] if state is not None else np.zeros(0)
    if state is None or (len(state.ids) and state.centroids.shape[1] != len(x)):
        # No full run yet, or one made with another encoder (vectors of another length).
        run(session, now=now, only=[item.language])
        member = session.get(ThemeMember, item.id)
        return member.theme_id if member else None
    if len(state.ids):
        sims = state.centroids @ x
        best = int(sims.argmax())
        if sims[best] >= ASSIGN_SIMILARITY:
            tid = int(state.ids[best])
            _member(session, item.id, tid, now)
            session.execute(update(Theme).where(Theme.id == tid).values(size=Theme.size + 1))
            return tid
    opened = _pair_up(session, item, x, state, now)
    if opened is None:
        _member(session, item.id, None, now)
    return opened


def _member(session: Session, feedback_id: int, theme_id: int | None, now: datetime) -> None:
    row = session.get(ThemeMember, feedback_id)
    if row is None:
        session.add(ThemeMember(feedback_id=feedback_id, theme_id=theme_id, assigned_at=now))
    else:
        row.theme_id, row.assigned_at = theme_id, now
    session.flush()


def _pair_up(
    session: Session, item: Feedback, x: np.ndarray, state: _Cached, now: datetime
) -> int | None:
    """Open a theme with the closest recent unthemed item, if one is close enough."""
    rows = session.execute(
        select(Feedback.id, Feedback.description)
        .join(ThemeMember, ThemeMember.feedback_id == Feedback.id)
        .where(
            ThemeMember.theme_id.is_(None),
            Feedback.language == item.language,
            Feedback.id != item.id,
            Feedback.description != "",
        )
        .order_by(Feedback.id.desc())
        .limit(UNTHEMED_CANDIDATES)
    ).all()
    if not rows:
        return None
    others = state.space.vectors([r[1] for r in rows])
    sims = others @ x
    best = int(sims.argmax())
    if sims[best] < PAIR_SIMILARITY:
        return None
    texts = [item.description, rows[best][1]]
    label = features.labels({0: texts}, item.language)[0]
    theme = Theme(
        language=item.language,
        label=label[:MAX_LABEL],
        size=2,
        centroid=cluster.centroid(np.vstack([x, others[best]])).tobytes(),
        created_at=now,
        updated_at=now,
    )
    session.add(theme)
    session.flush()
    _member(session, item.id, theme.id, now)
    _member(session, int(rows[best][0]), theme.id, now)
    _bump(session, item.language)
    return theme.id


def unprocessed(session: Session, *, limit: int = 500) -> list[Feedback]:
    """Items not yet themed or not yet checked for duplicates, oldest first."""
    stmt = (
        select(Feedback)
        .outerjoin(ThemeMember, ThemeMember.feedback_id == Feedback.id)
        .where(ThemeMember.feedback_id.is_(None) | ThemeMember.checked.is_(False))
        .order_by(Feedback.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def process_new(
    session: Session,
    *,
    ignore: frozenset[str] = frozenset(),
    now: datetime | None = None,
    limit: int = 500,
) -> int:
    """Theme and check for duplicates every item not seen yet; returns how many."""
    items = unprocessed(session, limit=limit)
    for item in items:
        if session.get(ThemeMember, item.id) is None:  # a first run may have covered it
            assign(session, item=item, now=now)
        suggest_duplicates(session, item=item, ignore=ignore, now=now)
        member = session.get(ThemeMember, item.id)
        if member is not None:
            member.checked = True
    session.flush()
    return len(items)


# --------------------------------------------------------------------------- duplicates


def suggest_duplicates(
    session: Session,
    *,
    item: Feedback,
    ignore: frozenset[str] = frozenset(),
    now: datetime | None = None,
) -> list[DuplicateSuggestion]:
    """Record the open earlier item `item` may duplicate (`similar.pick_duplicate`: the
    nearest, when it is close enough and stands out; with its exact repeats, at most three)."""
    if not item.description or item.status in CLOSED_STATUSES:
        return []
    stmt = select(Feedback.id, Feedback.description).where(
        Feedback.id != item.id,
        Feedback.id < item.id,
        Feedback.language == item.language,
        Feedback.status.not_in(CLOSED_STATUSES),
        Feedback.description != "",
    )
    if item.product:
        stmt = stmt.where((Feedback.product == item.product) | Feedback.product.is_(None))
    rows = session.execute(stmt.order_by(Feedback.id.desc()).limit(DUPLICATE_CANDIDATES)).all()
    if not rows:
        return []
    found = similar.scores(
        item.description, [r[1] for r in rows], ignore=ignore, language=item.language
    )
    best = similar.pick_duplicate(found, item.language)
    # The nearest item, and any that score the same (its text again, not merged yet).
    order = (
        []
        if best is None
        else [
            int(i) for i in np.argsort(-found)[:MAX_SUGGESTIONS] if found[i] >= found[best] - 1e-6
        ]
    )
    values = [
        {
            "feedback_id": item.id,
            "candidate_id": int(rows[i][0]),
            "score": round(float(found[i]), 4),
            "status": "open",
            "created_at": now or utcnow(),
        }
        for i in order
    ]
    if values:
        session.execute(insert_ignoring_conflicts(session, DuplicateSuggestion), values)
    return list(
        session.scalars(
            select(DuplicateSuggestion)
            .where(DuplicateSuggestion.feedback_id == item.id)
            .order_by(DuplicateSuggestion.score.desc())
        )
    )


@dataclass(frozen=True)
class Suggestion:
    """An open suggestion with both items; `keep` is the one a merge keeps."""

    id: int
    score: float
    item: Feedback
    candidate: Feedback

    @property
    def keep(self) -> Feedback:
        """The better-supported item (the older one on a tie) stays; the other merges in."""
        a, b = self.item, self.candidate
        return max((a, b), key=lambda f: (f.supporters, -f.id))

    @property
    def merged(self) -> Feedback:
        return self.candidate if self.keep is self.item else self.item


def open_suggestions(
    session: Session, *, feedback_id: int | None = None, limit: int = 100
) -> list[Suggestion]:
    """Open duplicate suggestions (of one item, either side, if given), best first.

    Pairs whose items were merged or closed meanwhile are left out."""
    stmt = select(DuplicateSuggestion).where(DuplicateSuggestion.status == "open")
    if feedback_id is not None:
        stmt = stmt.where(
            (DuplicateSuggestion.feedback_id == feedback_id)
            | (DuplicateSuggestion.candidate_id == feedback_id)
        )
    out: list[Suggestion] = []
    for s in session.scalars(stmt.order_by(DuplicateSuggestion.score.desc()).limit(limit * 2)):
        item, cand = session.get(Feedback, s.feedback_id), session.get(Feedback, s.candidate_id)
        if item is None or cand is None:
            continue
        if item.status in CLOSED_STATUSES or cand.status in CLOSED_STATUSES:
            continue
        out.append(Suggestion(s.id, s.score, item, cand))
        if len(out) == limit:
            break
    return out


def _suggestion(session: Session, suggestion_id: int) -> DuplicateSuggestion:
    row = session.get(DuplicateSuggestion, suggestion_id)
    if row is None or row.status != "open":
        raise triage.TriageError("that suggestion is gone; it was merged or dismissed already")
    return row


def merge_suggestion(
    session: Session, *, suggestion_id: int, actor: str, now: datetime | None = None
) -> Feedback:
    """One-click merge: the less supported item merges into the other (`triage.merge`:
    supporters and history move, customers who asked are told once). Returns the kept item."""
    row = _suggestion(session, suggestion_id)
    item, cand = session.get(Feedback, row.feedback_id), session.get(Feedback, row.candidate_id)
    assert item is not None and cand is not None
    pair = Suggestion(row.id, row.score, item, cand)
    kept = triage.merge(session, ref=pair.merged.ref, into_ref=pair.keep.ref, actor=actor)
    row.status, row.decided_by, row.decided_at = "merged", actor[:64], now or utcnow()
    return kept


def dismiss_suggestion(
    session: Session, *, suggestion_id: int, actor: str, now: datetime | None = None
) -> None:
    """ "Not a duplicate": the pair is not suggested again."""
    row = _suggestion(session, suggestion_id)
    row.status, row.decided_by, row.decided_at = "dismissed", actor[:64], now or utcnow()


# --------------------------------------------------------------------------- team edits


def get_theme(session: Session, theme_id: int) -> Theme:
    """The theme with this id, or ThemeError."""
    theme = session.get(Theme, theme_id)
    if theme is None:
        raise ThemeError(f"no theme {theme_id}")
    return theme


def rename(session: Session, *, theme_id: int, label: str, actor: str) -> Theme:
    """Name a theme; later runs keep the name."""
    label = " ".join(label.split())[:MAX_LABEL]
    if not label:
        raise ThemeError("the new name is empty")
    theme = get_theme(session, theme_id)
    theme.label, theme.label_pinned, theme.updated_at = label, True, utcnow()
    session.flush()
    log.info("%s renamed theme %s to %r", actor, theme_id, label)
    return theme


def merge_themes(session: Session, *, theme_id: int, into_id: int, actor: str) -> Theme:
    """Move every item of `theme_id` into `into_id` for good; returns the kept theme."""
    source, target = get_theme(session, theme_id), get_theme(session, into_id)
    if source.id == target.id:
        raise ThemeError("a theme cannot be merged into itself")
    if source.language != target.language:
        raise ThemeError("themes of different languages cannot be merged")
    if "active" not in (source.status, target.status) or target.status != "active":
        raise ThemeError(
            f"theme {target.id if target.status != 'active' else source.id} is not active"
        )
    session.execute(
        update(ThemeMember)
        .where(ThemeMember.theme_id.in_([source.id, target.id]))
        .values(theme_id=target.id, manual=True)
    )
    if source.centroid and target.centroid:
        a = np.frombuffer(source.centroid, np.float32) * max(source.size, 1)
        b = np.frombuffer(target.centroid, np.float32) * max(target.size, 1)
        target.centroid = cluster.centroid(np.vstack([a, b])).tobytes()
    target.size += source.size
    target.edited = True
    source.status, source.merged_into_id, source.size = "merged", target.id, 0
    source.updated_at = target.updated_at = utcnow()
    _bump(session, target.language)
    session.flush()
    log.info("%s merged theme %s into %s", actor, source.id, target.id)
    return target


def split(
    session: Session,
    *,
    theme_id: int,
    feedback_ids: Iterable[int],
    actor: str,
    label: str = "",
) -> Theme:
    """Move the chosen items of a theme into a new theme; both keep their members apart."""
    theme = get_theme(session, theme_id)
    if theme.status != "active":
        raise ThemeError(f"theme {theme_id} is not active")
    members = set(
        session.scalars(select(ThemeMember.feedback_id).where(ThemeMember.theme_id == theme_id))
    )
    chosen = members & set(feedback_ids)
    if not chosen:
        raise ThemeError("choose at least one item of this theme to split off")
    if chosen == members:
        raise ThemeError("leave at least one item in the theme")
    now = utcnow()
    texts: dict[int, str] = {
        int(fid): str(text)
        for fid, text in session.execute(
            select(Feedback.id, Feedback.description).where(Feedback.id.in_(members))
        )
    }
    named = features.labels(
        {0: [texts[f] for f in chosen], 1: [texts[f] for f in members - chosen]}, theme.language
    )
    new = Theme(
        language=theme.language,
        label=(" ".join(label.split()) or named[0])[:MAX_LABEL],
        label_pinned=bool(label.strip()),
        edited=True,
        size=len(chosen),
        created_at=now,
        updated_at=now,
    )
    session.add(new)
    session.flush()
    session.execute(
        update(ThemeMember)
        .where(ThemeMember.feedback_id.in_(chosen))
        .values(theme_id=new.id, manual=True)
    )
    session.execute(
        update(ThemeMember).where(ThemeMember.feedback_id.in_(members - chosen)).values(manual=True)
    )
    theme.edited, theme.size, theme.updated_at = True, len(members - chosen), now
    if not theme.label_pinned:
        theme.label = named[1][:MAX_LABEL]
    state = _state(session, theme.language)
    if state is not None:
        for t, fs in ((new, chosen), (theme, members - chosen)):
            t.centroid = cluster.centroid(state.space.vectors([texts[f] for f in fs])).tobytes()
    _bump(session, theme.language)
    session.flush()
    log.info("%s split %d items off theme %s into %s", actor, len(chosen), theme_id, new.id)
    return new


# --------------------------------------------------------------------------- reading


@dataclass
class ThemeSummary:
    """A theme as the dashboard, CLI, digest and stats show it."""

    id: int
    language: str
    label: str
    size: int
    supporters: int
    sentiment: float | None
    products: list[tuple[str | None, int]]
    types: list[tuple[str, int]]
    pinned: bool
    edited: bool
    status: str


def summaries(
    session: Session,
    *,
    language: str | None = None,
    ids: Sequence[int] | None = None,
    min_size: int = 1,
    limit: int | None = None,
) -> list[ThemeSummary]:
    """Active themes with their numbers, largest first."""
    stmt = (
        select(
            Theme.id,
            func.count(Feedback.id),
            func.coalesce(func.sum(Feedback.supporters), 0),
            func.avg(Feedback.sentiment),
        )
        .join(ThemeMember, ThemeMember.theme_id == Theme.id)
        .join(Feedback, Feedback.id == ThemeMember.feedback_id)
        .where(Theme.status == "active")
        .group_by(Theme.id)
        .having(func.count(Feedback.id) >= min_size)
        .order_by(func.count(Feedback.id).desc(), Theme.id)
    )
    if language:
        stmt = stmt.where(Theme.language == language)
    if ids is not None:
        stmt = stmt.where(Theme.id.in_(list(ids)))
    if limit:
        stmt = stmt.limit(limit)
    numbers = session.execute(stmt).all()
    wanted = [r[0] for r in numbers]
    if not wanted:
        return []
    themes = {t.id: t for t in session.scalars(select(Theme).where(Theme.id.in_(wanted)))}
    products: dict[int, list[tuple[str | None, int]]] = defaultdict(list)
    types: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for column, into in ((Feedback.product, products), (Feedback.type, types)):
        for tid, value, n in session.execute(
            select(ThemeMember.theme_id, column, func.count())
            .join(Feedback, Feedback.id == ThemeMember.feedback_id)
            .where(ThemeMember.theme_id.in_(wanted))
            .group_by(ThemeMember.theme_id, column)
            .order_by(func.count().desc())
        ):
            into[tid].append((value, int(n)))
    return [
        ThemeSummary(
            id=tid,
            language=themes[tid].language,
            label=themes[tid].label,
            size=int(n),
            supporters=int(sup),
            sentiment=float(sent) if sent is not None else None,
            products=products[tid],
            types=types[tid],
            pinned=themes[tid].label_pinned,
            edited=themes[tid].edited,
            status=themes[tid].status,
        )
        for tid, n, sup, sent in numbers
    ]


def members(session: Session, *, theme_id: int, limit: int = 200) -> list[Feedback]:
    """A theme's items, most supported first."""
    return list(
        session.scalars(
            select(Feedback)
            .join(ThemeMember, ThemeMember.feedback_id == Feedback.id)
            .where(ThemeMember.theme_id == theme_id)
            .order_by(Feedback.supporters.desc(), Feedback.id.desc())
            .limit(limit)
        )
    )


def theme_of(session: Session, *, feedback_id: int) -> Theme | None:
    """The theme an item is in, if any."""
    return session.scalar(
        select(Theme)
        .join(ThemeMember, ThemeMember.theme_id == Theme.id)
        .where(ThemeMember.feedback_id == feedback_id)
    )


def last_run(session: Session) -> datetime | None:
    """When the last full run finished (of any language)."""
    return session.scalar(select(func.max(ThemeModel.built_at)))


# --------------------------------------------------------------------------- background

FULL_RUN_EVERY_S = 6 * 3600
INCREMENTAL_EVERY_S = 60.0


def tick(
    session: Session,
    *,
    ignore: frozenset[str] = frozenset(),
    now: datetime | None = None,
    full_every_s: float = FULL_RUN_EVERY_S,
) -> str:
    """The periodic work: a full run when the last is older than `full_every_s` (or
    there is none and items exist), else theme and check the items that arrived."""
    now = now or utcnow()
    last = last_run(session)
    if languages(session) and (last is None or (now - last).total_seconds() >= full_every_s):
        result = run(session, now=now)
        suggested = process_new(session, ignore=ignore, now=now)
        message = (
            f"full run: {result.items} items, {result.themes} themes "
            f"({result.opened} new, {result.retired} retired) in {result.seconds:.1f} s; "
            f"{suggested} new items checked for duplicates"
        )
    else:
        done = process_new(session, ignore=ignore, now=now)
        message = f"{done} new item{'' if done == 1 else 's'} themed"
    announced = announce_emerging(session, now=now)
    return message + (f"; {announced} emerging theme(s) announced" if announced else "")


def announce_emerging(session: Session, *, now: datetime | None = None) -> int:
    """Send a "theme.emerging" event (webhooks, Slack) for each theme that just started
    to emerge, in this transaction: announced and sent together, or neither."""
    from earshot.integrations.events import emit
    from earshot.themes.trends import BEFORE, RECENT, newly_emerging

    now = now or utcnow()
    fresh = newly_emerging(session, now)
    if not fresh:
        return 0
    by_id = {t.id: t for t in summaries(session, ids=[e.theme_id for e in fresh])}
    year, week_no, _ = now.isocalendar()
    week = f"{year}-W{week_no:02d}"
    for e in fresh:
        t = by_id.get(e.theme_id)
        payload = {
            "theme": {
                "id": str(e.theme_id),
                "label": e.label,
                "language": e.language,
                "size": t.size if t else e.recent,
                "supporters": t.supporters if t else 0,
                "products": [p for p, _ in t.products if p] if t else [],
                "types": dict(t.types) if t else {},
                "sentiment": t.sentiment if t else None,
            },
            "window": {
                "recent_weeks": RECENT // timedelta(weeks=1),
                "recent": e.recent,
                "baseline_weeks": BEFORE // timedelta(weeks=1),
                "baseline": e.before,
            },
            "items": [f.ref for f in members(session, theme_id=e.theme_id, limit=10)],
        }
        emit(
            session,
            kind="theme.emerging",
            payload=payload,
            key=f"theme.emerging:{e.theme_id}:{week}",
        )
    return len(fresh)
