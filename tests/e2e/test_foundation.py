"""The whole path: fake Telegram -> PTB bot -> Rasa -> action server -> database."""

from __future__ import annotations

import re

from tests.e2e.helpers import Customer, buttons, feedback_rows, texts
from tests.stack import Stack

REF = re.compile(r"\bLH-[2-9A-HJ-NP-Z]{4}\b")


def test_start_greets_and_points_to_privacy(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    reply = me.say("/start")
    assert "Lumen Home" in texts(reply)
    assert "/privacy" in texts(reply)
    assert stack.fake.chat_actions, "a typing action is shown while Rasa works"


def test_feedback_slice_through_a_button(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    start = me.say("/start")
    assert buttons(start), "the greeting offers buttons"
    me.say("hello there")
    asked = me.press("Share feedback")
    assert "product team" in texts(asked).lower()
    callbacks = [c for c in stack.fake.answered_callbacks]
    assert callbacks, "every callback query is answered"
    done = me.say("The hub should show which bulbs are offline")
    ref = REF.search(texts(done))
    assert ref, texts(done)
    rows = feedback_rows(stack, ref=ref.group(0))
    assert len(rows) == 1
    row = rows[0]
    assert row.description == "The hub should show which bulbs are offline"
    assert row.customer_key == me.key and str(user_id) not in row.customer_key
    assert row.channel == "telegram" and row.language == "en" and row.status == "new"


def test_help_lists_commands(stack: Stack, user_id: int) -> None:
    reply = Customer(stack, user_id).say("/help")
    assert "/privacy" in texts(reply) and "/feedback" in texts(reply)
