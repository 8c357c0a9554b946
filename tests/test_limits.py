"""The bot's rate limiter: Telegram's message buckets hold sends, not edits or chat actions."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from telegram.ext import ExtBot

from bot.app import build_application
from bot.limits import MessageRateLimiter, sends_message
from earshot.settings import load_settings
from tests.fakes.telegram_api import FakeBotAPI

CHAT = 4242


@pytest.fixture
def fake() -> Iterator[FakeBotAPI]:
    with FakeBotAPI() as server:
        yield server


def test_which_methods_count_as_messages() -> None:
    assert sends_message("sendMessage") and sends_message("sendPhoto")
    assert sends_message("copyMessage") and sends_message("forwardMessage")
    assert not sends_message("sendChatAction")
    assert not sends_message("editMessageText") and not sends_message("answerCallbackQuery")


@pytest.mark.asyncio
async def test_an_exhausted_send_bucket_holds_sends_but_not_edits(fake: FakeBotAPI) -> None:
    # One message per hour: the first send empties the bucket, the second must wait.
    limiter = MessageRateLimiter(overall_max_rate=1, overall_time_period=3600, max_retries=1)
    bot = ExtBot(fake.token, base_url=fake.base_url, rate_limiter=limiter)
    async with bot:
        first = await bot.send_message(CHAT, "question?")
        held = asyncio.create_task(bot.send_message(CHAT, "second message"))
        # An edit and a chat action still go through while the send waits for its slot.
        edited = await asyncio.wait_for(
            bot.edit_message_text("question? ✓ yes", chat_id=CHAT, message_id=first.message_id),
            timeout=30,
        )
        assert await asyncio.wait_for(bot.send_chat_action(CHAT, "typing"), timeout=30)
        assert not held.done()
        held.cancel()
    assert getattr(edited, "text", None) == "question? ✓ yes"
    assert "second message" not in [m.text for m in fake.sent_messages(CHAT)]
    assert len(fake.calls_to("sendMessage")) == 1


@pytest.mark.parametrize(("setting", "bucket"), [("12", 12.0), ("0", None)])
def test_the_operator_sets_the_bots_message_rate(
    monkeypatch: pytest.MonkeyPatch, setting: str, bucket: float | None
) -> None:
    # Telegram's ~30 messages/s is approximate: the operator can lower it, or lift it (0).
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:test")
    monkeypatch.setenv("TELEGRAM_MESSAGES_PER_SECOND", setting)
    limiter = build_application(load_settings()).bot.rate_limiter
    assert isinstance(limiter, MessageRateLimiter)
    base = limiter._base_limiter
    assert (base.max_rate if base else None) == bucket
