"""Fake GitHub and Jira Cloud APIs for "create issue from this item" and their signed
webhooks back.

FakeGitHub: POST /repos/{owner}/{repo}/issues with Bearer token and X-GitHub-Api-Version,
title required (422 otherwise), answering issue JSON with html_url; `close`/`reopen` make
the `issues` webhook GitHub would send (X-Hub-Signature-256, X-GitHub-Delivery).
FakeJira: POST /rest/api/3/issue with basic auth (e-mail + API token), project, summary,
issue type and an Atlassian Document Format description checked node by node, answering
{id, key, self}; `transition` makes the jira:issue_updated webhook of an admin webhook with
a secret (X-Hub-Signature, X-Atlassian-Webhook-Identifier).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from earshot.integrations.signing import hub_signature
from testkit.fakehttp import FakeHTTP, Reply, Request, json_reply


@dataclass(frozen=True)
class Hook:
    """A webhook as the tracker sends it: raw body and headers (send it again to redeliver)."""

    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


Sender = Callable[[Hook], Any]


class FakeGitHub(FakeHTTP):
    API_VERSIONS = ("2022-11-28",)

    def __init__(self, token: str, repo: str, webhook_secret: str) -> None:
        super().__init__()
        self.token = token
        self.repo = repo
        self.webhook_secret = webhook_secret
        self.issues: dict[int, dict[str, Any]] = {}

    def handle(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return json_reply(401, {"message": "Bad credentials", "status": "401"})
        version = request.headers.get("x-github-api-version")
        if version is not None and version not in self.API_VERSIONS:
            return json_reply(
                400, {"message": f"Unsupported 'X-GitHub-Api-Version' header {version}"}
            )
        if request.method != "POST" or request.path != f"/repos/{self.repo}/issues":
            return json_reply(404, {"message": "Not Found", "status": "404"})
        try:
            body = request.json()
        except ValueError:
            return json_reply(400, {"message": "Problems parsing JSON"})
        title = body.get("title") if isinstance(body, dict) else None
        if not isinstance(title, str) or not title.strip():
            error = {"resource": "Issue", "code": "missing_field", "field": "title"}
            return json_reply(422, {"message": "Validation Failed", "errors": [error]})
        with self.lock:
            number = len(self.issues) + 1
            issue = {
                "id": 1000 + number,
                "number": number,
                "title": title,
                "body": body.get("body"),
                "state": "open",
                "state_reason": None,
                "html_url": f"https://github.com/{self.repo}/issues/{number}",
                "url": f"https://api.github.com/repos/{self.repo}/issues/{number}",
            }
            self.issues[number] = issue
        return json_reply(201, issue)

    def _hook(self, number: int, action: str) -> Hook:
        owner, name = self.repo.split("/")
        payload = {
            "action": action,
            "issue": self.issues[number],
            "repository": {"full_name": self.repo, "name": name, "owner": {"login": owner}},
            "sender": {"login": "octocat"},
        }
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "issues",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": hub_signature(self.webhook_secret, body),
            "User-Agent": "GitHub-Hookshot/fake",
        }
        return Hook(body, headers)

    def close(self, number: int, reason: str = "completed") -> Hook:
        """Close the issue (completed or not_planned); the webhook GitHub would send."""
        self.issues[number].update(state="closed", state_reason=reason)
        return self._hook(number, "closed")

    def reopen(self, number: int) -> Hook:
        self.issues[number].update(state="open", state_reason="reopened")
        return self._hook(number, "reopened")


ADF_BLOCKS = {
    "paragraph",
    "blockquote",
    "bulletList",
    "orderedList",
    "listItem",
    "heading",
    "codeBlock",
    "rule",
}
ADF_INLINE = {"text", "hardBreak", "mention", "emoji", "inlineCard"}
ADF_MARKS = {"link", "strong", "em", "code", "strike", "underline"}


def adf_errors(doc: Any) -> list[str]:
    """What Jira would refuse in an ADF document (empty when fine)."""
    if not isinstance(doc, dict) or doc.get("type") != "doc" or doc.get("version") != 1:
        return ["description: must be an ADF doc with version 1"]
    errors: list[str] = []

    def walk(node: Any, where: str) -> None:
        if not isinstance(node, dict) or "type" not in node:
            errors.append(f"{where}: not a node")
            return
        kind = node["type"]
        if kind == "text":
            if not isinstance(node.get("text"), str) or not node["text"]:
                errors.append(f"{where}: text nodes need non-empty text")
            for m in node.get("marks", []):
                if m.get("type") not in ADF_MARKS:
                    errors.append(f"{where}: unknown mark {m.get('type')}")
                if m.get("type") == "link" and not (m.get("attrs") or {}).get("href"):
                    errors.append(f"{where}: link without href")
            return
        if kind not in ADF_BLOCKS | ADF_INLINE:
            errors.append(f"{where}: unknown node type {kind}")
            return
        for i, child in enumerate(node.get("content", [])):
            walk(child, f"{where}.content[{i}]")

    content = doc.get("content")
    if not isinstance(content, list):
        return ["description: content must be a list"]
    for i, node in enumerate(content):
        if isinstance(node, dict) and node.get("type") in ADF_INLINE:
            errors.append(f"content[{i}]: inline node at the top level")
        walk(node, f"content[{i}]")
    return errors


class FakeJira(FakeHTTP):
    def __init__(self, email: str, token: str, project: str, webhook_secret: str) -> None:
        super().__init__()
        self.email, self.token, self.project = email, token, project
        self.webhook_secret = webhook_secret
        self.issues: dict[str, dict[str, Any]] = {}

    def handle(self, request: Request) -> Reply:
        expected = "Basic " + base64.b64encode(f"{self.email}:{self.token}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return (
                401,
                {"Content-Type": "text/plain"},
                b"Client must be authenticated to access this resource.",
            )
        if request.method != "POST" or request.path != "/rest/api/3/issue":
            return json_reply(404, {"errorMessages": ["Not found"], "errors": {}})
        try:
            fields = request.json()["fields"]
        except (ValueError, KeyError, TypeError):
            return json_reply(400, {"errorMessages": ["Unexpected body"], "errors": {}})
        errors: dict[str, str] = {}
        if (fields.get("project") or {}).get("key") != self.project:
            errors["project"] = "valid project is required"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        elif len(summary) > 255 or "\n" in summary:
            errors["summary"] = "Summary must be less than 255 characters and one line."
        if not (fields.get("issuetype") or {}).get("name") and not (
            fields.get("issuetype") or {}
        ).get("id"):
            errors["issuetype"] = "Specify an issue type"
        if "description" in fields:
            problems = adf_errors(fields["description"])
            if problems:
                errors["description"] = (
                    "Operation value must be an Atlassian Document: " + "; ".join(problems)
                )
        if errors:
            return json_reply(400, {"errorMessages": [], "errors": errors})
        with self.lock:
            n = len(self.issues) + 1
            key = f"{self.project}-{n}"
            self.issues[key] = {"id": str(10000 + n), "key": key, "fields": fields}
        return json_reply(
            201,
            {"id": str(10000 + n), "key": key, "self": f"{self.url}/rest/api/3/issue/{10000 + n}"},
        )

    def transition(
        self, key: str, *, category: str, status: str, resolution: str | None = None
    ) -> Hook:
        """Move the issue to `status` (category new, indeterminate or done); the webhook."""
        issue = self.issues[key]
        payload = {
            "timestamp": int(time.time() * 1000),
            "webhookEvent": "jira:issue_updated",
            "issue_event_type_name": "issue_generic",
            "issue": {
                "id": issue["id"],
                "key": key,
                "self": f"{self.url}/rest/api/3/issue/{issue['id']}",
                "fields": {
                    "summary": issue["fields"]["summary"],
                    "status": {"name": status, "statusCategory": {"key": category}},
                    "resolution": {"name": resolution} if resolution else None,
                },
            },
            "changelog": {"items": [{"field": "status", "toString": status}]},
        }
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Atlassian-Webhook-Identifier": str(uuid.uuid4()),
            "X-Hub-Signature": hub_signature(self.webhook_secret, body),
        }
        return Hook(body, headers)
