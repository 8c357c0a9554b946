"""The dashboard's Misunderstood page: what customers said that the assistant got wrong.

Open messages grouped by meaning, newest group first; a team member assigns a message or
a whole group to a topic, to out of scope or to "new topic needed". Assignments are
written to kb/learned/ for the next `make train` and recorded with who made them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from earshot.knowledge import learned, misunderstood
from earshot.knowledge.kb import KnowledgeBaseError
from earshot.settings import ROOT
from earshot.web.app import (
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
RASA_DIR = ROOT / "rasa_project"
MAX_IDS = 200


def _training(request: Request) -> misunderstood.Training:
    s = dash(request).settings
    return misunderstood.Training.load(Path(s.knowledge_base), s.languages, RASA_DIR)


def _target_label(target: str) -> str:
    return {
        learned.OUT_OF_SCOPE: "Out of scope",
        learned.NEW_TOPIC: "New topic needed",
    }.get(target, target.replace("_", " "))


@login_required
async def page(request: Request) -> Response:
    d = dash(request)
    s = d.settings

    def build(session: Session) -> Response:
        try:
            training = _training(request)
        except (KnowledgeBaseError, learned.LearnedError) as exc:
            return render(
                request, "error.html", 500, title="Knowledge base invalid", message=str(exc)
            )
        groups = misunderstood.group(misunderstood.open_messages(session))
        return render(
            request,
            "misunderstood.html",
            groups=groups,
            targets=[(t, _target_label(t)) for t in training.targets()],
            reason_labels=misunderstood.REASON_LABELS,
            new_topics=learned.new_topic_requests(Path(s.knowledge_base), s.languages),
            history=misunderstood.history(session),
            target_label=_target_label,
        )

    return await d.db(build)


@role_required("triager")  # it writes training data
async def assign(request: Request) -> Response:
    d = dash(request)
    form = await checked_form(request)
    actor = current_user(request) or security.DEFAULT_USER
    target = str(form.get("target") or "").strip()
    try:
        ids = [int(str(v)) for v in form.getlist("ids")][:MAX_IDS]
    except ValueError:
        ids = []
    if not ids:
        flash(request, "Select at least one message to assign.", "error")
        return RedirectResponse("/misunderstood", status_code=303)

    def run(session: Session) -> misunderstood.Assignment:
        return misunderstood.assign(
            session, ids=ids, target=target, actor=actor, training=_training(request)
        )

    try:
        result = await d.db(run)
    except (learned.LearnedError, KnowledgeBaseError) as exc:
        flash(request, f"Not assigned: {exc}", "error")
        return RedirectResponse("/misunderstood", status_code=303)
    label = _target_label(target)
    n = len(ids)
    message = f"{n} message{'' if n == 1 else 's'} assigned to {label}"
    if target == learned.NEW_TOPIC:
        message += "; listed under New topics needed (not trained)"
    elif result.added:
        message += f"; {len(result.added)} added to the training files for the next training"
    log.info("%s: misunderstood %s -> %s (%d learned)", actor, ids, target, len(result.added))
    flash(request, message)
    for text, why in result.skipped[:5]:
        flash(request, f"Not learned: “{text}”: {why}", "error")
    return RedirectResponse("/misunderstood", status_code=303)


def routes() -> list[Any]:
    """Mounted by earshot.web.app.create_app."""
    return [
        Route("/misunderstood", page),
        Route("/misunderstood/assign", assign, methods=["POST"]),
    ]
