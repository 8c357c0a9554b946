"""Personal details typed through the real stack (Telegram bot on the fake Bot API, the web
chat, Rasa, the action server, the database) are nowhere as typed: not in any column of
any table, not in the spool files, not in the logs, not in the handoff transcript."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from earshot.knowledge.kb import load_kb
from earshot.privacy.erasure import search_everywhere
from earshot.settings import ROOT
from earshot.storage.db import make_engine
from testkit.pgtemp import create_pg_database, drop_pg_database
from testkit.stack import SUPPORT_CHAT_ID, Stack, running_stack
from tests.e2e.helpers import Customer, give_feedback, texts

KB = load_kb(ROOT / "kb")

# One of each kind, Dutch and English formats; each needle is a piece of what was typed.
SERVICE = (
    "When will I get my money back for my return? Mail me at jan.jansen@example.nl, "
    "my IBAN is NL91 ABNA 0417 1643 00"
)
FEEDBACK = (
    "Please add a sunrise alarm to the Lumen Bulb; questions to piet.pieters@example.com "
    "or 0619283746, and I paid with 4111 1111 1111 1111"
)
HANDOFF = "I want to talk to a human please, call me on 06-13572468 or +44 20 7946 0958"
WEB = (
    "I was charged twice on card 5500-0000-0000-0004, refund GB82 WEST 1234 5698 7654 32, "
    "mail web.visitor@example.org or call +31 6 24681357"
)
NEEDLES = [
    "jan.jansen@example.nl",
    "piet.pieters@example.com",
    "web.visitor@example.org",
    "ABNA 0417",
    "ABNA0417",
    "0417164300",
    "WEST 1234",
    "5698 7654",
    "4111 1111",
    "41111111",
    "5500-0000",
    "55000000",
    "19283746",
    "13572468",
    "7946 0958",
    "24681357",
]


def _answer(topic: str) -> str:
    return KB.topic(topic).answer["en"].text.strip()


def _found_in_files(folder: Path, patterns: list[str]) -> list[str]:
    hits = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix not in (".log", ".json") and "spool" not in path.parts:
            continue
        text = path.read_text(encoding="utf-8", errors="replace").casefold()
        hits += [f"{path.name}: {n}" for n in patterns if n.casefold() in text]
    return hits


def _web_chat(stack: Stack, message: str) -> list[dict]:
    base = f"http://127.0.0.1:{stack.env['WEB_PORT']}"
    with httpx.Client(base_url=base, timeout=60) as client:
        page = client.get("/chat")
        token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert page.status_code == 200 and token, page.text[:200]
        r = client.post(
            "/chat/send", json={"message": message}, headers={"X-CSRF-Token": token.group(1)}
        )
        assert r.status_code == 200, r.text
        return list(r.json()["messages"])


@pytest.fixture(scope="module")
def pg_stack(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole product on a PostgreSQL database of its own (Rasa's tracker store too)."""
    url = create_pg_database()
    try:
        with running_stack(tmp_path_factory.mktemp("pg-stack"), db_url=url) as s:
            yield s
    finally:
        from earshot.storage.db import engine_for

        engine_for.cache_clear()
        drop_pg_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_stack(request: pytest.FixtureRequest) -> Stack:
    stack: Stack = request.getfixturevalue("stack" if request.param == "sqlite" else "pg_stack")
    return stack


def test_typed_personal_details_are_stored_nowhere(any_stack: Stack, user_id: int) -> None:
    stack = any_stack
    me = Customer(stack, user_id)
    # A service question: answered as without the details (the model sees [iban], [email]).
    reply = me.say(SERVICE)
    assert html.unescape(reply[0].text or "").strip().startswith(_answer("refund_status"))
    me.settle(0.5)
    # A feedback answer.
    give_feedback(me, FEEDBACK)
    # A handoff request: the transcript the support team gets is redacted too.
    assert "support team" in texts(me.say(HANDOFF))
    forwarded = html.unescape(stack.fake.wait_for_messages(SUPPORT_CHAT_ID, 1)[-1].text or "")
    assert "[phone]" in forwarded
    # The web chat.
    web = _web_chat(stack, WEB)
    assert web and all(m.get("text") or m.get("buttons") for m in web)

    engine = make_engine(stack.db_url)
    try:
        with engine.connect() as conn:
            assert search_everywhere(conn, NEEDLES) == []
            # The redacted turns are there: the search would have found the originals.
            assert ("events", "data") in search_everywhere(conn, ["[iban]", "[card]"])
    finally:
        engine.dispose()
    sent_by_bot = "\n".join(html.unescape(m.text or "") for m in stack.fake.sent_messages())
    assert [n for n in NEEDLES if n.casefold() in sent_by_bot.casefold()] == []
    assert _found_in_files(stack.workdir, NEEDLES) == []
