"""Bad input at the doors (issue 19): refused early, and no customer loses anything."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from earshot.settings import load_settings
from earshot.storage.db import migrate
from earshot.web.app import create_app
from tests.chaos.conftest import Parts
from tests.e2e.helpers import Customer, texts

PASSWORD = "chaos dashboard password"


def _chunks(total: int) -> Iterator[bytes]:
    for _ in range(total // 65536):
        yield b"a" * 65536


def test_huge_bodies_are_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: list
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EARSHOT_CONFIG", str(tmp_path / "none.yml"))
    url = f"sqlite:///{tmp_path / 'web.db'}"
    migrate(url)
    settings = load_settings(
        database_url=url, admin_password=PASSWORD, earshot_secret="chaos-secret-0123456789"
    )
    with TestClient(create_app(settings)) as client:
        statuses = [
            client.post(path, content=_chunks(8 * 1024 * 1024)).status_code
            for path in ("/login", "/chat/send")
        ]
        page = client.get("/login").text
        token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        login = client.post("/login", data={"csrf": token, "user": "admin", "password": PASSWORD})
    assert statuses == [413, 413]
    lost = 0 if login.status_code == 200 and "Inbox" in login.text else 1
    record.append(
        ("8 MB chunked POSTs to login and chat", "413 before parsing; login works", lost, 0)
    )
    assert lost == 0


def test_rasa_without_the_shared_secret_takes_nothing(parts: Parts, record: list) -> None:
    url = parts.env["RASA_URL"] + "/webhooks/earshot/webhook"
    body = {"sender": "chaos-intruder", "message": "/give_feedback", "metadata": {}}
    status = httpx.post(url, json=body, timeout=30).status_code
    me = Customer(parts, 799_001)  # type: ignore[arg-type]  # answered as usual right after
    answered = bool(texts(me.say("/help", timeout=60)))
    record.append(
        (
            "Rasa called without X-Earshot-Token",
            f"{status}; customers answered",
            0 if answered else 1,
            0,
        )
    )
    assert status == 401 and answered


def test_group_chatter_gets_one_pointer(parts: Parts, record: list) -> None:
    group = -100_799
    for i in range(20):
        parts.fake.send_group_text(799_100 + i % 3, "/start" if i % 2 else "hi all", chat_id=group)
    me = Customer(parts, 799_002)  # type: ignore[arg-type]
    assert texts(me.say("/help", timeout=60))  # the group's updates were handled before it
    said = len(parts.fake.sent_messages(group))
    record.append(("20 messages in a group", f"{said} pointer to a private chat", 0, said - 1))
    assert said == 1
