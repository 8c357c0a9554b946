"""Privacy on request and bad input through the real Telegram path."""

from __future__ import annotations

import time

from earshot.privacy.erasure import search_everywhere
from earshot.storage.db import make_engine
from testkit.stack import Stack
from tests.e2e.helpers import Customer, feedback_rows, give_feedback, texts


def _delete(stack: Stack, me: Customer, choice: str) -> str:
    ask = me.say("/deletemydata")
    assert "personal data" in texts(ask)
    stack.fake.press_button_by_text(me.user_id, choice)
    stack.fake.wait_for(
        lambda: any(
            "cannot be undone" in (m.text or "") for m in stack.fake.sent_messages(me.user_id)
        )
    )
    stack.fake.press_button_by_text(me.user_id, "Yes, delete")
    done = stack.fake.wait_for(
        lambda: [
            m for m in stack.fake.sent_messages(me.user_id) if (m.text or "").startswith("Done")
        ]
        or None
    )
    return done[-1].text or ""


def test_delete_my_personal_data_leaves_nothing_personal_but_keeps_the_idea(
    stack: Stack, user_id: int
) -> None:
    me = Customer(stack, user_id)
    me.say("Where is my parcel? It was order Quokka7731", expect=1)
    me.settle(0.5)
    idea = "Please add a sunrise alarm to the Lumen Bulb"
    give_feedback(me, idea)
    assert feedback_rows(stack, customer_key=me.key)
    _delete(stack, me, "Delete my personal data")
    engine = make_engine(stack.db_url)
    try:
        with engine.connect() as conn:
            found = search_everywhere(conn, [str(user_id), me.key, "Quokka7731"])
    finally:
        engine.dispose()
    assert found == []
    kept = [r for r in feedback_rows(stack) if r.description == idea]
    assert len(kept) == 1 and kept[0].customer_key is None


def test_delete_everything_removes_the_feedback_too(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    idea = "The strip should sync with music Wombat5520"
    give_feedback(me, idea)
    _delete(stack, me, "Delete everything, my feedback too")
    engine = make_engine(stack.db_url)
    try:
        with engine.connect() as conn:
            assert search_everywhere(conn, [me.key, "Wombat5520", str(user_id)]) == []
    finally:
        engine.dispose()


def test_odd_text_gets_a_friendly_answer(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    for text in [
        "😀😀😀",
        "مرحبا كيف حالك",
        "he\u200bllo\u200d",
        "<b>bold</b> & <script>alert(1)</script>",
        "'; DROP TABLE feedback; --",
        "{{ 7*7 }} ${7*7}",
        "x" * 4096,
    ]:
        reply = me.say(text)
        assert reply and all(m.text for m in reply), text
    assert feedback_rows(stack) is not None  # the table is still there


def test_media_unknown_commands_and_edits_get_a_clear_answer(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    assert "/help" in texts(me.say("/frobnicate"))
    stack.fake.send_edited_text(user_id, "changed my mind")
    assert "edited" in texts(me._new(lambda m: True, 15))
    for kind in ("sticker", "voice", "location"):
        stack.fake.send_media(user_id, kind)
        assert me._new(lambda m: True, 15), kind


def test_group_chats_are_pointed_to_a_private_chat(stack: Stack, user_id: int) -> None:
    chat_id = -5000 - user_id
    stack.fake.send_group_text(user_id, "/start", chat_id=chat_id)
    msgs = stack.fake.wait_for_messages(chat_id, 1, timeout=15)
    assert "private" in (msgs[0].text or "")


def test_a_redelivered_update_is_processed_once(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    update_id = stack.fake.send_text(user_id, "hello")
    me._new(lambda m: True, 30)
    stack.fake.redeliver(update_id)
    time.sleep(2)
    assert me.settle(0.5) == []


def test_a_flood_is_throttled_and_every_message_answered(stack: Stack, user_id: int) -> None:
    for i in range(50):
        stack.fake.send_text(user_id, f"hello {i}")
    replies = stack.fake.wait_for(
        lambda: (lambda m: m if len(m) >= 50 else None)(stack.fake.sent_messages(user_id)),
        timeout=120,
    )
    assert len(replies) >= 50


def test_personal_data_in_feedback_text_is_redacted_before_storage(
    stack: Stack, user_id: int
) -> None:
    me = Customer(stack, user_id)
    ref = give_feedback(me, "Call me on +31 6 12345678 or mail jan.jansen@example.org about it")
    [row] = feedback_rows(stack, ref=ref)
    assert "jan.jansen@example.org" not in row.description
    assert "12345678" not in row.description
    assert "[email]" in row.description and "[phone]" in row.description
