"""The dashboard's integrations: the delivery log with "retry now", "create issue" on an
item page, and the endpoints GitHub and Jira post their webhooks to.

The tracker webhooks carry no session or CSRF token: their HMAC signature (checked in
constant time over the raw body) is what lets them in; anything else gets 401.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from earshot.feedback import triage
from earshot.integrations import deliveries, trackers
from earshot.integrations.signing import hub_signature_valid
from earshot.web.app import checked_form, current_user, dash, flash, render, role_required, security

log = logging.getLogger("earshot.web")
HOOK_BODY_LIMIT = 1024 * 1024  # GitHub caps payloads at 25 MB; issue events are ~20 KB


@role_required("triager")
async def deliveries_page(request: Request) -> Response:
    d = dash(request)
    status = request.query_params.get("status", "")
    status = status if status in deliveries.STATUSES else ""

    def load(session: Any) -> Response:
        rows = deliveries.deliveries(session, status=status or None, limit=200)
        counts = deliveries.counts(session)
        return render(
            request,
            "integrations.html",
            rows=rows,
            counts=counts,
            status=status,
            statuses=deliveries.STATUSES,
            endpoints=d.settings.webhooks,
            slack_channel=d.settings.slack_channel if d.settings.slack_bot_token else None,
            trackers=trackers.configured(d.settings),
            settings=d.settings,
        )

    return await d.db(load)


@role_required("triager")
async def retry_delivery(request: Request) -> Response:
    d = dash(request)
    await checked_form(request)
    try:
        delivery_id = int(request.path_params["id"])
    except ValueError:
        delivery_id = 0
    ok = await d.db(deliveries.retry_now, delivery_id=delivery_id)
    actor = current_user(request) or security.DEFAULT_USER
    if ok:
        log.info("%s: retry delivery %s now", actor, delivery_id)
        flash(request, f"Delivery {delivery_id} will be tried again now.")
    else:
        flash(request, f"Delivery {delivery_id} was delivered already or does not exist.", "error")
    return RedirectResponse("/integrations", status_code=303)


@role_required("triager")
async def create_issue(request: Request) -> Response:
    d = dash(request)
    form = await checked_form(request)
    ref = request.path_params["ref"].upper()
    tracker = str(form.get("tracker") or "")
    actor = current_user(request) or security.DEFAULT_USER
    if tracker not in trackers.configured(d.settings):
        flash(request, f"{tracker or 'That tracker'} is not configured.", "error")
        return RedirectResponse(f"/items/{ref}", status_code=303)

    def prepare(session: Any) -> trackers.Draft | str:
        existing = [x for x in trackers.links_of(session, ref=ref) if x.tracker == tracker]
        if existing:
            return f"{ref} already has {existing[0].external_id}"
        return trackers.draft(session, ref=ref, base_url=d.settings.dashboard_base)

    try:
        found = await d.db(prepare)
        if isinstance(found, str):
            flash(request, found, "error")
            return RedirectResponse(f"/items/{ref}", status_code=303)
        create = trackers.create_github_issue if tracker == "github" else trackers.create_jira_issue
        external_id, url = await create(d.settings, found)
        await d.db(
            trackers.link_issue,
            ref=ref,
            tracker=tracker,
            external_id=external_id,
            url=url,
            actor=actor,
        )
    except (triage.TriageError, trackers.TrackerError) as exc:
        flash(request, f"No issue created: {exc}", "error")
        return RedirectResponse(f"/items/{ref}", status_code=303)
    log.info("%s: %s issue %s from %s", actor, tracker, external_id, ref)
    flash(request, f"Created {external_id} from {ref}.")
    return RedirectResponse(f"/items/{ref}", status_code=303)


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


async def github_hook(request: Request) -> Response:
    d = dash(request)
    secret = d.settings.github_webhook_secret
    body = await request.body()
    if secret is None or not hub_signature_valid(
        secret.get_secret_value(), body, request.headers.get("x-hub-signature-256")
    ):
        log.warning(
            "GitHub webhook with a missing or wrong signature from %s", security.client_key(request)
        )
        return JSONResponse({"error": "invalid signature"}, 401)
    payload = _json(body)
    delivery = request.headers.get("x-github-delivery", "")
    if payload is None or not delivery:
        return JSONResponse({"error": "expected a JSON object and X-GitHub-Delivery"}, 400)
    event = request.headers.get("x-github-event", "")
    result = await d.db(trackers.github_event, event=event, delivery_id=delivery, payload=payload)
    log.info("GitHub webhook %s: %s", delivery, result)
    return JSONResponse({"ok": True, "result": result})


async def jira_hook(request: Request) -> Response:
    d = dash(request)
    secret = d.settings.jira_webhook_secret
    body = await request.body()
    if secret is None or not hub_signature_valid(
        secret.get_secret_value(), body, request.headers.get("x-hub-signature")
    ):
        log.warning(
            "Jira webhook with a missing or wrong signature from %s", security.client_key(request)
        )
        return JSONResponse({"error": "invalid signature"}, 401)
    payload = _json(body)
    if payload is None:
        return JSONResponse({"error": "expected a JSON object"}, 400)
    issue = payload.get("issue") or {}
    delivery = request.headers.get("x-atlassian-webhook-identifier") or (
        f"{issue.get('key')}:{payload.get('timestamp')}"
    )
    result = await d.db(trackers.jira_event, delivery_id=delivery, payload=payload)
    log.info("Jira webhook %s: %s", delivery, result)
    return JSONResponse({"ok": True, "result": result})


def routes() -> list[Any]:
    """Mounted by earshot.web.app.create_app."""
    return [
        Route("/integrations", deliveries_page),
        Route("/integrations/deliveries/{id}/retry", retry_delivery, methods=["POST"]),
        Route("/items/{ref}/issue", create_issue, methods=["POST"]),
        Route("/hooks/github", github_hook, methods=["POST"]),
        Route("/hooks/jira", jira_hook, methods=["POST"]),
    ]
