"""Service answers through the Telegram path: every topic, votes, fallback and handoff."""

from __future__ import annotations

import html

import httpx
import pytest
from sqlalchemy import select

from earshot.knowledge.kb import load_kb
from earshot.settings import ROOT
from earshot.storage.db import session_scope
from earshot.storage.models import ServiceRating
from testkit.stack import SUPPORT_CHAT_ID, Stack
from tests.e2e.helpers import Customer, buttons, texts

KB = load_kb(ROOT / "kb")
TOPICS = [t.key for t in KB.topics]


def answer_text(key: str) -> str:
    return KB.topic(key).answer["en"].text.strip()


def ratings(stack: Stack, key: str) -> list[tuple[str, bool]]:
    with session_scope(stack.db_url) as session:
        rows = session.scalars(select(ServiceRating).where(ServiceRating.customer_key == key)).all()
        return [(r.topic, r.helpful) for r in rows]


@pytest.mark.parametrize("topic", TOPICS)
def test_every_topic_is_answered_from_the_knowledge_base(
    stack: Stack, user_id: int, topic: str
) -> None:
    me = Customer(stack, user_id)
    question = KB.topic(topic).examples["en"][0]
    reply = me.say(question)
    assert html.unescape(reply[0].text or "").strip().startswith(answer_text(topic))
    # One message: the answer, then the question, with the buttons under both.
    assert "Did that help?" in (reply[0].text or "")
    assert {"👍 Yes", "👎 No"} <= set(buttons(reply[:1]))


def test_votes_are_stored_and_a_thumbs_down_offers_a_person(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    me.say(KB.topic("order_track").examples["en"][0])
    glad = me.press("👍 Yes")
    assert "glad" in texts(glad).lower()
    me.settle(0.5)
    me.say(KB.topic("warranty").examples["en"][0])
    sorry = me.press("👎 No")
    assert "Talk to a person" in buttons(sorry)
    assert sorted(ratings(stack, me.key)) == [("order_track", True), ("warranty", False)]


def test_a_vote_locks_its_buttons_but_keeps_the_answers_links(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    [answer] = me.say(KB.topic("account_create").examples["en"][0])
    assert "Create an account" in answer.button_texts and "👍 Yes" in answer.button_texts
    me.press("👍 Yes")
    edited = stack.fake.bot_message(user_id, answer.message_id)
    assert edited is not None
    kept = [b for row in edited["reply_markup"]["inline_keyboard"] for b in row]
    assert [b["text"] for b in kept] == ["Create an account"] and kept[0]["url"].startswith("http")
    assert edited["text"].endswith("✓ 👍 Yes")


def test_did_that_help_is_asked_once_per_topic(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    question = KB.topic("delivery_time").examples["en"][0]
    me.say(question)
    again = me.say(question)
    again += me.settle(0.5)
    assert "Did that help?" not in texts(again)


def test_out_of_scope_gets_what_i_can_help_with(stack: Stack, user_id: int) -> None:
    reply = Customer(stack, user_id).say("what will the weather be like in Amsterdam tomorrow?")
    assert "I can help with" in texts(reply)


def test_handoff_reaches_the_support_chat_with_a_transcript(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    me.say(KB.topic("device_offline").examples["en"][0])
    reply = me.say("I want to talk to a human please")
    assert "support team" in texts(reply)
    forwarded = stack.fake.wait_for_messages(SUPPORT_CHAT_ID, 1, timeout=10)
    text = forwarded[-1].text or ""
    assert "asked to talk to a person" in text
    assert KB.topic("device_offline").examples["en"][0] in html.unescape(text)


def test_forged_button_data_is_ignored_politely(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    start = me.say("/start")
    stack.fake.press_button(user_id, start[-1].message_id, "forged:0")
    answer = stack.fake.wait_for(
        lambda: [a for a in stack.fake.answered_callbacks if "expired" in (a.text or "")] or None
    )
    assert answer


# Vague or mixed messages; the test asks Rasa's own parser which of them fall below the
# confidence threshold, so it does not depend on one model's exact scores.
CANDIDATES = [
    "the thing from before",
    "what about the other one",
    "parcel thing",
    "doorbell thing",
    "app thing",
    "invoice thing",
    "newsletter thing",
    "doorbell issue",
    "app problem",
    "doorbell problem",
    "app question",
    "parcel help",
    "delivery slow",
    "order slow",
]


def _fallback_messages(stack: Stack) -> list[str]:
    url = stack.env["RASA_URL"] + "/model/parse"
    found = []
    with httpx.Client(timeout=30) as client:
        for text in CANDIDATES:
            headers = {"X-Earshot-Token": stack.env["RASA_TOKEN"]}
            resp = client.post(url, headers=headers, json={"text": text})
            if resp.json()["intent"]["name"] == "nlu_fallback":
                found.append(text)
    return found


def test_low_confidence_offers_likely_topics_then_a_person(stack: Stack, user_id: int) -> None:
    vague = _fallback_messages(stack)
    assert len(vague) >= 2, f"expected at least two low-confidence candidates, got {vague}"
    me = Customer(stack, user_id)
    first = me.say(vague[0])
    assert "Did you mean" in texts(first)
    offered = buttons(first)
    assert offered[-1] == "Something else" and 2 <= len(offered) <= 3
    assert set(offered[:-1]) <= {t.examples["en"][0] for t in KB.topics}
    second = me.say(vague[1])
    assert "pass you on to a person" in texts(second)
    assert "Talk to a person" in buttons(second)


def test_a_topic_picked_from_the_fallback_is_answered(stack: Stack, user_id: int) -> None:
    vague = _fallback_messages(stack)
    assert vague
    me = Customer(stack, user_id)
    offered = buttons(me.say(vague[0]))
    title = offered[0]
    key = next(t.key for t in KB.topics if t.examples["en"][0] == title)
    reply = me.press(title)
    assert html.unescape(reply[0].text or "").strip().startswith(answer_text(key))
