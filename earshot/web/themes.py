"""The dashboard's Themes and Duplicates pages.

Themes: what customers ask for, grouped automatically (earshot/themes), with weekly
charts and the emerging ones first; triagers rename, merge and split themes (kept on later
runs). Duplicates: suggested pairs with a one-click merge (`triage.merge` underneath:
supporters and history move to the kept item, customers who asked are told once).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from earshot.feedback import triage
from earshot.storage.models import utcnow
from earshot.themes import service as themes
from earshot.themes import trends
from earshot.web import charts
from earshot.web.app import (
    _safe_next,
    _text,
    checked_form,
    current_user,
    dash,
    flash,
    login_required,
    render,
    role_required,
    security,
)

log = logging.getLogger("earshot.web")
WEEKS = 12
TOP_CHARTED = 6
PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2"]


def _theme_id(request: Request) -> int:
    try:
        return int(request.path_params["theme_id"])
    except ValueError:
        raise HTTPException(404, "No such theme.") from None


def _week_labels(weeks: list[trends.Week]) -> list[str]:
    return [w.start.strftime("%d %b") for w in weeks]


@login_required
async def list_page(request: Request) -> Response:
    d = dash(request)
    language = request.query_params.get("language", "")
    language = language if language in d.settings.languages else ""

    def build(session: Session) -> Response:
        now = utcnow()
        found = themes.summaries(session, language=language or None, min_size=2)
        emerging = {e.theme_id: e for e in trends.emerging_themes(session, now)}
        found.sort(key=lambda s: (s.id not in emerging, -s.size, s.id))
        top = found[:TOP_CHARTED]
        weekly = trends.weekly(session, theme_ids=[s.id for s in top], now=now, weeks=WEEKS)
        first = next(iter(weekly.values()), [])
        volume = (
            charts.lines(
                _week_labels(first),
                [
                    charts.Series(f"{s.label[:40]}", [w.items for w in weekly[s.id]], c)
                    for s, c in zip(top, PALETTE, strict=False)
                ],
                label="Items per week, largest and emerging themes",
                lo=0.0,
                hi=float(max([w.items for ws in weekly.values() for w in ws] + [1])),
                fmt=charts.integer,
                width=1200,
            )
            if top
            else charts.empty("Items per week", "No themes yet: run `earshot themes run`")
        )
        sizes = charts.hbars(
            [charts.Bar(s.label[:60], s.size, href=f"/themes/{s.id}") for s in found[:15]],
            label="Largest themes",
            label_width=300,
        )
        return render(
            request,
            "themes.html",
            themes=found,
            emerging=emerging,
            language=language,
            volume=volume,
            sizes=sizes,
            suggestions=len(themes.open_suggestions(session, limit=500)),
            last_run=themes.last_run(session),
        )

    return await d.db(build)


@login_required
async def theme_page(request: Request) -> Response:
    d = dash(request)
    theme_id = _theme_id(request)

    def build(session: Session) -> Response:
        try:
            theme = themes.get_theme(session, theme_id)
        except themes.ThemeError:
            return render(request, "error.html", 404, title="Not found", message="No such theme.")
        if theme.status == "merged" and theme.merged_into_id:
            return RedirectResponse(f"/themes/{theme.merged_into_id}", status_code=303)
        now = utcnow()
        summary = next(iter(themes.summaries(session, ids=[theme_id])), None)
        weeks = trends.weekly(session, theme_ids=[theme_id], now=now, weeks=WEEKS)[theme_id]
        labels = _week_labels(weeks)
        volume = charts.stacked_bars(
            labels,
            [
                charts.Series("items", [w.items for w in weeks], "#2563eb"),
            ],
            label="Items per week",
        )
        supporters = charts.stacked_bars(
            labels,
            [charts.Series("supporters", [w.supporters for w in weeks], "#7c3aed")],
            label="Supporters of the week's items",
        )
        sentiment = charts.lines(
            labels,
            [charts.Series("average sentiment", [w.sentiment for w in weeks], "#059669")],
            label="Sentiment per week",
            lo=-1.0,
            hi=1.0,
            zero_line=True,
        )
        others = [s for s in themes.summaries(session, language=theme.language) if s.id != theme_id]
        emerging = {e.theme_id: e for e in trends.emerging_themes(session, now)}
        return render(
            request,
            "theme.html",
            theme=theme,
            summary=summary,
            members=themes.members(session, theme_id=theme_id),
            volume=volume,
            supporters_chart=supporters,
            sentiment=sentiment,
            others=others,
            emerging=emerging.get(theme_id),
        )

    return await d.db(build)


def _edit(fn: Any) -> Any:
    """A theme edit: triager role, CSRF, flash the outcome, back to the theme shown."""

    @role_required("triager")
    async def handler(request: Request) -> Response:
        d = dash(request)
        form = await checked_form(request)
        theme_id = _theme_id(request)
        actor = current_user(request) or security.DEFAULT_USER
        try:
            message, show = await d.db(lambda s: fn(s, theme_id, form, actor))
        except themes.ThemeError as exc:
            flash(request, str(exc), "error")
            return RedirectResponse(f"/themes/{theme_id}", status_code=303)
        log.info("%s: %s", actor, message)
        flash(request, message)
        return RedirectResponse(f"/themes/{show}", status_code=303)

    handler.__name__ = fn.__name__
    return handler


@_edit
def rename_action(session: Session, theme_id: int, form: FormData, actor: str) -> tuple[str, int]:
    theme = themes.rename(session, theme_id=theme_id, label=_text(form, "label", 200), actor=actor)
    return f"theme {theme_id} is now called “{theme.label}”", theme_id


@_edit
def merge_action(session: Session, theme_id: int, form: FormData, actor: str) -> tuple[str, int]:
    try:
        into = int(_text(form, "into", 16))
    except ValueError:
        raise themes.ThemeError("choose the theme to merge into") from None
    kept = themes.merge_themes(session, theme_id=theme_id, into_id=into, actor=actor)
    return f"theme {theme_id} merged into “{kept.label}”", kept.id


@_edit
def split_action(session: Session, theme_id: int, form: FormData, actor: str) -> tuple[str, int]:
    try:
        ids = [int(str(v)) for v in form.getlist("ids")][:1000]
    except ValueError:
        ids = []
    new = themes.split(
        session, theme_id=theme_id, feedback_ids=ids, actor=actor, label=_text(form, "label", 200)
    )
    return f"{new.size} item{'' if new.size == 1 else 's'} split off into “{new.label}”", new.id


# --- duplicates ---------------------------------------------------------------------------


@login_required
async def duplicates_page(request: Request) -> Response:
    d = dash(request)

    def build(session: Session) -> Response:
        return render(request, "duplicates.html", suggestions=themes.open_suggestions(session))

    return await d.db(build)


async def _decide(request: Request, merge: bool) -> Response:
    d = dash(request)
    form = await checked_form(request)
    actor = current_user(request) or security.DEFAULT_USER
    back = _safe_next(_text(form, "next", 200) or "/duplicates")
    try:
        suggestion_id = int(request.path_params["suggestion_id"])
    except ValueError:
        raise HTTPException(404) from None

    def decide(session: Session) -> str:
        if merge:
            kept = themes.merge_suggestion(session, suggestion_id=suggestion_id, actor=actor)
            return f"merged into {kept.ref} ({kept.supporters} supporters)"
        themes.dismiss_suggestion(session, suggestion_id=suggestion_id, actor=actor)
        return "suggestion dismissed: not a duplicate"

    try:
        message = await d.db(decide)
    except triage.TriageError as exc:
        flash(request, str(exc), "error")
        return RedirectResponse(back, status_code=303)
    log.info("%s: duplicate suggestion %s %s", actor, suggestion_id, message)
    flash(request, message)
    return RedirectResponse(back, status_code=303)


@role_required("triager")
async def merge_suggestion(request: Request) -> Response:
    return await _decide(request, merge=True)


@role_required("triager")
async def dismiss_suggestion(request: Request) -> Response:
    return await _decide(request, merge=False)


def routes() -> list[Any]:
    """Mounted by earshot.web.app.create_app."""
    return [
        Route("/themes", list_page),
        Route("/themes/{theme_id}", theme_page),
        Route("/themes/{theme_id}/rename", rename_action, methods=["POST"]),
        Route("/themes/{theme_id}/merge", merge_action, methods=["POST"]),
        Route("/themes/{theme_id}/split", split_action, methods=["POST"]),
        Route("/duplicates", duplicates_page),
        Route("/duplicates/{suggestion_id}/merge", merge_suggestion, methods=["POST"]),
        Route("/duplicates/{suggestion_id}/dismiss", dismiss_suggestion, methods=["POST"]),
    ]
