"""GitHub issues and Jira issues made from feedback items, and the way back.

"Create issue" (dashboard, triager) posts the item's redacted text, supporters and a link
back to GitHub's REST API (POST /repos/{owner}/{repo}/issues) or Jira Cloud's REST v3
(POST /rest/api/3/issue, description in Atlassian Document Format) and stores the issue's
URL on the item (`issue_links`). The trackers' webhooks come back signed (GitHub:
X-Hub-Signature-256, Jira admin webhooks: X-Hub-Signature, both HMAC-SHA256 of the raw
body); when the issue closes the item becomes done (declined when closed as not planned /
won't do), when it reopens the item goes back, through `triage.set_status`, so customers
who asked to hear back are told once. A redelivered webhook (same delivery id) changes
nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from earshot.feedback import triage
from earshot.privacy.redaction import redact
from earshot.settings import Settings
from earshot.storage.db import insert_ignoring_conflicts
from earshot.storage.models import Feedback, FeedbackEvent, InboundWebhook, IssueLink, utcnow

log = logging.getLogger("earshot.integrations")
TRACKERS = ("github", "jira")
GITHUB_API_VERSION = "2022-11-28"
TITLE_LENGTH = 90
# Jira resolutions that mean "we will not do this"; other resolutions mean done.
JIRA_DECLINED = frozenset({"won't do", "won't fix", "declined", "duplicate", "cannot reproduce"})
CLOSED_ITEM = frozenset({"done", "declined"})


class TrackerError(Exception):
    """The tracker refused or could not be reached; the message says why."""


@dataclass(frozen=True)
class Draft:
    """What an issue says about an item (redacted text, no customer identifiers)."""

    ref: str
    title: str
    text: str
    benefit: str | None
    supporters: int
    product: str | None
    type: str
    url: str

    def markdown(self) -> str:
        lines = [f"> {line}" for line in self.text.splitlines() or [""]]
        if self.benefit:
            lines += [
                "",
                "Why it matters to them:",
                "",
                *(f"> {b}" for b in self.benefit.splitlines()),
            ]
        lines += [
            "",
            f"- Supporters: {self.supporters}",
            f"- Type: {self.type}",
            f"- Product: {self.product or '—'}",
            f"- Feedback item: [{self.ref}]({self.url})",
            "",
            "_Created from Earshot; closing this issue marks the item done and tells the "
            "customers who asked to hear back._",
        ]
        return "\n".join(lines)

    def adf(self) -> dict[str, Any]:
        """The description in Atlassian Document Format (Jira REST v3)."""

        def para(*nodes: dict[str, Any]) -> dict[str, Any]:
            return {"type": "paragraph", "content": list(nodes)}

        def text(value: str, **mark: str) -> dict[str, Any]:
            node: dict[str, Any] = {"type": "text", "text": value}
            if mark:
                node["marks"] = [{"type": "link", "attrs": {"href": mark["href"]}}]
            return node

        content: list[dict[str, Any]] = [
            {"type": "blockquote", "content": [para(text(self.text or "(no text)"))]}
        ]
        if self.benefit:
            content.append(para(text(f"Why it matters to them: {self.benefit}")))
        facts = [
            f"Supporters: {self.supporters}",
            f"Type: {self.type}",
            f"Product: {self.product or '—'}",
        ]
        content.append(
            {
                "type": "bulletList",
                "content": [{"type": "listItem", "content": [para(text(f))]} for f in facts],
            }
        )
        content.append(para(text("Feedback item: "), text(self.ref, href=self.url)))
        return {"type": "doc", "version": 1, "content": content}


def draft(session: Session, *, ref: str, base_url: str) -> Draft:
    """The issue to create for item `ref` (TriageError if there is none)."""
    item = triage.get_item(session, ref=ref)
    text = redact(item.description or "")
    first = " ".join(text.split())
    title = first if len(first) <= TITLE_LENGTH else first[: TITLE_LENGTH - 1].rstrip() + "…"
    return Draft(
        ref=item.ref,
        title=f"{title or item.type} ({item.ref})",
        text=text,
        benefit=redact(item.benefit) if item.benefit else None,
        supporters=item.supporters,
        product=item.product,
        type=item.type,
        url=f"{base_url}/items/{item.ref}",
    )


def configured(settings: Settings) -> list[str]:
    """The trackers an issue can be created in with these settings."""
    out = []
    if settings.github_token and settings.github_repo:
        out.append("github")
    if (
        settings.jira_base_url
        and settings.jira_email
        and settings.jira_api_token
        and settings.jira_project
    ):
        out.append("jira")
    return out


def _error(name: str, response: httpx.Response) -> TrackerError:
    try:
        doc = response.json()
        detail = (
            doc.get("message")
            or "; ".join(doc.get("errorMessages") or [])
            or str(doc.get("errors", ""))
        )
    except ValueError:
        detail = response.text[:200]
    return TrackerError(f"{name} answered {response.status_code}: {detail}")


async def create_github_issue(
    settings: Settings, d: Draft, *, transport: httpx.AsyncBaseTransport | None = None
) -> tuple[str, str]:
    """Create the issue on GitHub; returns (owner/repo#number, html_url)."""
    assert settings.github_token and settings.github_repo
    url = f"{settings.github_api_base_url.rstrip('/')}/repos/{settings.github_repo}/issues"
    headers = {
        "Authorization": f"Bearer {settings.github_token.get_secret_value()}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": GITHUB_API_VERSION,
    }
    try:
        async with httpx.AsyncClient(transport=transport, timeout=settings.webhook_timeout_s) as c:
            r = await c.post(url, json={"title": d.title, "body": d.markdown()}, headers=headers)
    except httpx.HTTPError as exc:
        raise TrackerError(f"GitHub could not be reached: {exc}") from exc
    if r.status_code != 201:
        raise _error("GitHub", r)
    doc = r.json()
    return f"{settings.github_repo}#{doc['number']}", str(doc["html_url"])


async def create_jira_issue(
    settings: Settings, d: Draft, *, transport: httpx.AsyncBaseTransport | None = None
) -> tuple[str, str]:
    """Create the issue in Jira Cloud; returns (issue key, browse URL)."""
    assert settings.jira_base_url and settings.jira_email and settings.jira_api_token
    base = settings.jira_base_url.rstrip("/")
    fields = {
        "project": {"key": settings.jira_project},
        "summary": d.title,
        "issuetype": {"name": settings.jira_issue_type},
        "description": d.adf(),
    }
    auth = (settings.jira_email, settings.jira_api_token.get_secret_value())
    try:
        async with httpx.AsyncClient(transport=transport, timeout=settings.webhook_timeout_s) as c:
            r = await c.post(
                f"{base}/rest/api/3/issue",
                json={"fields": fields},
                auth=auth,
                headers={"Accept": "application/json"},
            )
    except httpx.HTTPError as exc:
        raise TrackerError(f"Jira could not be reached: {exc}") from exc
    if r.status_code != 201:
        raise _error("Jira", r)
    key = str(r.json()["key"])
    return key, f"{base}/browse/{key}"


def link_issue(
    session: Session, *, ref: str, tracker: str, external_id: str, url: str, actor: str
) -> IssueLink:
    """Store the issue on the item, with a line in its history."""
    item = triage.get_item(session, ref=ref)
    now = utcnow()
    link = IssueLink(
        feedback_id=item.id,
        tracker=tracker,
        external_id=external_id,
        url=url,
        state="open",
        created_by=actor[:64],
        created_at=now,
        updated_at=now,
    )
    session.add(link)
    session.add(
        FeedbackEvent(
            feedback_id=item.id,
            actor=actor[:64],
            field="issue",
            old_value=None,
            new_value=url,
            at=now,
        )
    )
    session.flush()
    return link


def links_of(session: Session, *, ref: str) -> list[IssueLink]:
    """The issues made from item `ref`, oldest first."""
    stmt = (
        select(IssueLink)
        .join(Feedback, Feedback.id == IssueLink.feedback_id)
        .where(Feedback.ref == ref.strip().upper())
        .order_by(IssueLink.id)
    )
    return list(session.scalars(stmt))


# --- the way back --------------------------------------------------------------------------


def _first_delivery(session: Session, source: str, delivery_id: str) -> bool:
    """Record a tracker delivery id; False when it was handled before."""
    stmt = (
        insert_ignoring_conflicts(session, InboundWebhook)
        .values(source=source, delivery_id=delivery_id[:128], received_at=utcnow())
        .returning(InboundWebhook.id)
    )
    return session.scalar(stmt) is not None


def _follow(
    session: Session, link: IssueLink, *, state: str, status: str | None, actor: str
) -> str:
    """Move the linked item to `status` (None: back to where it was before closing)."""
    item = session.get(Feedback, link.feedback_id)
    assert item is not None
    if status is None:
        status = link.status_before if item.status in CLOSED_ITEM else None
        link.status_before = None
    elif status in CLOSED_ITEM and item.status not in CLOSED_ITEM:
        link.status_before = item.status
    elif status not in CLOSED_ITEM:
        link.status_before = None
    link.state, link.updated_at = state, utcnow()
    if status is None or item.status == status:
        return f"{link.external_id} {state}; {item.ref} stays {item.status}"
    try:
        triage.set_status(
            session, ref=item.ref, status=status, actor=actor, note=f"{link.external_id} {state}"
        )
    except triage.TriageError as exc:  # e.g. merged as a duplicate meanwhile
        return f"{link.external_id} {state}; {item.ref} unchanged: {exc}"
    return f"{link.external_id} {state}; {item.ref} is now {status}"


def github_event(session: Session, *, event: str, delivery_id: str, payload: dict[str, Any]) -> str:
    """Apply a GitHub `issues` webhook (signature already checked); says what happened."""
    if event == "ping":
        return "pong"
    if event != "issues":
        return f"ignored {event} event"
    action = payload.get("action")
    if action not in ("closed", "reopened"):
        return f"ignored issues.{action}"
    repo = (payload.get("repository") or {}).get("full_name")
    number = (payload.get("issue") or {}).get("number")
    link = session.scalar(
        select(IssueLink).where(
            IssueLink.tracker == "github", IssueLink.external_id == f"{repo}#{number}"
        )
    )
    if link is None:
        return f"no item is linked to {repo}#{number}"
    if not _first_delivery(session, "github", delivery_id):
        return f"delivery {delivery_id} was already handled"
    if action == "closed":
        reason = (payload.get("issue") or {}).get("state_reason")
        status = "declined" if reason == "not_planned" else "done"
        return _follow(session, link, state="closed", status=status, actor="github")
    return _follow(session, link, state="open", status=None, actor="github")


def jira_event(session: Session, *, delivery_id: str, payload: dict[str, Any]) -> str:
    """Apply a Jira issue webhook (signature already checked); says what happened.

    The issue's status category decides: done closes the item (declined for a won't-do
    resolution), in progress makes it in progress, to do after a close puts it back.
    """
    if payload.get("webhookEvent") not in ("jira:issue_updated", "jira:issue_created"):
        return f"ignored {payload.get('webhookEvent')}"
    issue = payload.get("issue") or {}
    key = issue.get("key")
    link = session.scalar(
        select(IssueLink).where(IssueLink.tracker == "jira", IssueLink.external_id == key)
    )
    if link is None:
        return f"no item is linked to {key}"
    if not _first_delivery(session, "jira", delivery_id):
        return f"delivery {delivery_id} was already handled"
    fields = issue.get("fields") or {}
    category = ((fields.get("status") or {}).get("statusCategory") or {}).get("key")
    name = (fields.get("status") or {}).get("name", category)
    if category == "done":
        resolution = str((fields.get("resolution") or {}).get("name", "")).lower()
        status = "declined" if resolution in JIRA_DECLINED else "done"
        return _follow(session, link, state=str(name), status=status, actor="jira")
    if category == "indeterminate":
        return _follow(session, link, state=str(name), status="in_progress", actor="jira")
    return _follow(session, link, state=str(name), status=None, actor="jira")
