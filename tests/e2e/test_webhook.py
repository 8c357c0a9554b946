"""Webhook mode: the secret header is checked, bodies are limited, updates are answered."""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from earshot.settings import ROOT
from testkit.stack import Stack, free_port
from testkit.telegram_api import FakeBotAPI

SECRET = "webhook-secret-for-tests"


@pytest.fixture(scope="module")
def webhook_bot(stack: Stack) -> Iterator[tuple[FakeBotAPI, str]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    with FakeBotAPI(token="654321:WEBHOOK") as fake:  # another bot than the stack's
        env = {
            **stack.env,
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_API_BASE_URL": fake.base_url,
            "TELEGRAM_WEBHOOK_URL": url,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_WEBHOOK_PORT": str(port),
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot"],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            fake.wait_for(lambda: fake.webhook_url == url or None, timeout=60)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # the server listens right after setWebhook
                try:
                    http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
                    break
                except OSError:
                    time.sleep(0.2)
            yield fake, url
        finally:
            proc.terminate()
            proc.wait(30)


def test_a_wrong_or_missing_secret_gets_403_and_is_not_processed(
    webhook_bot: tuple[FakeBotAPI, str],
) -> None:
    fake, url = webhook_bot
    update = fake.build_text_update(424242, "/help")
    assert fake.deliver_via_webhook(url, update, secret_token="wrong") == 403
    assert fake.deliver_via_webhook(url, update) == 403
    time.sleep(1.5)
    assert fake.sent_messages(424242) == []


def test_the_right_secret_gets_an_answer(webhook_bot: tuple[FakeBotAPI, str]) -> None:
    fake, url = webhook_bot
    update = fake.build_text_update(434343, "/help")
    assert fake.deliver_via_webhook(url, update, secret_token=SECRET) == 200
    msgs = fake.wait_for_messages(434343, 1, timeout=30)
    assert "/privacy" in (msgs[0].text or "")


def test_oversized_bodies_are_refused(webhook_bot: tuple[FakeBotAPI, str]) -> None:
    fake, url = webhook_bot
    update = fake.build_text_update(454545, "x" * (2 << 20))
    assert fake.deliver_via_webhook(url, update, secret_token=SECRET) == 413
