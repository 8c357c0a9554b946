"""The review dashboard over HTTP: login, CSRF, inbox filters, triage, exports, web chat.

The app commits, so this module gets databases of its own (SQLite and PostgreSQL), and
each test works on items with a reference prefix of its own.
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import sessionmaker
from starlette.testclient import TestClient

from earshot.accounts import service as accounts
from earshot.feedback import inbox
from earshot.feedback import queries as feedback_queries
from earshot.feedback.schemas import FeedbackIn
from earshot.insights.export import ExportFilter
from earshot.privacy.identity import user_key
from earshot.settings import ConfigError, Settings, load_settings
from earshot.storage.db import make_engine, session_scope
from earshot.storage.models import (
    AskLog,
    CallbackPayload,
    Feedback,
    FeedbackEvent,
    Notification,
    ServiceRating,
    Supporter,
)
from earshot.web import charts, security
from earshot.web.app import create_app
from earshot.web.exporting import CHUNK, stream_export

PASSWORD = "correct horse battery staple"
SECRET = "test-secret-0123456789abcdef"
NOW = datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def web_db(committing_db: str) -> str:
    """A migrated database of this module's own: the dashboard commits."""
    return committing_db


def make_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "admin_password": PASSWORD,
        "earshot_secret": SECRET,
        "company": {"name": "Test Co", "ref_prefix": "TW"},
        "products": [
            {"key": "bulb", "name": "Lumen Bulb"},
            {"key": "app", "name": "Lumen app"},
        ],
        "languages": ["en", "nl"],
        "default_language": "en",
        "rasa_url": "http://rasa.test",
    }
    values.update(overrides)
    return load_settings(**values)


@dataclass
class FakeRasa:
    """Answers like Rasa's earshot channel; records what it was sent."""

    received: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/webhooks/earshot/webhook"
        body = json.loads(request.content)
        self.received.append(body)
        if self.status != 200:
            return httpx.Response(self.status, json={"error": "down"})
        return httpx.Response(
            200,
            json=[
                {"recipient_id": body["sender"], "text": f"You said: {body['message']}"},
                {
                    "recipient_id": body["sender"],
                    "text": "Did that help?",
                    "buttons": [
                        {"title": "Yes", "payload": '/rate{"helpful": true}'},
                        {"title": "No", "payload": '/rate{"helpful": false}'},
                        {"title": "Website", "payload": "https://example.com/help"},
                    ],
                },
            ],
        )


@dataclass
class Web:
    url: str
    client: TestClient
    rasa: FakeRasa
    prefix: str

    def add(self, *, at: datetime | None = None, **fields: Any) -> str:
        orm = {k: fields.pop(k) for k in ("status", "supporters", "tags") if k in fields}
        fields.setdefault("description", "please add a dark mode")
        with session_scope(self.url) as s:
            row = feedback_queries.create_feedback(
                s, item=FeedbackIn(**fields), ref_prefix=self.prefix
            )
            if at is not None:
                row.created_at = at
            for k, v in orm.items():
                setattr(row, k, v)
            return row.ref

    def item(self, ref: str) -> Feedback:
        with session_scope(self.url) as s:
            row = s.scalar(select(Feedback).where(Feedback.ref == ref))
            assert row is not None
            s.expunge(row)
            return row

    def login(self, user: str = "admin", role: str = "triager") -> None:
        """Sign in: as ADMIN_PASSWORD's admin, or as a dashboard user made here."""
        if user != "admin":
            with session_scope(self.url) as s:
                if accounts.get_user(s, user) is None:
                    accounts.add_user(s, name=user, role=role, password=PASSWORD)
        r = self.client.get("/login")
        r = self.client.post(
            "/login",
            data={"csrf": csrf(r.text), "user": user, "password": PASSWORD, "next": "/"},
        )
        assert r.status_code == 200 and "Inbox" in r.text

    def csrf(self, path: str = "/") -> str:
        return csrf(self.client.get(path).text)


def csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html) or re.search(
        r'name="csrf-token" content="([^"]+)"', html
    )
    assert m, "no CSRF token on the page"
    return m.group(1)


def refs_on(html: str) -> list[str]:
    return re.findall(r'data-ref="([^"]+)"', html)


_PREFIXES = iter(f"{a}{b}" for a in "BCDGHJKMNPQRSVXZ" for b in "BCDGHJKMNPQRSVXZ")


@pytest.fixture
def web(web_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Web]:
    monkeypatch.chdir(tmp_path)  # no stray .env or config.yml
    monkeypatch.setenv("EARSHOT_CONFIG", str(tmp_path / "none.yml"))
    rasa = FakeRasa()
    app = create_app(make_settings(web_db), rasa_transport=httpx.MockTransport(rasa.handler))
    prefix = "W" + next(_PREFIXES)
    with TestClient(app) as client:
        yield Web(web_db, client, rasa, prefix)
    with session_scope(web_db) as s:  # leave the module's database as we found it
        s.execute(delete(Feedback).where(Feedback.ref.like(f"{prefix}-%")))
        s.execute(delete(CallbackPayload))
        s.execute(delete(AskLog))
        s.execute(delete(ServiceRating))


# --- login and security -------------------------------------------------------------------


def test_pages_need_login(web: Web) -> None:
    ref = web.add()
    for path in ("/", f"/items/{ref}", "/overview", "/export.csv", "/export.xlsx"):
        r = web.client.get(path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login?next="), path
    r = web.client.post(f"/items/{ref}/status", data={"status": "done"}, follow_redirects=False)
    assert r.status_code in (303, 403)
    assert web.item(ref).status == "new"
    # The login page sends you back where you were going.
    r = web.client.get(f"/items/{ref}")
    assert r.url.path == "/login"
    r = web.client.post(
        "/login",
        data={"csrf": csrf(r.text), "user": "admin", "password": PASSWORD, "next": f"/items/{ref}"},
    )
    assert r.url.path == f"/items/{ref}" and ref in r.text


def test_wrong_password_is_rejected_and_failures_are_rate_limited(web: Web) -> None:
    token = web.csrf("/login")
    for _ in range(security.RateLimiter(5).limit):
        r = web.client.post("/login", data={"csrf": token, "user": "x", "password": "nope"})
        assert r.status_code == 401 and "Wrong name or password" in r.text
    r = web.client.get("/", follow_redirects=False)
    assert r.status_code == 303
    # Locked out for now, even with the right password.
    r = web.client.post("/login", data={"csrf": token, "user": "x", "password": PASSWORD})
    assert r.status_code == 429 and "Too many failed attempts" in r.text
    assert int(r.headers["retry-after"]) > 0
    assert web.client.get("/", follow_redirects=False).status_code == 303


def test_open_redirect_is_refused(web: Web) -> None:
    token = web.csrf("/login")
    r = web.client.post(
        "/login",
        data={"csrf": token, "user": "admin", "password": PASSWORD, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_csrf_is_required_on_every_post(web: Web) -> None:
    ref = web.add()
    r = web.client.post("/login", data={"user": "ann", "password": PASSWORD})
    assert r.status_code == 403
    web.login()
    for path, data in [
        (f"/items/{ref}/status", {"status": "planned"}),
        (f"/items/{ref}/tags", {"tag": "x"}),
        (f"/items/{ref}/notes", {"note": "x"}),
        (f"/items/{ref}/merge", {"into": ref}),
        ("/logout", {}),
    ]:
        assert web.client.post(path, data=data).status_code == 403, path
        bad = {**data, "csrf": "forged-token-" + "x" * 30}
        assert web.client.post(path, data=bad).status_code == 403, path
    item = web.item(ref)
    assert item.status == "new" and item.tags == []
    assert web.client.get("/", follow_redirects=False).status_code == 200  # still logged in


def test_cookies_and_headers(web: Web, web_db: str) -> None:
    r = web.client.get("/login")
    cookie = r.headers["set-cookie"].lower()
    assert "earshot_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # plain http in development
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    # Over https (e.g. behind a TLS proxy) the cookie is Secure.
    app = create_app(make_settings(web_db))
    with TestClient(app, base_url="https://testserver") as client:
        assert "secure" in client.get("/login").headers["set-cookie"].lower()


def test_without_password_dashboard_is_locked_in_dev_and_refused_in_production(
    web_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EARSHOT_CONFIG", str(tmp_path / "none.yml"))
    app = create_app(make_settings(web_db, admin_password=None))
    with TestClient(app) as client:
        for path in ("/", "/login", "/overview"):
            r = client.get(path)
            assert r.status_code == 503 and "Set ADMIN_PASSWORD" in r.text
        assert client.get("/chat").status_code == 200  # the customer channel still works
    prod = make_settings(web_db, admin_password=None, environment="production", rasa_token="r" * 20)
    with pytest.raises(ConfigError, match="ADMIN_PASSWORD"):
        create_app(prod)
    prod_ok = make_settings(web_db, environment="production", rasa_token="r" * 20)
    with TestClient(create_app(prod_ok)) as client:
        assert "secure" in client.get("/login").headers["set-cookie"].lower()


# --- inbox -------------------------------------------------------------------------------


def test_inbox_filters_sorting_and_search(web: Web) -> None:
    old = NOW - timedelta(days=40)
    a = web.add(product="bulb", type="idea", description="dimmer schedule please", supporters=5)
    b = web.add(product="app", type="problem", description="app crashes on login", language="nl")
    c = web.add(product="app", type="idea", description="widget for the dimmer", at=old)
    d = web.add(type="complaint", description="support was slow", status="planned")
    web.login()

    def inbox(**params: str) -> list[str]:
        r = web.client.get("/", params=params)
        assert r.status_code == 200
        return [x for x in refs_on(r.text) if x.startswith(web.prefix)]

    assert inbox() == [d, b, a, c]  # newest first
    assert inbox(sort="supporters")[0] == a
    assert inbox(product="app") == [b, c]
    assert inbox(product="none") == [d]
    assert inbox(type="idea") == [a, c]
    assert inbox(status="planned") == [d]
    assert inbox(language="nl") == [b]
    assert inbox(q="DIMMER") == [a, c]
    assert inbox(q=b) == [b]  # a ref finds its item
    assert inbox(q="100%_") == []  # LIKE wildcards are literal
    since = (NOW - timedelta(days=2)).date().isoformat()
    assert c not in inbox(since=since)
    until = (old + timedelta(days=1)).date().isoformat()
    assert inbox(until=until) == [c]
    assert inbox(product="app", type="idea") == [c]
    assert inbox(product="nonsense") == [d, b, a, c]  # unknown values are ignored


def test_inbox_pages_with_keyset_cursors(web: Web) -> None:
    refs = [web.add(description=f"pagination item {i}", supporters=1 + i % 3) for i in range(7)]
    with session_scope(web.url) as s:
        for sort in inbox.SORTS:
            f = inbox.InboxFilter(q="pagination item", sort=sort)
            seen: list[str] = []
            page = inbox.inbox_page(s, f, page_size=3)
            pages = [page]
            while page.next_cursor:
                page = inbox.inbox_page(s, f, after=page.next_cursor, page_size=3)
                pages.append(page)
            seen = [i.ref for p in pages for i in p.items]
            assert sorted(seen) == sorted(refs) and len(seen) == 7 and pages[0].total == 7
            assert [len(p.items) for p in pages] == [3, 3, 1]
            assert pages[0].prev_cursor is None and pages[1].prev_cursor
            back = inbox.inbox_page(s, f, before=pages[2].prev_cursor or "", page_size=3)
            assert [i.ref for i in back.items] == [i.ref for i in pages[1].items]
    web.login()
    r = web.client.get("/", params={"q": "pagination item"})
    assert "Next →" not in r.text  # 7 items fit on one page of 25


# --- item and triage ----------------------------------------------------------------------


def test_item_page_shows_details_and_similar_items(web: Web) -> None:
    ref = web.add(
        product="bulb",
        type="idea",
        description="Let the bulb dim slowly at sunset",
        benefit="Falling asleep is easier",
        frequency="daily",
        importance="important",
        sentiment=0.4,
    )
    twin = web.add(product="bulb", description="bulb should dim slowly in the evening at sunset")
    other = web.add(product="app", description="bulb dim slowly sunset")  # another product
    web.login()
    r = web.client.get(f"/items/{ref}")
    assert r.status_code == 200
    for text in ("Let the bulb dim slowly at sunset", "Falling asleep is easier", "daily", "+0.40"):
        assert text in r.text
    assert twin in r.text and other not in r.text
    assert web.client.get(f"/items/{web.prefix}-NONE").status_code == 404


def test_status_change_writes_history_and_notifies_consenting_author(web: Web) -> None:
    ref = web.add(customer_key="c" * 32, consent=True)
    silent = web.add(customer_key="d" * 32, consent=False)
    web.login("ann")
    token = web.csrf(f"/items/{ref}")
    r = web.client.post(
        f"/items/{ref}/status", data={"csrf": token, "status": "planned", "note": "Q3 roadmap"}
    )
    assert r.status_code == 200 and f"{ref} is now planned" in r.text
    assert "Q3 roadmap" in r.text and "ann" in r.text
    web.client.post(f"/items/{silent}/status", data={"csrf": token, "status": "planned"})
    with session_scope(web.url) as s:
        item = s.scalar(select(Feedback).where(Feedback.ref == ref))
        assert item is not None and item.status == "planned"
        ev = s.scalars(select(FeedbackEvent).where(FeedbackEvent.feedback_id == item.id)).one()
        assert (ev.actor, ev.field, ev.old_value, ev.new_value, ev.note) == (
            "ann",
            "status",
            "new",
            "planned",
            "Q3 roadmap",
        )
        notes = s.scalars(select(Notification).where(Notification.feedback_id == item.id)).all()
        assert [(n.customer_key, n.status, n.sent_at) for n in notes] == [
            ("c" * 32, "planned", None)
        ]
        quiet = s.scalar(select(Feedback.id).where(Feedback.ref == silent))
        assert s.scalars(select(Notification).where(Notification.feedback_id == quiet)).all() == []
    # A bad status is a message, not a crash.
    r = web.client.post(f"/items/{ref}/status", data={"csrf": token, "status": "shipped"})
    assert r.status_code == 200 and "unknown status" in r.text


def test_tags_and_notes(web: Web) -> None:
    ref = web.add()
    web.login("bob")
    token = web.csrf(f"/items/{ref}")
    web.client.post(f"/items/{ref}/tags", data={"csrf": token, "tag": "Night Mode"})
    web.client.post(f"/items/{ref}/notes", data={"csrf": token, "note": "ask the firmware team"})
    assert web.item(ref).tags == ["night mode"]
    r = web.client.post(
        f"/items/{ref}/tags", data={"csrf": token, "tag": "night mode", "remove": "1"}
    )
    assert "removed" in r.text and "ask the firmware team" in r.text
    assert web.item(ref).tags == []
    with session_scope(web.url) as s:
        fid = s.scalar(select(Feedback.id).where(Feedback.ref == ref))
        events = s.scalars(select(FeedbackEvent).where(FeedbackEvent.feedback_id == fid)).all()
        assert {(e.actor, e.field) for e in events} == {("bob", "tag"), ("bob", "note")}


def test_merge(web: Web) -> None:
    original = web.add(customer_key="o" * 32, description="export to csv")
    dup = web.add(customer_key="p" * 32, description="csv export please")
    web.login()
    token = web.csrf(f"/items/{dup}")
    r = web.client.post(f"/items/{dup}/merge", data={"csrf": token, "into": original.lower()})
    assert r.url.path == f"/items/{original}"
    assert f"{dup} merged into {original} (2 supporters)" in r.text
    assert web.item(dup).status == "duplicate"
    assert web.item(original).supporters == 2
    with session_scope(web.url) as s:
        oid = s.scalar(select(Feedback.id).where(Feedback.ref == original))
        keys = s.scalars(select(Supporter.customer_key).where(Supporter.feedback_id == oid))
        assert list(keys) == ["p" * 32]
    r = web.client.post(f"/items/{original}/merge", data={"csrf": token, "into": original})
    assert "cannot merge" in r.text


# --- overview -------------------------------------------------------------------------------


def test_overview_renders_svg_charts(web: Web) -> None:
    ref = web.add(product="bulb", type="idea", sentiment=0.5, supporters=3)
    web.add(product="bulb", type="problem", sentiment=-0.5, at=NOW - timedelta(days=10))
    with session_scope(web.url) as s:
        for helpful in (True, True, False):
            s.add(ServiceRating(topic="reset_bulb", helpful=helpful, customer_key="k"))
        s.add(AskLog(customer_key="k", trigger="after_service", outcome="answered"))
        s.add(AskLog(customer_key="k2", trigger="after_service", outcome="ignored"))
        s.add(AskLog(customer_key="k3", trigger="campaign", outcome="asked"))  # still open
    web.login()
    r = web.client.get("/overview", params={"days": "30"})
    assert r.status_code == 200
    assert r.text.count('<svg class="chart"') == 7
    assert "67%" in r.text  # CSAT: 2 of 3 helpful
    assert "50%" in r.text and "1 of 2" in r.text  # response rate after_service
    assert "campaign" not in r.text.split("Response rate by ask trigger")[1]
    assert f'href="/items/{ref}"' in r.text and "Lumen Bulb" in r.text
    assert "<script" not in r.text


def test_charts_escape_labels_and_handle_no_data() -> None:
    svg = charts.hbars([charts.Bar("<b>&", 3)], label="x")
    assert "<b>" not in svg and "&lt;b&gt;&amp;" in svg
    assert "No data" in charts.stacked_bars([], [], label="x")
    assert "No data" in charts.lines(["a"], [charts.Series("s", [None])], label="x", lo=0, hi=1)
    line = charts.lines(
        ["a", "b", "c", "d"], [charts.Series("s", [0.1, None, 0.3, 0.4])], label="x", lo=0, hi=1
    )
    assert line.count("<polyline") == 1 and line.count("<circle") == 3


# --- export ---------------------------------------------------------------------------------


def test_each_export_format_downloads_and_parses_with_the_filters(web: Web) -> None:
    idea = web.add(product="bulb", type="idea", description="=HYPERLINK(1)", supporters=2)
    web.add(product="app", type="problem", description="crash")
    web.login()
    params = {"product": "bulb", "type": "idea"}

    r = web.client.get("/export.csv", params=params)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert (
        "attachment" in r.headers["content-disposition"]
        and ".csv" in r.headers["content-disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row["ref"] for row in rows] == [idea]
    assert rows[0]["description"] == "'=HYPERLINK(1)" and rows[0]["supporters"] == "2"

    r = web.client.get("/export.jsonl", params=params)
    lines = [json.loads(line) for line in r.content.decode().splitlines()]
    assert [x["ref"] for x in lines] == [idea] and lines[0]["product"] == "bulb"

    from openpyxl import load_workbook

    r = web.client.get("/export.xlsx", params=params)
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(r.content), read_only=True)["feedback"]
    values = [list(row) for row in ws.iter_rows(values_only=True)]
    assert values[0][0] == "ref" and [v[0] for v in values[1:]] == [idea]

    assert web.client.get("/export.pdf").status_code == 404


def test_large_export_streams_in_chunks_and_stops_when_abandoned(web: Web) -> None:
    rows = [
        {
            "ref": f"{web.prefix}-{i:05d}",
            "channel": "web",
            "source": "chat",
            "product": "app",
            "type": "idea",
            "category": "innovation",
            "description": f"bulk row {i} " + "x" * 200,
            "created_at": NOW,
            "updated_at": NOW,
        }
        for i in range(1500)
    ]
    with session_scope(web.url) as s:
        s.execute(insert(Feedback), rows)
    engine = make_engine(web.url)
    factory = sessionmaker(engine)
    filters = ExportFilter(product=["app"])

    async def collect(limit: int | None) -> list[bytes]:
        body = await stream_export(factory, fmt="jsonl", filters=filters)
        chunks: list[bytes] = []
        async for chunk in body:
            chunks.append(chunk)
            if limit and len(chunks) >= limit:
                break
        await body.aclose()  # type: ignore[attr-defined]
        return chunks

    chunks = anyio.run(collect, None)
    assert len(chunks) > 1 and all(len(c) <= CHUNK for c in chunks)
    assert len(b"".join(chunks).splitlines()) == 1500
    # A download that stops early stops the export thread too.
    assert len(anyio.run(collect, 1)) == 1
    deadline = time.monotonic() + 10
    while any(t.name == "earshot-export" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "export thread still running"
        time.sleep(0.05)
    engine.dispose()


# --- web chat -------------------------------------------------------------------------------


def test_chat_relays_to_rasa_with_a_pseudonymous_sender(web: Web) -> None:
    r = web.client.get("/chat")
    assert r.status_code == 200 and "chat.js" in r.text
    cookie = web.client.cookies["earshot_chat"]
    token = csrf(r.text)
    headers = {"X-CSRF-Token": token}

    r = web.client.post("/chat/send", json={"message": "hello", "language": "nl"}, headers=headers)
    assert r.status_code == 200
    sent = web.rasa.received[-1]
    assert sent["sender"] == user_key(SECRET, "web", cookie) and cookie not in json.dumps(sent)
    assert sent["message"] == "hello"
    assert sent["metadata"]["channel"] == "web" and sent["metadata"]["language"] == "nl"
    messages = r.json()["messages"]
    assert messages[0]["text"] == "You said: hello"
    buttons = messages[1]["buttons"]
    assert [b["title"] for b in buttons] == ["Yes", "No", "Website"]
    assert buttons[2] == {"title": "Website", "url": "https://example.com/help"}
    assert "payload" not in json.dumps(messages)  # payloads stay server-side

    r = web.client.post("/chat/send", json={"button": buttons[1]["id"]}, headers=headers)
    assert web.rasa.received[-1]["message"] == '/rate{"helpful": false}'
    assert web.rasa.received[-1]["metadata"]["language"] == "en"

    r = web.client.post("/chat/send", json={"button": "forged:0"}, headers=headers)
    assert "expired" in r.json()["messages"][0]["text"]
    r = web.client.post("/chat/send", json={"message": "/help"}, headers=headers)
    assert web.rasa.received[-1]["message"] == "/help"
    n = len(web.rasa.received)
    r = web.client.post("/chat/send", json={"message": '/rate{"x": 1}'}, headers=headers)
    assert "don't know that command" in r.json()["messages"][0]["text"]
    assert len(web.rasa.received) == n  # intents cannot be typed in

    # Someone else's browser cannot press this browser's buttons.
    other = TestClient(web.client.app)
    other_token = csrf(other.get("/chat").text)
    r = other.post(
        "/chat/send", json={"button": buttons[0]["id"]}, headers={"X-CSRF-Token": other_token}
    )
    assert "expired" in r.json()["messages"][0]["text"]


def test_chat_needs_csrf_and_is_rate_limited(web: Web) -> None:
    web.client.get("/chat")
    assert web.client.post("/chat/send", json={"message": "hi"}).status_code == 403
    r = web.client.post("/chat/send", json={"message": "hi"}, headers={"X-CSRF-Token": "nope"})
    assert r.status_code == 403
    assert web.rasa.received == []
    token = csrf(web.client.get("/chat").text)
    codes = [
        web.client.post(
            "/chat/send", json={"message": f"hi {i}"}, headers={"X-CSRF-Token": token}
        ).status_code
        for i in range(25)
    ]
    assert codes.count(200) == 20 and codes[-1] == 429


def test_chat_says_so_when_rasa_is_down(web: Web) -> None:
    web.rasa.status = 503
    token = csrf(web.client.get("/chat").text)
    r = web.client.post("/chat/send", json={"message": "hi"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 503 and "can't answer right now" in r.json()["messages"][0]["text"]


def test_rate_limiter_window() -> None:
    rl = security.RateLimiter(2, window=60.0)
    assert rl.hit("a", now=0) and rl.hit("a", now=1) and not rl.hit("a", now=2)
    assert rl.blocked("a", now=30) and rl.retry_after("a", now=30) == 30
    assert not rl.blocked("a", now=60.5) and rl.hit("b", now=2)
    assert security.password_ok("pw", "pw") and not security.password_ok("pw", "pw ")
    assert security.clean_user(" <Ann> ") == "Ann" and security.clean_user("") == "admin"


def test_cli_registers_web_command() -> None:
    import argparse

    from earshot.cli.web import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["web", "--port", "8123"])
    assert (args.host, args.port, args.fn.__name__) == ("127.0.0.1", 8123, "cmd_web")


def test_chat_speaks_the_visitors_language_and_switches_on_request(web: Web) -> None:
    page = web.client.get("/chat", headers={"Accept-Language": "nl-BE,nl;q=0.9,en;q=0.5"})
    assert "Chat met ons" in page.text and 'placeholder="Typ een bericht…"' in page.text
    assert "Nederlands" in page.text and "English" in page.text
    headers = {"X-CSRF-Token": csrf(page.text)}
    r = web.client.post(
        "/chat/send", json={"message": "/nosuchcommand", "language": "nl"}, headers=headers
    )
    assert "Dat commando ken ik niet" in r.json()["messages"][0]["text"]
    r = web.client.post(
        "/chat/send", json={"message": "/language en", "language": "nl"}, headers=headers
    )
    assert r.json()["language"] == "en"  # the page switches its picker
    sent = web.rasa.received[-1]
    assert sent["message"] == '/set_language{"language": "en"}'
    assert sent["metadata"]["language"] == "en"
    english = web.client.get("/chat", headers={"Accept-Language": "en-GB"})
    assert "Chat with us" in english.text


# --- campaigns ------------------------------------------------------------------------------


def test_the_campaigns_page_counts_skipped_sends_and_whatsapp_deliveries(
    web_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from earshot.conversations import whatsapp as wa_queries
    from earshot.storage.models import CampaignSend

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EARSHOT_CONFIG", str(tmp_path / "none.yml"))
    settings = make_settings(
        web_db,
        campaigns=[{"id": "spring-wa", "question": {"en": "How is spring?"}}],
        whatsapp={"number": "31201234567"},
    )
    with session_scope(web_db) as s:
        s.add(CampaignSend(campaign_id="spring-wa", customer_key="k-sent", status="sent"))
        s.add(
            CampaignSend(
                campaign_id="spring-wa",
                customer_key="k-skip",
                status="skipped",
                skipped_reason="window_closed",
            )
        )
        wa_queries.record_send(
            s, message_id="wamid.web1", customer_key="k-sent", kind="campaign", ref="spring-wa"
        )
        wa_queries.record_status(s, message_id="wamid.web1", status="read")
    app = create_app(settings, rasa_transport=httpx.MockTransport(FakeRasa().handler))
    with TestClient(app) as client:
        web = Web(web_db, client, FakeRasa(), "WCP")
        assert client.get("/campaigns", follow_redirects=False).status_code == 303
        web.login("carla", role="viewer")
        page = client.get("/campaigns").text
    row = re.search(r"<td>spring-wa</td>(.*?)</tr>", page, re.DOTALL)
    assert row is not None
    cells = re.findall(r"<td>(.*?)</td>", row.group(1), re.DOTALL)
    # state, queued, sent, failed, skipped, ..., WhatsApp delivered / read / failed
    assert cells[1:5] == ["2", "1", "0", "1"]
    assert cells[9].split() == ["0", "/", "1", "/", "0"]
    assert "https://wa.me/31201234567?text=Feedback%20%5Bc-spring-wa%5D" in page
    assert "https://wa.me/31201234567?text=Feedback%20Lumen%20Bulb%20%5Bfb-bulb%5D" in page
    with session_scope(web_db) as s:
        s.execute(delete(CampaignSend).where(CampaignSend.campaign_id == "spring-wa"))
