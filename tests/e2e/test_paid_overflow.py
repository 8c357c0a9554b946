"""Paid overflow end to end: over the bot's free message limit, answers to waiting
customers go out at once as paid broadcasts instead of waiting their turn
(config.yml: telegram_paid_overflow)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testkit.stack import Stack, running_stack
from tests.e2e.helpers import Customer, texts


@pytest.fixture(scope="module")
def paid_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # One free message per 100 s: after the first, every answer is over the limit.
    with running_stack(
        tmp_path_factory.mktemp("paid"),
        TELEGRAM_MESSAGES_PER_SECOND="0.01",
        TELEGRAM_PAID_OVERFLOW="true",
    ) as stack:
        yield stack


def test_answers_over_the_free_limit_go_out_at_once_as_paid_broadcasts(
    paid_stack: Stack,
) -> None:
    questions = ["/start", "where is my order?", "how do I reset my bulb?"]
    for i, question in enumerate(questions):
        # Without paid overflow the second answer would wait 100 s: the timeout fails it.
        reply = Customer(paid_stack, 700_001 + i).say(question, timeout=30)
        assert texts(reply).strip()
    sends = paid_stack.fake.calls_to("sendMessage")
    paid = [c for c in sends if c.paid]
    assert len(sends) - len(paid) <= 1, "only the free bucket's one message is free"
    assert len(paid) >= len(questions) - 1
    # Button presses and keyboard edits are no messages: never paid.
    assert not any(c.paid for c in paid_stack.fake.calls_to("editMessageText"))
    assert "paid broadcasts" in paid_stack.log
