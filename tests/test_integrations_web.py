"""The dashboard's integrations: the delivery log with "retry now", "create issue" in
GitHub and Jira from an item, and the trackers' signed webhooks moving the item along.

The dashboard commits, so this module has databases of its own (SQLite, PostgreSQL).
GitHub, Jira and the webhook receiver are testkit's local fakes.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import sessionmaker
from starlette.testclient import TestClient

from earshot.feedback import service
from earshot.feedback.schemas import FeedbackIn, FeedbackType
from earshot.integrations.deliverer import Deliverer
from earshot.integrations.signing import hub_signature
from earshot.settings import Settings, load_settings
from earshot.storage.db import engine_for, session_scope
from earshot.storage.models import (
    Feedback,
    FeedbackEvent,
    InboundWebhook,
    IntegrationDelivery,
    IntegrationEvent,
    IssueLink,
    Notification,
    utcnow,
)
from earshot.web.app import create_app
from testkit.trackers import FakeGitHub, FakeJira, Hook
from testkit.webhook_receiver import WebhookReceiver
from tests.conftest import empty_items_and_events

PASSWORD = "correct horse battery staple"
HOOK_SECRET = "whsec-web-0123456789"
GH_SECRET = "gh-hook-secret-0123"
JIRA_SECRET = "jira-hook-secret-0123"
CUSTOMER = "c" * 32


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EARSHOT_CONFIG", str(tmp_path / "none.yml"))
    monkeypatch.setenv("WEB_HOOK_SECRET", HOOK_SECRET)


@dataclass
class Env:
    url: str
    client: TestClient
    settings: Settings
    github: FakeGitHub
    jira: FakeJira
    receiver: WebhookReceiver

    def login(self) -> None:
        r = self.client.get("/login")
        r = self.client.post(
            "/login",
            data={"csrf": csrf(r.text), "user": "admin", "password": PASSWORD, "next": "/"},
        )
        assert r.status_code == 200

    def add(self, text: str = "the bulb drops wifi every night", consent: bool = True) -> str:
        with session_scope(self.url) as s:
            item = FeedbackIn(
                customer_key=CUSTOMER, type=FeedbackType.problem, description=text, consent=consent
            )
            return service.save_feedback(s, item=item, ref_prefix="IW").ref

    def item(self, ref: str) -> Feedback:
        with session_scope(self.url) as s:
            row = s.scalar(select(Feedback).where(Feedback.ref == ref))
            assert row is not None
            s.expunge(row)
            return row

    def notices(self, ref: str) -> list[tuple[str, str]]:
        with session_scope(self.url) as s:
            return [
                (n.customer_key, n.status)
                for n in s.scalars(
                    select(Notification)
                    .join(Feedback, Feedback.id == Notification.feedback_id)
                    .where(Feedback.ref == ref)
                )
            ]

    def status_changes(self, ref: str) -> int:
        with session_scope(self.url) as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(FeedbackEvent)
                    .join(Feedback, Feedback.id == FeedbackEvent.feedback_id)
                    .where(Feedback.ref == ref, FeedbackEvent.field == "status")
                )
                or 0
            )

    def create_issue(self, ref: str, tracker: str) -> str:
        page = self.client.get(f"/items/{ref}")
        assert f"Create {'GitHub' if tracker == 'github' else 'Jira'} issue" in page.text
        r = self.client.post(
            f"/items/{ref}/issue", data={"csrf": csrf(page.text), "tracker": tracker}
        )
        assert r.status_code == 200
        return r.text

    def send(self, path: str, hook: Hook) -> Any:
        return self.client.post(path, content=hook.body, headers=hook.headers)


def csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


@pytest.fixture
def env(committing_db: str) -> Iterator[Env]:
    with (
        FakeGitHub("ghp_test", "lumen/app", GH_SECRET) as github,
        FakeJira("pm@lumen.example", "jira-token", "LUM", JIRA_SECRET) as jira,
        WebhookReceiver(HOOK_SECRET) as receiver,
    ):
        settings = load_settings(
            database_url=committing_db,
            admin_password=PASSWORD,
            earshot_secret="test-secret-0123456789abcdef",
            company={"name": "Test Co", "ref_prefix": "IW"},
            dashboard_url="https://earshot.example",
            integrations_deliverer=False,  # the tests drive the deliverer themselves
            webhooks=[{"name": "crm", "url": receiver.url, "secret_env": "WEB_HOOK_SECRET"}],
            webhook_retry_base_s=0.01,
            webhook_retry_max_s=0.02,
            github_token="ghp_test",
            github_repo="lumen/app",
            github_api_base_url=github.url,
            github_webhook_secret=GH_SECRET,
            jira_base_url=jira.url,
            jira_email="pm@lumen.example",
            jira_api_token="jira-token",
            jira_project="LUM",
            jira_webhook_secret=JIRA_SECRET,
        )
        with TestClient(create_app(settings)) as client:
            yield Env(committing_db, client, settings, github, jira, receiver)
    with session_scope(committing_db) as s:
        for table in (IntegrationEvent, InboundWebhook, Feedback):
            s.execute(delete(table))


def tick(settings: Settings) -> list[Any]:
    d = Deliverer(settings, sessionmaker(engine_for(settings.db_url), expire_on_commit=False))

    async def go() -> list[Any]:
        try:
            return await d.tick()
        finally:
            await d.aclose()

    return asyncio.run(go())


# --- delivery log -----------------------------------------------------------------------------


def test_delivery_log_shows_each_attempt_and_retry_now_sends_again(env: Env) -> None:
    ref = env.add()
    env.receiver.fail_next(500)
    assert [r.outcome for r in tick(env.settings)] == ["retry"]
    env.login()
    page = env.client.get("/integrations?status=pending")
    assert page.status_code == 200
    assert 'data-status="pending"' in page.text and ref in page.text
    assert "HTTP 500" in page.text and "next try" in page.text
    delivery_id = re.search(r'data-testid="delivery" data-id="(\d+)"', page.text)
    assert delivery_id

    # the backoff has the next try later; "retry now" makes it due at once
    with session_scope(env.url) as s:
        for d in s.scalars(select(IntegrationDelivery)):
            d.next_attempt_at = utcnow() + timedelta(hours=1)
    assert tick(env.settings) == []  # nothing due
    r = env.client.post(
        f"/integrations/deliveries/{delivery_id.group(1)}/retry", data={"csrf": csrf(page.text)}
    )
    assert "will be tried again now" in r.text
    assert [r.outcome for r in tick(env.settings)] == ["delivered"]
    assert [x.event["data"]["item"]["ref"] for x in env.receiver.received] == [ref]
    page = env.client.get("/integrations")
    assert 'data-status="delivered"' in page.text
    assert page.text.count("<li>") >= 2  # both attempts listed


def test_delivery_log_needs_a_triager_and_retry_needs_csrf(env: Env) -> None:
    assert env.client.get("/integrations", follow_redirects=False).status_code == 303
    env.login()
    r = env.client.post("/integrations/deliveries/1/retry", data={"csrf": "forged"})
    assert r.status_code == 403


# --- GitHub -------------------------------------------------------------------------------------


def test_github_issue_from_an_item_and_its_close_tells_the_customer_once(env: Env) -> None:
    ref = env.add("Call me on +31 6 12345678, the bulb drops wifi every night")
    env.login()
    page = env.create_issue(ref, "github")
    assert f"Created lumen/app#1 from {ref}" in page
    issue = env.github.issues[1]
    assert ref in issue["title"] and "12345678" not in issue["body"]  # redacted
    assert "drops wifi every night" in issue["body"]
    assert f"https://earshot.example/items/{ref}" in issue["body"]
    assert "Supporters: 1" in issue["body"]
    assert 'href="https://github.com/lumen/app/issues/1"' in page
    assert "Create GitHub issue" not in page  # one issue per tracker

    hook = env.github.close(1)
    r = env.send("/hooks/github", hook)
    assert r.status_code == 200, r.text
    assert env.item(ref).status == "done"
    assert env.notices(ref) == [(CUSTOMER, "done")]
    assert env.send("/hooks/github", hook).json()["result"].endswith("already handled")
    assert env.notices(ref) == [(CUSTOMER, "done")]  # redelivered: told once
    assert env.status_changes(ref) == 1

    env.send("/hooks/github", env.github.reopen(1))
    assert env.item(ref).status == "new"  # back to where it was
    env.send("/hooks/github", env.github.close(1, reason="not_planned"))
    assert env.item(ref).status == "declined"
    with session_scope(env.url) as s:
        link = s.scalar(select(IssueLink))
        assert link is not None and link.state == "closed"


def test_forged_or_unsigned_github_webhooks_are_refused_and_change_nothing(env: Env) -> None:
    ref = env.add()
    env.login()
    env.create_issue(ref, "github")
    hook = env.github.close(1)
    forged = Hook(hook.body, {**hook.headers, "X-Hub-Signature-256": "sha256=" + "0" * 64})
    assert env.send("/hooks/github", forged).status_code == 401
    unsigned = Hook(hook.body, {k: v for k, v in hook.headers.items() if "Signature" not in k})
    assert env.send("/hooks/github", unsigned).status_code == 401
    tampered = Hook(hook.body.replace(b'"completed"', b'"not_planned"'), hook.headers)
    assert env.send("/hooks/github", tampered).status_code == 401
    assert env.item(ref).status == "new" and env.notices(ref) == []


def test_github_refusal_is_shown_and_nothing_is_linked(env: Env) -> None:
    ref = env.add()
    env.login()
    env.github.token = "another-token"  # the configured token was revoked
    page = env.create_issue(ref, "github")
    assert "No issue created: GitHub answered 401: Bad credentials" in page
    with session_scope(env.url) as s:
        assert s.scalar(select(IssueLink)) is None


# --- Jira -------------------------------------------------------------------------------------


def test_jira_issue_from_an_item_follows_its_workflow(env: Env) -> None:
    ref = env.add("The plug forgets its schedule, mail me at jan@example.com")
    env.login()
    page = env.create_issue(ref, "jira")
    assert f"Created LUM-1 from {ref}" in page
    fields = env.jira.issues["LUM-1"]["fields"]
    assert fields["issuetype"] == {"name": "Task"} and ref in fields["summary"]
    description = str(fields["description"])
    assert "jan@example.com" not in description and "forgets its schedule" in description
    assert f"https://earshot.example/items/{ref}" in description
    assert f'href="{env.jira.url}/browse/LUM-1"' in page

    env.send(
        "/hooks/jira", env.jira.transition("LUM-1", category="indeterminate", status="In Progress")
    )
    assert env.item(ref).status == "in_progress"
    done = env.jira.transition("LUM-1", category="done", status="Done", resolution="Done")
    assert env.send("/hooks/jira", done).status_code == 200
    assert env.send("/hooks/jira", done).json()["result"].endswith("already handled")
    assert env.item(ref).status == "done"
    assert env.notices(ref) == [(CUSTOMER, "done")]
    env.send("/hooks/jira", env.jira.transition("LUM-1", category="new", status="Reopened"))
    assert env.item(ref).status == "in_progress"


def test_forged_jira_webhooks_are_refused(env: Env) -> None:
    ref = env.add()
    env.login()
    env.create_issue(ref, "jira")
    hook = env.jira.transition("LUM-1", category="done", status="Done")
    forged = Hook(hook.body, {**hook.headers, "X-Hub-Signature": "sha256=" + "1" * 64})
    assert env.send("/hooks/jira", forged).status_code == 401
    assert (
        env.send("/hooks/jira", Hook(hook.body, {"Content-Type": "application/json"})).status_code
        == 401
    )
    assert env.item(ref).status == "new" and env.notices(ref) == []


def test_fake_jira_refuses_what_jira_refuses(env: Env) -> None:
    import httpx

    auth = ("pm@lumen.example", "jira-token")
    url = f"{env.jira.url}/rest/api/3/issue"
    bad_adf = {"type": "doc", "version": 1, "content": [{"type": "text", "text": "loose"}]}
    fields = {"project": {"key": "LUM"}, "summary": "x", "issuetype": {"name": "Task"}}
    assert (
        httpx.post(url, json={"fields": fields}, auth=("pm@lumen.example", "wrong")).status_code
        == 401
    )
    r = httpx.post(url, json={"fields": {**fields, "description": bad_adf}}, auth=auth)
    assert r.status_code == 400 and "description" in r.json()["errors"]
    r = httpx.post(url, json={"fields": {**fields, "project": {"key": "NOPE"}}}, auth=auth)
    assert r.status_code == 400 and "project" in r.json()["errors"]


def test_large_github_payloads_pass_the_body_cap_only_on_the_hook_path(env: Env) -> None:
    ref = env.add()
    env.login()
    env.create_issue(ref, "github")
    hook = env.github.close(1)
    doc = hook.json()
    doc["repository"]["description"] = "x" * 40_000  # real issue events run to ~20-30 KB
    body = json.dumps(doc).encode()
    headers = {**hook.headers, "X-Hub-Signature-256": hub_signature(GH_SECRET, body)}
    assert env.send("/hooks/github", Hook(body, headers)).status_code == 200
    assert env.item(ref).status == "done"
    assert env.client.post("/chat/send", content=b"x" * 40_000).status_code == 413


def test_the_dashboard_delivers_in_its_background(committing_db: str) -> None:
    with WebhookReceiver(HOOK_SECRET) as receiver:
        settings = load_settings(
            database_url=committing_db,
            admin_password=PASSWORD,
            earshot_secret="test-secret-0123456789abcdef",
            webhooks=[{"name": "crm", "url": receiver.url, "secret_env": "WEB_HOOK_SECRET"}],
            webhook_poll_s=0.05,
        )
        with TestClient(create_app(settings)) as client:
            assert client.get("/healthz").status_code == 200
            with session_scope(committing_db) as s:
                item = FeedbackIn(description="the doorbell rings twice", type=FeedbackType.problem)
                ref = service.save_feedback(s, item=item, ref_prefix="IW").ref
            for _ in range(200):
                if receiver.received:
                    break
                time.sleep(0.05)
        assert [r.event["data"]["item"]["ref"] for r in receiver.received] == [ref]
    empty_items_and_events(committing_db)
