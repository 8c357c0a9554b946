"""Faults against the real processes: nothing a customer sends may be lost."""

from __future__ import annotations

import re
import time

from sqlalchemy import select

from earshot.storage.db import session_scope
from earshot.storage.models import Feedback
from tests.chaos.conftest import Parts

REF = re.compile(r"\bLH-[2-9A-HJ-NP-Z]{4}\b")
_ids = iter(range(700_001, 800_000))


def _wait_text(parts: Parts, user_id: int, needle: str, timeout: float = 90.0) -> str:
    def found() -> str | None:
        for m in parts.fake.sent_messages(user_id):
            if needle in (m.text or ""):
                return m.text
        return None

    return parts.fake.wait_for(found, timeout=timeout)


def _stored(parts: Parts, text: str) -> list[Feedback]:
    with session_scope(parts.db_url) as session:
        return list(session.scalars(select(Feedback).where(Feedback.description == text)).all())


def test_rasa_killed_message_kept_and_answered_when_back(parts: Parts, record: list) -> None:
    user = next(_ids)
    parts.fake.send_text(user, "/feedback")
    _wait_text(parts, user, "product team")
    parts.kill("rasa")
    text = "The thermostat app should show humidity"
    parts.fake.send_text(user, text)
    _wait_text(parts, user, "kept your message")
    parts.start("rasa")
    reply = _wait_text(parts, user, "reference")
    assert REF.search(reply)
    lost = 0 if len(_stored(parts, text)) == 1 else 1
    record.append(("kill Rasa mid-flow", "kept, replayed, flow continued", lost))
    assert lost == 0


def test_action_server_killed_message_kept_and_flow_continues(parts: Parts, record: list) -> None:
    user = next(_ids)
    parts.fake.send_text(user, "/feedback")
    _wait_text(parts, user, "product team")
    parts.kill("actions")
    text = "Doorbell chime volume should be adjustable"
    parts.fake.send_text(user, text)
    _wait_text(parts, user, "kept your message")
    parts.start("actions")
    reply = _wait_text(parts, user, "reference")
    assert REF.search(reply)
    lost = 0 if len(_stored(parts, text)) == 1 else 1
    record.append(("kill action server mid-flow", "kept, replayed, flow continued", lost))
    assert lost == 0


def test_telegram_429s_are_retried_and_delivered_once(parts: Parts, record: list) -> None:
    user = next(_ids)
    parts.fake.inject_error("sendMessage", count=2, error_code=429, retry_after=1)
    parts.fake.send_text(user, "/help")
    _wait_text(parts, user, "/privacy")
    time.sleep(1.5)
    helps = [m for m in parts.fake.sent_messages(user) if "/privacy" in (m.text or "")]
    lost = 0 if len(helps) == 1 else 1
    record.append(("429 Too Many Requests x2", f"retried, delivered {len(helps)}x", lost))
    assert len(helps) == 1


def test_redelivered_update_processed_once(parts: Parts, record: list) -> None:
    user = next(_ids)
    update_id = parts.fake.send_text(user, "/help")
    _wait_text(parts, user, "/privacy")
    parts.fake.redeliver(update_id)
    time.sleep(2)
    helps = [m for m in parts.fake.sent_messages(user) if "/privacy" in (m.text or "")]
    record.append(("update redelivered", f"processed {len(helps)}x", 0 if len(helps) == 1 else 1))
    assert len(helps) == 1


def test_bot_restarted_mid_flow_resumes(parts: Parts, record: list) -> None:
    user = next(_ids)
    parts.fake.send_text(user, "/feedback")
    _wait_text(parts, user, "product team")
    parts.stop("bot")
    text = "Plug energy report should be exportable"
    parts.fake.send_text(user, text)  # waits at "Telegram" while the bot is down
    parts.start("bot")
    reply = _wait_text(parts, user, "reference")
    assert REF.search(reply)
    lost = 0 if len(_stored(parts, text)) == 1 else 1
    record.append(("restart the bot mid-flow", "resumed where it was", lost))
    assert lost == 0
