"""The whole path: fake Telegram -> PTB bot -> Rasa -> action server -> database."""

from __future__ import annotations

from testkit.stack import Stack
from tests.e2e.helpers import Customer, buttons, feedback_rows, finish, texts


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
    assert stack.fake.answered_callbacks, "every callback query is answered"
    me.press("Not about a product")
    me.press("Idea")
    me.say("The hub should show which bulbs are offline")
    me.press("Skip")  # what it would let me do
    me.press("Skip")  # importance
    ref = finish(me, consent="No")
    rows = feedback_rows(stack, ref=ref)
    assert len(rows) == 1
    row = rows[0]
    assert row.description == "The hub should show which bulbs are offline"
    assert row.customer_key == me.key and str(user_id) not in row.customer_key
    assert row.channel == "telegram" and row.language == "en" and row.status == "new"


def test_help_lists_commands(stack: Stack, user_id: int) -> None:
    reply = Customer(stack, user_id).say("/help")
    assert "/privacy" in texts(reply) and "/feedback" in texts(reply)
