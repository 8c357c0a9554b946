"""A long conversation rolls over into new Rasa sessions without the customer noticing.

The stack runs with session_max_events 60 (testkit/stack.py), so every end-to-end
flow also crosses session rollovers; this test checks one on purpose.
"""

from __future__ import annotations

import html

import yaml
from sqlalchemy import text

from earshot.knowledge.kb import load_kb
from earshot.settings import ROOT
from earshot.storage.db import session_scope
from testkit.stack import Stack
from tests.e2e.helpers import Customer, buttons, feedback_rows, give_feedback, texts

KB = load_kb(ROOT / "kb")
TOPICS = [t.key for t in KB.topics][:10]


def sessions(stack: Stack, key: str) -> int:
    with session_scope(stack.db_url) as session:
        query = text("SELECT count(*) FROM events WHERE sender_id = :k AND type_name = :t")
        return int(session.execute(query, {"k": key, "t": "session_started"}).scalar_one())


def domain_slot_count() -> int:
    files = (ROOT / "rasa_project" / "domain").rglob("*.yml")
    return sum(
        len((yaml.safe_load(f.read_text(encoding="utf-8")) or {}).get("slots") or {}) for f in files
    )


def carried_over(stack: Stack, key: str) -> list[int]:
    """Slot events each new session starts with (Rasa's action_session_start copies)."""
    with session_scope(stack.db_url) as session:
        query = text("SELECT type_name FROM events WHERE sender_id = :k ORDER BY id")
        kinds = list(session.execute(query, {"k": key}).scalars())
    counts = []
    for i, kind in enumerate(kinds):
        if kind == "session_started":
            n = 0
            while i + 1 + n < len(kinds) and kinds[i + 1 + n] == "slot":
                n += 1
            counts.append(n)
    return counts


def test_a_long_conversation_keeps_its_memory_across_session_rollovers(
    stack: Stack, user_id: int
) -> None:
    me = Customer(stack, user_id)
    for topic in TOPICS:
        reply = me.say(KB.topic(topic).examples["en"][0])
        answer = KB.topic(topic).answer["en"].text.strip()
        assert html.unescape(reply[0].text or "").strip().startswith(answer)
        assert {"👍 Yes", "👎 No"} <= set(buttons(reply))
        assert "glad" in texts(me.press("👍 Yes")).lower()
        me.settle(0.3)  # the feedback ask may follow a vote; it is not part of this test
    started = sessions(stack, me.key)
    assert started >= 3, f"only {started} sessions: the conversation never rolled over"
    # Each new session carries every slot's value once, not every change ever made:
    # copies of copies would make each session longer than the last until every turn
    # rolled over (and each turn slower than the one before).
    assert max(carried_over(stack, me.key)) <= domain_slot_count()
    assert started <= 8, f"{started} sessions for 20 turns: sessions roll over too often"

    # Slots survived: a topic already rated is not asked about again, ...
    again = me.say(KB.topic(TOPICS[0]).examples["en"][1])
    again += me.settle(0.5)
    assert "Did that help?" not in texts(again)
    # ... and a feedback flow started after the rollovers completes and is stored.
    reference = give_feedback(me, "The strip's colours drift after an hour, please fix that")
    rows = feedback_rows(stack, ref=reference)
    assert [(r.customer_key, r.description) for r in rows] == [
        (me.key, "The strip's colours drift after an hour, please fix that")
    ]
