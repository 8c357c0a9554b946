"""The three front ends drifted apart before the gateway (issue 20); each drift, tried as
a customer would, through the adapter: the web chat's handoff reaches the support chat;
the terminal chat knows every command, keeps a chosen language, and shows links with
their address instead of numbering them."""

from __future__ import annotations

import asyncio
import html
import io
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from bot.terminal import chat
from earshot import i18n
from earshot.gateway.rasa import RasaClient
from earshot.gateway.replies import plain
from earshot.gateway.service import Gateway
from earshot.privacy.erasure import search_everywhere
from earshot.settings import ROOT, Settings, load_settings
from earshot.storage.db import make_engine, migrate, session_scope
from earshot.storage.models import Customer
from earshot.web.app import create_app
from testkit.telegram_api import DEFAULT_TOKEN, FakeBotAPI
from tests.test_gateway import SECRET, FakeRasa
from tests.test_web import csrf

MakeSettings = Callable[..., Settings]
SUPPORT = -100555
GREETING = [
    {
        "text": "Hi! What can I do for you?",
        "buttons": [
            {"title": "Ask a question", "payload": "/ask_question"},
            {"title": "Our help pages", "payload": "https://lumen.example/help"},
            {"title": "Share feedback", "payload": "/give_feedback"},
        ],
    }
]


@pytest.fixture
def settings_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MakeSettings:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EARSHOT_CONFIG", str(tmp_path / "none.yml"))
    url = f"sqlite:///{tmp_path / 'drift.db'}"
    migrate(url)

    def make(**extra: object) -> Settings:
        return load_settings(
            database_url=url,
            data_dir=tmp_path,
            earshot_secret=SECRET,
            languages=["en", "nl"],
            default_language="en",
            rasa_url="http://rasa.test",
            knowledge_base=ROOT / "kb",
            **extra,
        )

    return make


def test_a_web_chat_handoff_reaches_the_support_chat(settings_for: MakeSettings) -> None:
    rasa = FakeRasa()
    rasa.answers["I want to talk to a person"] = [
        {
            "custom": {
                "handoff": {
                    "support_chat_id": SUPPORT,
                    "topic": "device_offline",
                    "transcript": "customer: my bulb is offline <again> & again",
                }
            }
        },
        {"text": "I've passed our conversation on to our support team."},
    ]
    with FakeBotAPI() as telegram:
        settings = settings_for(
            telegram_bot_token=DEFAULT_TOKEN,
            telegram_api_base_url=telegram.base_url,
            support_chat_id=SUPPORT,
        )
        app = create_app(settings, rasa_transport=httpx.MockTransport(rasa.handler))
        with TestClient(app) as client:
            headers = {"X-CSRF-Token": csrf(client.get("/chat").text)}
            r = client.post(
                "/chat/send", json={"message": "I want to talk to a person"}, headers=headers
            )
            assert r.status_code == 200
            shown = r.json()["messages"]
            assert shown[0]["text"] == "I've passed our conversation on to our support team."
            # The page cannot be written to later: the visitor learns how to reach a person.
            assert shown[1]["text"].startswith("This chat can't receive an answer")
            assert "+31 30 799 1234" in shown[2]["text"]
            assert {"title": "Contact form", "url": "https://www.lumenhome.example/contact"} in (
                shown[2]["buttons"]
            )
            cookie = client.cookies["earshot_chat"]
        engine = make_engine(settings.db_url)
        try:  # the browser's cookie is a session secret: only its keyed hash is kept
            assert search_everywhere(engine, [cookie]) == []
        finally:
            engine.dispose()
        [posted] = telegram.wait_for_messages(SUPPORT, 1)
    text = html.unescape(posted.text or "")  # sent as Telegram HTML, escaped
    assert "asked to talk to a person on the web chat" in text
    assert "topic: device_offline" in text
    assert "my bulb is offline <again> & again" in text


def _terminal(settings_for: MakeSettings, rasa: FakeRasa, lines: str) -> tuple[int, Gateway]:
    settings = settings_for()
    client = RasaClient(settings.rasa_url, transport=httpx.MockTransport(rasa.handler))
    gateway = Gateway(settings, rasa=client)
    code = asyncio.run(chat(io.StringIO(lines), gateway=gateway, user="tester"))
    return code, gateway


def test_the_terminal_chat_knows_every_command_and_keeps_the_chosen_language(
    settings_for: MakeSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    rasa = FakeRasa()
    rasa.answers["/start"] = GREETING
    lines = "/language nl\nwaar is mijn pakket\n/myfeedback\n/nosuchcommand\n/quit\n"
    code, _ = _terminal(settings_for, rasa, lines)
    assert code == 0
    assert rasa.messages == [
        "/start",
        '/set_language{"language": "nl"}',
        "waar is mijn pakket",
        "/my_feedback",
    ]
    # The choice sticks: the turns after it go to Rasa in Dutch, not the default.
    assert [b["metadata"]["language"] for b in rasa.received[1:]] == ["nl", "nl", "nl"]
    out = capsys.readouterr().out
    assert plain(i18n.text("unknown_command", "nl")) in out
    assert "not sure I understood" not in out


def test_the_terminal_chat_erases_on_request_with_two_confirmed_choices(
    settings_for: MakeSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    rasa = FakeRasa()
    rasa.answers["/start"] = GREETING
    # /deletemydata, "2" = delete everything, "1" = yes.
    code, gateway = _terminal(settings_for, rasa, "hello\n/deletemydata\n2\n1\n/quit\n")
    assert code == 0
    out = capsys.readouterr().out
    assert "1. Delete my personal data" in out and "2. Delete everything, my feedback too" in out
    assert "cannot be undone" in out and "Done: I've deleted everything" in out
    assert rasa.messages == ["/start", "hello"]  # the erasure steps never reach Rasa
    with session_scope(gateway.settings.db_url) as s:
        key = gateway.key("terminal", "tester")
        assert s.scalar(select(Customer).where(Customer.user_key == key)) is None


def test_terminal_links_show_their_address_and_only_choices_are_numbered(
    settings_for: MakeSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    rasa = FakeRasa()
    rasa.answers["/start"] = GREETING
    code, _ = _terminal(settings_for, rasa, "2\n/quit\n")
    assert code == 0
    out = capsys.readouterr().out
    assert "1. Ask a question" in out and "2. Share feedback" in out
    assert "Our help pages: https://lumen.example/help" in out
    assert ". Our help pages" not in out  # a link is no numbered choice
    assert rasa.messages == ["/start", "/give_feedback"]  # "2" pressed the second choice
    assert all(m.strip() for m in rasa.messages)  # never an empty message
