"""Webhook mode stores an update before Telegram gets its 200: a crash loses nothing.

A bot of its own (another token, webhook mode) beside the chaos parts, on their Rasa and
database; a row in the `make chaos` table."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from pathlib import Path

from earshot.settings import ROOT
from testkit.stack import free_port
from testkit.telegram_api import FakeBotAPI
from tests.chaos.conftest import Parts

SECRET = "webhook-secret-for-crash-tests"


def _start_bot(fake: FakeBotAPI, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    before = len(fake.calls_to("setWebhook"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot"],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    fake.wait_for(lambda: len(fake.calls_to("setWebhook")) > before or None, timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the server listens right after setWebhook
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            break
        except OSError:
            time.sleep(0.2)
    return proc


def test_an_update_answered_200_is_processed_after_a_crash(
    parts: Parts, record: list, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    # A Rasa that takes connections and never answers: processing is under way at the kill.
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    hung.settimeout(60)
    with FakeBotAPI(token="765432:CRASH") as fake:
        env = {
            **parts.env,
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_API_BASE_URL": fake.base_url,
            "TELEGRAM_WEBHOOK_URL": url,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_WEBHOOK_PORT": str(port),
            "DATA_DIR": str(tmp_path / "data"),
        }
        crashing = {
            **env,
            "RASA_URL": f"http://127.0.0.1:{hung.getsockname()[1]}",
            "RASA_TIMEOUT_S": "300",
        }
        proc = _start_bot(fake, crashing, port)
        try:
            update = fake.build_text_update(464646, "/help")
            assert fake.deliver_via_webhook(url, update, secret_token=SECRET) == 200
            personal = fake.build_text_update(464647, "mail me at jan.jansen@example.nl please")
            assert fake.deliver_via_webhook(url, personal, secret_token=SECRET) == 200
            conn, _ = hung.accept()  # the bot is asking "Rasa": the update is being processed
            conn.close()
        finally:
            proc.kill()  # a crash, not a stop: nothing gets to finish
            proc.wait(30)
            hung.close()
        assert not [m for m in fake.sent_messages(464646) if "/privacy" in (m.text or "")]
        stored = "\n".join(p.read_text() for p in (tmp_path / "data" / "spool").rglob("*.json"))
        assert "/help" in stored  # on disk across the crash ...
        assert "jan.jansen@example.nl" not in stored and "[email]" in stored  # ... redacted

        proc = _start_bot(fake, env, port)  # the real Rasa again
        try:
            answers = fake.wait_for(
                lambda: [m for m in fake.sent_messages(464646) if "/privacy" in (m.text or "")]
                or None,
                timeout=60,
            )
            fake.wait_for(lambda: fake.sent_messages(464647) or None, timeout=60)
            time.sleep(1)
            again = [m for m in fake.sent_messages(464646) if "/privacy" in (m.text or "")]
            record.append(
                (
                    "webhook bot killed after the 200",
                    f"stored, processed at restart, answered {len(again)}x",
                    0 if again else 1,
                    max(len(again) - 1, 0),
                )
            )
            assert len(answers) == len(again) == 1  # answered once, after the restart
            spool = tmp_path / "data" / "spool"
            fake.wait_for(lambda: not list(spool.rglob("*.json")) or None, timeout=10)
        finally:
            proc.terminate()
            proc.wait(30)
