"""Issue 19, doors, end to end: groups and floods through the real PTB bot on the fake
Bot API, and the shared secret on Rasa's channel and HTTP API of the running product."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from earshot.settings import ROOT
from testkit.stack import SECRET, Stack, write_config
from testkit.telegram_api import FakeBotAPI

LIMIT = 20


@dataclass
class StubRasa:
    """Answers like Rasa's earshot channel: one echo per message; counts what it got."""

    received: list[str] = field(default_factory=list)

    def serve(self) -> ThreadingHTTPServer:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._reply(200, {"status": "ok"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.received.append(body["message"])
                self._reply(
                    200, [{"recipient_id": body["sender"], "text": f"echo {body['message']}"}]
                )

            def _reply(self, status: int, data: Any) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@pytest.fixture
def limited_bot(tmp_path: Path) -> Iterator[tuple[FakeBotAPI, StubRasa]]:
    """`python -m bot` with the shipped limit (20 a minute) on a fake Bot API and a stub Rasa."""
    rasa = StubRasa()
    server = rasa.serve()
    with FakeBotAPI() as fake:
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "EARSHOT_CONFIG": str(write_config(tmp_path / "config.yml")),
            "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
            "EARSHOT_SECRET": SECRET,
            "RASA_URL": f"http://127.0.0.1:{server.server_address[1]}",
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_API_BASE_URL": fake.base_url,
            "TYPING_AFTER_S": "5",
            "CUSTOMER_MESSAGES_PER_MINUTE": str(LIMIT),
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot"], env=env, cwd=ROOT,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            fake.wait_for(lambda: fake.calls_to("getUpdates") or None, timeout=60)
            yield fake, rasa
        finally:
            proc.terminate()
            proc.wait(30)
            server.shutdown()


def test_one_sender_over_the_limit_gets_one_notice_and_others_lose_nothing(
    limited_bot: tuple[FakeBotAPI, StubRasa],
) -> None:
    fake, rasa = limited_bot
    flooder, other = 700_001, 700_002
    for i in range(LIMIT + 10):
        fake.send_text(flooder, f"flood {i}")
    fake.send_text(other, "hello")
    fake.wait_for_messages(other, 1, timeout=30)
    got = fake.wait_for_messages(flooder, LIMIT + 1, timeout=60)
    fake.wait_for(lambda: fake.pending_updates == 0 or None, timeout=30)
    time.sleep(1)  # let the last updates of the flood finish (not a timing assertion)
    texts = [m.text or "" for m in fake.sent_messages(flooder)]
    notices = [t for t in texts if "very quickly" in t]
    assert len(notices) == 1, texts
    # Exactly `LIMIT` messages went through (which ones depends on the order in which
    # concurrent updates reach the limit), and each of them was answered.
    echoed = [t.removeprefix("echo ") for t in texts if t.startswith("echo")]
    assert len(echoed) == len(set(echoed)) == LIMIT
    assert set(echoed) <= {f"flood {i}" for i in range(LIMIT + 10)}
    assert len(got) >= LIMIT + 1
    assert [m.text for m in fake.sent_messages(other)] == ["echo hello"]
    assert sorted(rasa.received) == sorted([*echoed, "hello"])


def test_in_groups_the_bot_points_to_a_private_chat_once(
    limited_bot: tuple[FakeBotAPI, StubRasa],
) -> None:
    fake, rasa = limited_bot
    group = -100_555
    fake.send_group_text(700_010, "/start", chat_id=group)
    first = fake.wait_for_messages(group, 1, timeout=30)
    assert "private" in (first[0].text or "")
    for user, text in [(700_011, "/help"), (700_010, "/feedback"), (700_012, "hello bot")]:
        fake.send_group_text(user, text, chat_id=group)
    fake.send_text(700_013, "ping")  # a private message after them: they were handled
    fake.wait_for_messages(700_013, 1, timeout=30)
    assert len(fake.sent_messages(group)) == 1
    assert rasa.received == ["ping"]


# --- the shared secret on the running product's Rasa --------------------------------------


def test_rasa_channel_and_api_want_the_secret_in_a_header(stack: Stack) -> None:
    base = stack.env["RASA_URL"]
    token = stack.env["RASA_TOKEN"]
    body = {"sender": "doors-check", "message": "hello", "metadata": {"channel": "telegram"}}
    url = base + "/webhooks/earshot/webhook"
    with httpx.Client(timeout=60) as client:
        assert client.post(url, json=body).status_code == 401
        assert client.post(url, json=body, headers={"X-Earshot-Token": "guess"}).status_code == 401
        api = f"{base}/conversations/doors-check/tracker"
        assert client.get(api).status_code == 401
        assert client.get(api, params={"token": token}).status_code == 401  # never in the URL
        r = client.post(url, json=body, headers={"X-Earshot-Token": token})
        assert r.status_code == 200 and r.json()
        assert client.get(api, headers={"X-Earshot-Token": token}).status_code == 200
    # Nor on a command line: no process of the stack has the token in its arguments.
    assert stack.proc is not None
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert token not in out
