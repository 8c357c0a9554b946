"""The bot's rate limiter: Telegram's message buckets hold sends, not edits or chat actions,
and with paid overflow the messages over the free limit go out at once, paid."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from telegram.error import Forbidden
from telegram.ext import ExtBot

from bot.app import build_application
from bot.limits import MessageRateLimiter, answering, sends_message
from earshot.settings import load_settings
from testkit.telegram_api import FakeBotAPI

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


def _paying_bot(fake: FakeBotAPI, period_s: float) -> tuple[MessageRateLimiter, ExtBot[int]]:
    """A bot with paid overflow and one free message per ``period_s``."""
    limiter = MessageRateLimiter(
        overall_max_rate=1, overall_time_period=period_s, paid_overflow=True, max_retries=1
    )
    return limiter, ExtBot(fake.token, base_url=fake.base_url, rate_limiter=limiter)


@pytest.mark.asyncio
async def test_paid_overflow_sends_over_the_limit_at_once_and_pays_only_for_those(
    fake: FakeBotAPI,
) -> None:
    limiter, bot = _paying_bot(fake, 3600)
    async with bot:
        # Without paid overflow the second and third would wait an hour (test above).
        with answering():
            for text in ("first", "second", "third"):
                await asyncio.wait_for(bot.send_message(CHAT, text), timeout=30)
            first = fake.sent_messages(CHAT)[0]
            await bot.edit_message_text("first ✓", chat_id=CHAT, message_id=first.message_id)
        # A campaign or reminder (no customer waiting) is never paid for: it waits.
        held = asyncio.create_task(bot.send_message(CHAT, "campaign question"))
        await asyncio.sleep(0.5)
        assert not held.done()
        held.cancel()
    sends = fake.calls_to("sendMessage")
    assert [c.params["text"] for c in sends] == ["first", "second", "third"]
    assert [c.paid for c in sends] == [False, True, True]
    assert not any(c.paid for c in fake.calls_to("editMessageText"))
    assert limiter.paid_messages == 2


@pytest.mark.asyncio
async def test_a_refused_payment_sends_the_answer_free_and_pauses_paying(
    fake: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    fake.stars = 0.15  # enough for one paid broadcast
    # One free message per 2 s: a second message at once finds the bucket empty.
    limiter, bot = _paying_bot(fake, 2)
    async with bot:
        with answering():
            for text in ("free", "paid", "refused", "after the pause"):
                await asyncio.wait_for(bot.send_message(CHAT, text), timeout=30)
    attempts = [(c.params["text"], c.paid, c.status) for c in fake.calls_to("sendMessage")]
    assert attempts == [
        ("free", False, 200),
        ("paid", True, 200),
        ("refused", True, 400),  # the balance ran out
        ("refused", False, 200),  # sent again free, once a slot was free
        ("after the pause", False, 200),  # paying stays paused
    ]
    assert [m.text for m in fake.sent_messages(CHAT)] == [
        "free", "paid", "refused", "after the pause"
    ]  # fmt: skip
    assert fake.stars == pytest.approx(0.05)
    assert limiter.paid_messages == 1 and not limiter.may_pay
    assert "Telegram refused a paid broadcast" in caplog.text


@pytest.mark.asyncio
async def test_an_answer_telegram_refuses_for_itself_does_not_pause_paying(
    fake: FakeBotAPI,
) -> None:
    limiter, bot = _paying_bot(fake, 2)
    async with bot:
        with answering():
            await bot.send_message(CHAT, "free")
            fake.block_user(CHAT)
            with pytest.raises(Forbidden):
                await asyncio.wait_for(bot.send_message(CHAT, "blocked"), timeout=30)
    assert limiter.may_pay  # a blocked chat says nothing about the Stars balance


@pytest.mark.parametrize(
    ("rate", "overflow", "bucket", "paid"),
    [
        ("12", "false", 12.0, False),
        ("0.5", "false", 0.5, False),  # one message every two seconds
        ("0", "false", None, False),
        ("30", "true", 30.0, True),
    ],
)
def test_the_operator_sets_the_bots_message_rate_and_paid_overflow(
    monkeypatch: pytest.MonkeyPatch, rate: str, overflow: str, bucket: float | None, paid: bool
) -> None:
    # Telegram's ~30 messages/s is approximate: the operator can lower it, or lift it (0).
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:test")
    monkeypatch.setenv("TELEGRAM_MESSAGES_PER_SECOND", rate)
    monkeypatch.setenv("TELEGRAM_PAID_OVERFLOW", overflow)
    limiter = build_application(load_settings()).bot.rate_limiter
    assert isinstance(limiter, MessageRateLimiter)
    assert limiter.messages_per_second == bucket
    assert limiter.paid_overflow is paid


def test_paid_overflow_is_off_unless_the_operator_turns_it_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:test")
    monkeypatch.delenv("TELEGRAM_PAID_OVERFLOW", raising=False)
    limiter = build_application(load_settings()).bot.rate_limiter
    assert isinstance(limiter, MessageRateLimiter) and limiter.paid_overflow is False
