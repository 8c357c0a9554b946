"""The web chat keeps personal details out of Rasa and lets visitors erase their data."""

from __future__ import annotations

from earshot.privacy.erasure import search_everywhere
from earshot.privacy.identity import user_key
from earshot.storage.db import make_engine
from tests import test_web
from tests.test_web import SECRET, Web, csrf

# The dashboard module's fixtures: a migrated database of its own (SQLite, PostgreSQL), the app.
web_db = test_web.web_db
web = test_web.web

TYPED = (
    "mail jan.jansen@example.nl or call 06-12345678 / +44 20 7946 0958, "
    "refund to NL91 ABNA 0417 1643 00, card 4111-1111-1111-1111"
)
RAW = ("jan.jansen@example.nl", "12345678", "7946", "NL91", "4111")


def _chat(web: Web) -> tuple[str, dict[str, str]]:
    r = web.client.get("/chat")
    return web.client.cookies["earshot_chat"], {"X-CSRF-Token": csrf(r.text)}


def test_typed_personal_details_reach_rasa_redacted(web: Web) -> None:
    _, headers = _chat(web)
    r = web.client.post("/chat/send", json={"message": TYPED}, headers=headers)
    assert r.status_code == 200
    sent = web.rasa.received[-1]["message"]
    assert not [raw for raw in RAW if raw in sent]
    assert "[email]" in sent and "[phone]" in sent and "[iban]" in sent and "[card]" in sent


def _press(web: Web, headers: dict[str, str], messages: list[dict], title: str) -> list[dict]:
    ids = [b["id"] for m in messages for b in m["buttons"] if b["title"] == title]
    assert ids, (title, messages)
    r = web.client.post("/chat/send", json={"button": ids[0]}, headers=headers)
    assert r.status_code == 200
    return list(r.json()["messages"])


def test_deletemydata_offers_two_choices_and_erases_the_visitor(web: Web) -> None:
    cookie, headers = _chat(web)
    key = user_key(SECRET, "web", cookie)
    web.client.post("/chat/send", json={"message": "hello"}, headers=headers)  # buttons stored
    ref = web.add(customer_key=key, channel="web", description="a web idea Numbat88")
    n = len(web.rasa.received)

    r = web.client.post("/chat/send", json={"message": "/deletemydata"}, headers=headers)
    choose = r.json()["messages"]
    assert "What would you like me to delete?" in choose[0]["text"]
    assert "<b>" not in choose[0]["text"]  # shown as text, so no HTML tags
    assert [b["title"] for b in choose[0]["buttons"]] == [
        "Delete my personal data",
        "Delete everything, my feedback too",
        "Cancel",
    ]
    confirm = _press(web, headers, choose, "Delete everything, my feedback too")
    assert "cannot be undone" in confirm[0]["text"]
    done = _press(web, headers, confirm, "Yes, delete")
    assert done[0]["text"].startswith("Done: I've deleted everything")
    assert len(web.rasa.received) == n  # answered here, as on Telegram; Rasa saw none of it

    engine = make_engine(web.url)
    try:
        assert search_everywhere(engine, [key, "Numbat88"]) == []
    finally:
        engine.dispose()
    assert ref  # the item existed before


def test_cancel_deletes_nothing_and_typed_steps_are_not_obeyed(web: Web) -> None:
    cookie, headers = _chat(web)
    key = user_key(SECRET, "web", cookie)
    web.add(customer_key=key, channel="web", description="keep Wallaby31")
    r = web.client.post("/chat/send", json={"message": "/deletemydata"}, headers=headers)
    cancelled = _press(web, headers, r.json()["messages"], "Cancel")
    assert "haven't deleted anything" in cancelled[0]["text"]
    # Typing a step's payload is just text for the assistant, never an erasure.
    web.client.post("/chat/send", json={"message": "erase:do:all"}, headers=headers)
    assert web.rasa.received[-1]["message"] == "erase:do:all"
    engine = make_engine(web.url)
    try:
        assert ("feedback", "customer_key") in search_everywhere(engine, [key])
    finally:
        engine.dispose()
