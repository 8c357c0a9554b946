"""The dashboard in a real headless Chromium (Playwright), served by uvicorn.

Uses Debian's /usr/bin/chromium (`make browser` installs it as root), never a downloaded
browser. Skips when Playwright or Chromium is missing, except in CI (env CI), where that
is a failure. Screenshots of each page go to a temporary folder, or to EARSHOT_SCREENS
(`make screens` refreshes the committed ones in reports/screens/).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from earshot.feedback import queries as feedback_queries
from earshot.feedback.schemas import FeedbackIn
from earshot.storage.db import engine_for, migrate, session_scope
from earshot.storage.models import AskLog, Feedback, Notification, ServiceRating, Supporter

CHROMIUM = os.environ.get("EARSHOT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Not over the committed screenshots: `make test` leaves the work tree as it was.
SCREENS = Path(os.environ.get("EARSHOT_SCREENS") or Path(tempfile.gettempdir(), "earshot-screens"))
PASSWORD = "browser-test-password"
SECRET = "browser-test-secret-0123456789"
VIEWPORT = {"width": 1366, "height": 900}


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    _unavailable("the playwright package is not installed (pip install playwright)")
if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
    _unavailable(
        f"no Chromium at {CHROMIUM}: run `make browser` as root (apt-get install chromium)"
        " or set EARSHOT_CHROMIUM to a Chromium binary"
    )


# --- a stub Rasa ----------------------------------------------------------------------------


class StubRasa:
    """Rasa's earshot channel with canned replies; remembers what it was sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.received.append(body)
                text = body["message"]
                replies: list[dict[str, Any]]
                if text == "/start":
                    replies = [{"text": "Hi! I'm the Lumen Home assistant. How can I help?"}]
                elif text.startswith("/rate"):
                    replies = [{"text": "Thanks for letting us know!"}]
                else:
                    replies = [
                        {"text": "To reset a Lumen Bulb, switch it off and on five times."},
                        {
                            "text": "Did that help?",
                            "buttons": [
                                {"title": "👍 Yes", "payload": '/rate{"helpful": true}'},
                                {"title": "👎 No", "payload": '/rate{"helpful": false}'},
                            ],
                        },
                    ]
                data = json.dumps([{"recipient_id": body["sender"], **r} for r in replies]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- seeded database and a running dashboard -----------------------------------------------

NOW = datetime.now(timezone.utc)
SEED: list[dict[str, Any]] = [
    {
        "product": "bulb",
        "type": "idea",
        "description": "Let the bulb fade in slowly as a sunrise alarm in the morning",
        "benefit": "Waking up would feel natural",
        "supporters": 14,
        "sentiment": 0.6,
        "days": 2,
        "consent": True,
        "frequency": "daily",
        "importance": "important",
    },
    {
        "product": "bulb",
        "type": "idea",
        "description": "Sunrise alarm: bulb fades in slowly in the morning",
        "supporters": 3,
        "sentiment": 0.4,
        "days": 5,
        "consent": True,
    },
    {
        "product": "app",
        "type": "problem",
        "description": "The app crashes when I open the schedule screen on Android",
        "supporters": 6,
        "sentiment": -0.7,
        "days": 1,
        "consent": True,
    },
    {
        "product": "app",
        "type": "idea",
        "description": "A home-screen widget to switch scenes quickly",
        "supporters": 9,
        "sentiment": 0.3,
        "days": 12,
    },
    {
        "product": "plug",
        "type": "complaint",
        "description": "The plug loses its Wi-Fi connection every night",
        "supporters": 4,
        "sentiment": -0.8,
        "days": 9,
        "language": "nl",
    },
    {
        "product": "hub",
        "type": "praise",
        "description": "Setting up the hub took two minutes, great job",
        "sentiment": 0.9,
        "days": 20,
    },
    {
        "product": "strip",
        "type": "idea",
        "description": "Let me cut the light strip to any length",
        "supporters": 7,
        "sentiment": 0.1,
        "days": 26,
    },
    {
        "product": "thermostat",
        "type": "problem",
        "description": "Thermostat shows the wrong room temperature after a firmware update",
        "supporters": 2,
        "sentiment": -0.5,
        "days": 33,
    },
    {
        "product": "app",
        "type": "idea",
        "description": "Dark mode for the app",
        "supporters": 11,
        "sentiment": 0.2,
        "days": 40,
    },
    {
        "product": None,
        "type": "other",
        "description": "Where can I buy spare parts?",
        "sentiment": 0.0,
        "days": 45,
    },
    {
        "product": "doorbell",
        "type": "complaint",
        "description": "The doorbell camera video is blurry at night",
        "supporters": 5,
        "sentiment": -0.6,
        "days": 52,
    },
    {
        "product": "bulb",
        "type": "praise",
        "description": "Colours are beautiful and the bulb is bright",
        "sentiment": 0.8,
        "days": 60,
    },
]
PRODUCTS = [
    {"key": "bulb", "name": "Lumen Bulb"},
    {"key": "strip", "name": "Lumen Strip"},
    {"key": "plug", "name": "Lumen Plug"},
    {"key": "hub", "name": "Lumen Hub"},
    {"key": "thermostat", "name": "Lumen Thermostat"},
    {"key": "doorbell", "name": "Lumen Doorbell"},
    {"key": "app", "name": "Lumen app"},
]


def seed(url: str) -> list[str]:
    refs = []
    with session_scope(url) as s:
        for i, spec in enumerate(SEED):
            spec = dict(spec)
            days, supporters = spec.pop("days"), spec.pop("supporters", 1)
            item = FeedbackIn(customer_key=f"{i:032x}", channel="telegram", **spec)
            row = feedback_queries.create_feedback(s, item=item, ref_prefix="LH")
            row.created_at = NOW - timedelta(days=days, hours=i)
            for n in range(supporters - 1):  # real supporter rows, so merges count right
                s.add(Supporter(feedback_id=row.id, customer_key=f"s{i:03d}{n:028x}"))
            row.supporters = supporters
            refs.append(row.ref)
        for week in range(9):
            for j in range(6):
                s.add(
                    ServiceRating(
                        topic=("reset_bulb", "wifi_setup", "warranty")[j % 3],
                        helpful=(j + week) % 4 != 0,
                        created_at=NOW - timedelta(weeks=week, hours=j),
                    )
                )
        for k, (trigger, outcome) in enumerate(
            [("after_service", "answered")] * 6
            + [("after_service", "declined")] * 2
            + [("campaign", "answered")] * 2
            + [("campaign", "ignored")] * 3
        ):
            at = NOW - timedelta(days=3 + k)
            s.add(AskLog(customer_key=f"a{k}", trigger=trigger, outcome=outcome, asked_at=at))
    return refs


@pytest.fixture(scope="module")
def rasa() -> Iterator[StubRasa]:
    stub = StubRasa()
    yield stub
    stub.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, rasa: StubRasa) -> Iterator[dict[str, Any]]:
    import uvicorn

    from earshot.settings import load_settings
    from earshot.web.app import create_app

    tmp = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{tmp / 'earshot.db'}"
    migrate(url)
    refs = seed(url)
    from earshot.accounts import service as accounts

    with session_scope(url) as session:  # the reviewer who signs in: a dashboard user
        accounts.add_user(session, name="maria", role="triager", password=PASSWORD)
    settings = load_settings(
        database_url=url,
        admin_password=PASSWORD,
        earshot_secret=SECRET,
        company={"name": "Lumen Home", "ref_prefix": "LH"},
        products=PRODUCTS,
        languages=["en", "nl"],
        default_language="en",
        rasa_url=rasa.url,
    )
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # a free port, held so nobody takes it meanwhile
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield {"base": f"http://127.0.0.1:{port}", "db": url, "refs": refs}
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()
    engine_for(url).dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def login(page: Page, base: str, user: str = "maria") -> None:
    page.goto(base + "/login")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Inbox")


@pytest.fixture
def page(browser: Browser, site: dict[str, Any]) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)  # type: ignore[arg-type]
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    login(pg, site["base"])
    yield pg
    context.close()


def shot(page: Page, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / name), full_page=True)


def db_item(site: dict[str, Any], ref: str) -> Feedback:
    with session_scope(site["db"]) as s:
        row = s.scalar(select(Feedback).where(Feedback.ref == ref))
        assert row is not None
        s.expunge(row)
        return row


# --- tests ---------------------------------------------------------------------------------


def test_login(browser: Browser, site: dict[str, Any]) -> None:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    pg = context.new_page()
    pg.goto(site["base"] + "/")
    expect(pg).to_have_url(site["base"] + "/login?next=%2F")
    shot(pg, "login.png")
    pg.fill("input[name=password]", "not the password")
    pg.click("button:has-text('Sign in')")
    expect(pg.locator(".flash-error")).to_have_text("Wrong name or password.")
    login(pg, site["base"])
    assert pg.locator("tr[data-ref]").count() == len(SEED)
    cookie = next(c for c in context.cookies() if c["name"] == "earshot_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    context.close()


def test_inbox_filtering(page: Page, site: dict[str, Any]) -> None:
    shot(page, "inbox.png")
    page.select_option("select[name=product]", "bulb")
    page.select_option("select[name=type]", "idea")
    page.click("button:has-text('Apply')")
    expect(page.locator("[data-testid=total]")).to_have_text("2")
    texts = page.locator("tr[data-ref] td.wide").all_inner_texts()
    assert all("unrise" in t for t in texts)
    page.fill("input[name=q]", "widget")
    page.select_option("select[name=product]", "")
    page.click("button:has-text('Apply')")
    expect(page.locator("tr[data-ref]")).to_have_count(1)
    page.goto(site["base"] + "/?sort=supporters")
    first = page.locator("tr[data-ref] td.n").first.inner_text()
    assert first == "14"


def test_status_change_tells_the_customer(page: Page, site: dict[str, Any]) -> None:
    ref = site["refs"][0]  # its author consented to hear back
    page.goto(f"{site['base']}/items/{ref}")
    expect(page.locator("h1 .ref")).to_have_text(ref)
    page.select_option("form[action$='/status'] select[name=status]", "planned")
    page.fill("form[action$='/status'] textarea[name=note]", "In the Q3 release")
    page.click("button:has-text('Set status')")
    expect(page.locator(".flash-ok")).to_have_text(f"{ref} is now planned")
    expect(page.locator("[data-testid=status]")).to_have_text("planned")
    expect(page.locator(".history")).to_contain_text("maria")
    expect(page.locator(".history")).to_contain_text("In the Q3 release")
    page.fill("input[name=tag]", "Wake-up")
    page.click("button:has-text('Add')")
    expect(page.locator(".tags .tag")).to_contain_text("wake-up")
    expect(page.locator("[data-testid=told]")).to_contain_text("Planned: 14 customers")
    shot(page, "item.png")
    with session_scope(site["db"]) as s:
        item = s.scalar(select(Feedback).where(Feedback.ref == ref))
        assert item is not None
        rows = s.scalars(select(Notification).where(Notification.feedback_id == item.id)).all()
        # The consenting author and every supporter, once each, waiting for the sender.
        assert {n.status for n in rows} == {"planned"} and len(rows) == item.supporters
        assert item.customer_key in {n.customer_key for n in rows}
        assert all(n.sent_at is None for n in rows)


def test_merge_two_items(page: Page, site: dict[str, Any]) -> None:
    original, dup = site["refs"][0], site["refs"][1]
    before, moving = db_item(site, original).supporters, db_item(site, dup).supporters
    page.goto(f"{site['base']}/items/{dup}")
    expect(page.locator(".similar")).to_contain_text(original)  # suggested as similar
    page.fill("form[action$='/merge'] input[name=into]", original)
    page.click("button:has-text('Merge')")
    expect(page).to_have_url(f"{site['base']}/items/{original}")
    expect(page.locator(".flash-ok")).to_contain_text(f"{dup} merged into {original}")
    assert db_item(site, dup).status == "duplicate"
    assert db_item(site, original).supporters == before + moving
    expect(page.locator("[data-testid=supporters]")).to_have_text(str(before + moving))


def test_export_downloads_open(page: Page, site: dict[str, Any], tmp_path: Path) -> None:
    from openpyxl import load_workbook

    page.goto(site["base"] + "/?product=app")
    expected = set(page.locator("tr[data-ref]").evaluate_all("rs => rs.map(r => r.dataset.ref)"))
    assert len(expected) == 3
    files = {}
    for fmt in ("csv", "xlsx", "jsonl"):
        with page.expect_download() as info:
            page.click(f"a.button:has-text('{fmt.upper()}')")
        download = info.value
        assert download.suggested_filename.endswith("." + fmt)
        files[fmt] = tmp_path / download.suggested_filename
        download.save_as(files[fmt])
    rows = list(csv.DictReader(io.StringIO(files["csv"].read_text(encoding="utf-8-sig"))))
    assert {r["ref"] for r in rows} == expected
    sheet = load_workbook(files["xlsx"], read_only=True)["feedback"]
    assert {r[0] for r in list(sheet.iter_rows(values_only=True))[1:]} == expected
    lines = [json.loads(x) for x in files["jsonl"].read_text(encoding="utf-8").splitlines()]
    assert {x["ref"] for x in lines} == expected and {x["product"] for x in lines} == {"app"}


def test_overview_charts(page: Page, site: dict[str, Any]) -> None:
    page.goto(site["base"] + "/overview")
    expect(page.locator("svg.chart")).to_have_count(7)
    expect(page.locator(".kpis")).to_contain_text("CSAT")
    page.goto(site["base"] + "/overview?days=90")
    shot(page, "overview.png")
    bars = page.locator("svg.chart rect title").count()
    assert bars > 10


def test_chat_exchange(browser: Browser, site: dict[str, Any], rasa: StubRasa) -> None:
    context = browser.new_context(viewport={"width": 900, "height": 820})
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    pg.goto(site["base"] + "/chat")  # no login needed: a customer channel
    expect(pg.locator(".msg-bot .bubble").first).to_contain_text("How can I help?")
    pg.fill("#chat-input", "How do I reset my bulb?")
    pg.press("#chat-input", "Enter")
    expect(pg.locator(".msg-me .bubble")).to_have_text("How do I reset my bulb?")
    expect(pg.locator(".choices button")).to_have_count(2)
    expect(pg.locator(".msg-bot").nth(1)).to_contain_text("switch it off and on five times")
    sent = rasa.received[-1]
    assert sent["message"] == "How do I reset my bulb?"
    assert sent["metadata"]["channel"] == "web" and len(sent["sender"]) == 32
    pg.click(".choices button:has-text('Yes')")
    expect(pg.locator(".msg-bot .bubble").last).to_have_text("Thanks for letting us know!")
    assert rasa.received[-1]["message"] == '/rate{"helpful": true}'
    assert rasa.received[-1]["sender"] == sent["sender"]  # same browser, same customer
    expect(pg.locator(".choices button").first).to_be_disabled()
    shot(pg, "chat.png")
    context.close()
