"""A long conversation rolls over into new Rasa sessions without the customer noticing.

The stack runs with session_max_events 60 (tests/stack.py), so every end-to-end
flow also crosses session rollovers; this test checks one on purpose.
"""

from __future__ import annotations

import html

from sqlalchemy import text

from earshot.kb import load_kb
from earshot.settings import ROOT
from earshot.storage.db import session_scope
from tests.e2e.helpers import Customer, buttons, feedback_rows, give_feedback, texts
from tests.stack import Stack

KB = load_kb(ROOT / "kb")
TOPICS = [t.key for t in KB.topics][:10]


def sessions(stack: Stack, key: str) -> int:
    with session_scope(stack.db_url) as session:
        query = text("SELECT count(*) FROM events WHERE sender_id = :k AND type_name = :t")
        return int(session.execute(query, {"k": key, "t": "session_started"}).scalar_one())


def test_a_long_conversation_keeps_its_memory_across_session_rollovers(
    stack: Stack, user_id: int
) -> None:
    me = Customer(stack, user_id)
    for topic in TOPICS:
        reply = me.say(KB.topic(topic).examples["en"][0], expect=2)
        assert (
            html.unescape(reply[0].text or "").strip() == KB.topic(topic).answer["en"].text.strip()
        )
        assert {"👍 Yes", "👎 No"} <= set(buttons(reply))
        assert "glad" in texts(me.press("👍 Yes")).lower()
        me.settle(0.3)  # the feedback ask may follow a vote; it is not part of this test
    started = sessions(stack, me.key)
    assert started >= 3, f"only {started} sessions: the conversation never rolled over"

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
