"""The dashboard's Themes and Duplicates pages over HTTP, on SQLite and PostgreSQL: the demo's
sunrise-alarm pair suggested and merged in one click, a Wi-Fi-at-night theme with its
charts, and rename/merge/split by a triager (refused to a viewer)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from earshot.feedback.service import product_words
from earshot.settings import load_settings
from earshot.storage.db import session_scope
from earshot.storage.models import (
    DuplicateSuggestion,
    Feedback,
    Notification,
    Supporter,
    Theme,
    ThemeModel,
)
from earshot.themes import service as themes
from tests.test_web import NOW, Web, web, web_db  # noqa: F401  (fixtures)

WIFI = [
    "The plug loses its Wi-Fi connection every night",
    "my plug drops off the wifi every night",
    "the wifi connection of the plug is lost at night",
    "every night the plug disconnects from my wifi",
    "plug goes offline at night, wifi connection lost",
    "wifi of my plug drops each night",
]


def pair_on(html: str, merged: str, kept: str) -> str:
    """The id of the suggestion on the page that merges `merged` into `kept`."""
    for sid, body in re.findall(r'<li data-suggestion="(\d+)">(.*?)</li>', html, re.S):
        if body.index(merged) < body.index(kept) if merged in body and kept in body else False:
            return str(sid)
    raise AssertionError(f"no suggestion to merge {merged} into {kept}")


@pytest.fixture
def demo(web: Web) -> Iterator[Web]:  # noqa: F811
    """The demo's items (tests/browser/test_dashboard.py SEED), themed as `make run` does."""
    big = web.add(
        product="bulb",
        type="idea",
        description="Let the bulb fade in slowly as a sunrise alarm in the morning",
        customer_key="a" * 32,
        consent=True,
        at=NOW - timedelta(days=2),
    )
    for i, text in enumerate(WIFI):
        web.add(
            product="plug",
            type="problem",
            description=text,
            at=NOW - timedelta(days=1 + i),
            sentiment=-0.7,
        )
    web.add(product="app", type="idea", description="Dark mode for the app")
    small = web.add(
        product="bulb",
        type="idea",
        description="Sunrise alarm: bulb fades in slowly in the morning",
        customer_key="b" * 32,
        consent=True,
        at=NOW - timedelta(days=1),
    )
    with session_scope(web.url) as s:
        rows = {f.ref: f for f in s.scalars(select(Feedback).where(Feedback.ref.in_([big, small])))}
        for n in range(13):
            s.add(Supporter(feedback_id=rows[big].id, customer_key=f"fan{n}".ljust(32, "x")))
        rows[big].supporters = 14
        for n in range(2):
            s.add(Supporter(feedback_id=rows[small].id, customer_key=f"pal{n}".ljust(32, "x")))
        rows[small].supporters = 3
    with session_scope(web.url) as s:
        themes.tick(s, ignore=product_words(load_settings().catalogue))
    web.big, web.small = big, small  # type: ignore[attr-defined]
    yield web
    with session_scope(web.url) as s:
        s.execute(delete(DuplicateSuggestion))
        s.execute(delete(Feedback).where(Feedback.ref.like(f"{web.prefix}-%")))
        s.execute(delete(Theme).where(Theme.merged_into_id.is_not(None)))
        s.execute(delete(Theme))
        s.execute(delete(ThemeModel))


def test_demo_shows_the_sunrise_pair_and_merges_it_in_one_click(demo: Web) -> None:
    big, small = demo.big, demo.small  # type: ignore[attr-defined]
    demo.login("tess", role="triager")
    page = demo.client.get("/duplicates")
    assert page.status_code == 200
    assert f"Merge into {big}" in page.text and small in page.text
    item_page = demo.client.get(f"/items/{small}")
    assert "Likely duplicates" in item_page.text and f"Merge {small} into {big}" in item_page.text
    suggestion = pair_on(page.text, small, big)
    r = demo.client.post(f"/duplicates/{suggestion}/merge", data={"csrf": demo.csrf("/duplicates")})
    assert r.status_code == 200 and f"merged into {big} (17 supporters)" in r.text
    assert demo.item(small).status == "duplicate" and demo.item(big).supporters == 17
    # The history moved and the customers are told once when the kept item closes.
    token = demo.csrf(f"/items/{big}")
    demo.client.post(f"/items/{big}/status", data={"csrf": token, "status": "done"})
    demo.client.post(f"/items/{big}/status", data={"csrf": token, "status": "planned"})
    demo.client.post(f"/items/{big}/status", data={"csrf": token, "status": "done"})
    with session_scope(demo.url) as s:
        original = s.scalar(select(Feedback).where(Feedback.ref == big))
        assert original is not None
        told = s.scalars(
            select(Notification.customer_key).where(
                Notification.feedback_id == original.id, Notification.status == "done"
            )
        ).all()
        assert sorted(told).count("b" * 32) == 1 and "a" * 32 in told
    again = demo.client.post(
        f"/duplicates/{suggestion}/merge", data={"csrf": demo.csrf("/duplicates")}
    )
    assert "already" in again.text  # a second click is refused, nothing merges twice
    assert small not in demo.client.get("/duplicates").text


def test_dismissed_suggestion_is_gone_and_viewers_cannot_merge(demo: Web) -> None:
    demo.login("vic", role="viewer")
    page = demo.client.get("/duplicates")
    suggestion = pair_on(page.text, demo.small, demo.big)  # type: ignore[attr-defined]
    assert "/merge" not in page.text
    r = demo.client.post(f"/duplicates/{suggestion}/merge", data={"csrf": demo.csrf("/duplicates")})
    assert r.status_code == 403
    demo.login("tess", role="triager")
    r = demo.client.post(
        f"/duplicates/{suggestion}/dismiss", data={"csrf": demo.csrf("/duplicates")}
    )
    assert "not a duplicate" in r.text and f'data-suggestion="{suggestion}"' not in r.text
    assert demo.item(demo.small).status == "new"  # type: ignore[attr-defined]


def test_themes_page_shows_the_wifi_theme_with_charts_and_edits_stick(demo: Web) -> None:
    demo.login("tess", role="triager")
    page = demo.client.get("/themes")
    assert page.status_code == 200 and "<svg" in page.text
    rows = re.findall(
        r'<tr data-theme="(\d+)">\s*<td><a href="/themes/\d+">([^<]+)</a>(.*?)</tr>',
        page.text,
        re.S,
    )
    wifi = [(tid, label, rest) for tid, label, rest in rows if "wifi" in label or "night" in label]
    assert wifi, rows
    tid, _, rest = wifi[0]
    assert "emerging" in rest  # six items this fortnight, none before
    theme = demo.client.get(f"/themes/{tid}")
    assert theme.status_code == 200 and theme.text.count("<svg") >= 3
    assert all(t in theme.text for t in WIFI[:3])
    token = demo.csrf(f"/themes/{tid}")
    r = demo.client.post(
        f"/themes/{tid}/rename", data={"csrf": token, "label": "Wi-Fi drops at night"}
    )
    assert "is now called “Wi-Fi drops at night”" in r.text
    ids = re.findall(r'name="ids" value="(\d+)"', r.text)
    r = demo.client.post(
        f"/themes/{tid}/split", data={"csrf": token, "ids": ids[:2], "label": "Nightly"}
    )
    assert "2 items split off into “Nightly”" in r.text
    with session_scope(demo.url) as s:
        themes.run(s)
    again = demo.client.get(f"/themes/{tid}")
    assert "Wi-Fi drops at night" in again.text and len(re.findall(r'name="ids"', again.text)) == 4
    # A viewer sees the page but cannot edit.
    demo.login("vic", role="viewer")
    assert 'action="/themes/' not in demo.client.get(f"/themes/{tid}").text.split("Items</h2>")[-1]
    r = demo.client.post(f"/themes/{tid}/rename", data={"csrf": demo.csrf("/themes"), "label": "x"})
    assert r.status_code == 403
    assert demo.client.get("/themes/999999").status_code == 404


def test_pages_before_any_run_and_login_required(web: Web) -> None:  # noqa: F811
    for path in ("/themes", "/themes/1", "/duplicates"):
        r = web.client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    web.login()
    page = web.client.get("/themes")
    assert page.status_code == 200 and "No themes yet" in page.text and "No run yet" in page.text
    assert "No suggested duplicates waiting" in web.client.get("/duplicates").text
    assert web.client.get("/themes/abc").status_code == 404


def test_dashboard_keeps_themes_up_to_date_in_the_background(
    web: Web,  # noqa: F811
) -> None:
    import httpx
    from starlette.testclient import TestClient

    from earshot.storage.models import ThemeMember
    from earshot.web.app import create_app
    from tests.test_web import make_settings

    refs = [web.add(product="plug", type="problem", description=t) for t in WIFI[:3]]
    app = create_app(
        make_settings(web.url),
        rasa_transport=httpx.MockTransport(lambda r: httpx.Response(500)),
        themes_every_s=0.05,
    )
    themed: set[int | None] = set()
    with TestClient(app):
        for _ in range(600):  # a wait, not a timing assertion: up to a minute on a busy machine
            with session_scope(web.url) as s:
                themed = set(
                    s.scalars(
                        select(ThemeMember.theme_id)
                        .join(Feedback, Feedback.id == ThemeMember.feedback_id)
                        .where(Feedback.ref.in_(refs))
                    )
                )
            if len(themed) == 1 and None not in themed:
                break
            time.sleep(0.1)
    assert len(themed) == 1 and None not in themed
    with session_scope(web.url) as s:
        s.execute(delete(Theme))
        s.execute(delete(ThemeModel))
