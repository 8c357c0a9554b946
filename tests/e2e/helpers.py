"""Conversation helpers for end-to-end tests through the fake Bot API."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from earshot.storage.db import session_scope
from earshot.storage.models import Feedback
from testkit.stack import Stack
from testkit.telegram_api import SentMessage

REF = re.compile(r"\bLH-[2-9A-HJ-NP-Z]{4}\b")


class Customer:
    """A simulated Telegram customer: says things, presses buttons, reads replies."""

    def __init__(self, stack: Stack, user_id: int, language_code: str = "en") -> None:
        self.stack = stack
        self.fake = stack.fake
        self.user_id = user_id
        self.language_code = language_code
        # Only what the bot sends from now on: a shared user (the team member) may have
        # been sent things by earlier tests.
        self.seen = len(
            [m for m in self.fake.sent_messages(user_id) if m.method != "editMessageText"]
        )

    @property
    def key(self) -> str:
        return self.stack.key(self.user_id)

    def _new(self, until: Callable[[list[SentMessage]], bool], timeout: float) -> list[SentMessage]:
        def ready() -> list[SentMessage] | None:
            msgs = [
                m for m in self.fake.sent_messages(self.user_id) if m.method != "editMessageText"
            ]
            fresh = msgs[self.seen :]
            return fresh if fresh and until(fresh) else None

        try:
            fresh = self.fake.wait_for(ready, timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.stack.log}") from None
        self.seen += len(fresh)
        return fresh

    def say(self, text: str, *, expect: int = 1, timeout: float = 30.0) -> list[SentMessage]:
        """Send a text and wait for at least `expect` new bot messages."""
        self.fake.send_text(self.user_id, text, language_code=self.language_code)
        return self._new(lambda m: len(m) >= expect, timeout)

    def press(
        self, button_text: str, *, expect: int = 1, timeout: float = 30.0
    ) -> list[SentMessage]:
        self.fake.press_button_by_text(self.user_id, button_text)
        return self._new(lambda m: len(m) >= expect, timeout)

    def settle(self, wait: float = 1.0) -> list[SentMessage]:
        """Collect any further messages that arrive within `wait` seconds."""
        import time

        time.sleep(wait)
        msgs = [m for m in self.fake.sent_messages(self.user_id) if m.method != "editMessageText"]
        fresh = msgs[self.seen :]
        self.seen += len(fresh)
        return fresh


def texts(messages: list[SentMessage]) -> str:
    return "\n".join(m.text or "" for m in messages)


def buttons(messages: list[SentMessage]) -> list[str]:
    return [t for m in messages for t in m.button_texts]


def feedback_rows(stack: Stack, **where: Any) -> list[Feedback]:
    with session_scope(stack.db_url) as session:
        stmt = select(Feedback)
        for k, v in where.items():
            stmt = stmt.where(getattr(Feedback, k) == v)
        return list(session.scalars(stmt.order_by(Feedback.id)).all())


def plain(messages: list[SentMessage]) -> str:
    return html.unescape(texts(messages))


def ref_in(messages: list[SentMessage]) -> str:
    found = REF.search(texts(messages))
    assert found, texts(messages)
    return found.group(0)


def finish(me: Customer, *, consent: str = "Yes") -> str:
    """Answer the consent question, check the summary, confirm; returns the reference."""
    summary = me.press(consent)
    assert "Confirm" in buttons(summary) and "Cancel" in buttons(summary)
    done = me.press("Confirm")
    assert "Thank you" in texts(done)
    return ref_in(done)


def give_feedback(me: Customer, text: str) -> str:
    """The shortest complete pass through the form (kind Other, no product, no follow-up);
    returns the reference. For tests that need an item but not the flow."""
    me.say("/feedback")
    me.press("Not about a product")
    me.press("Other")
    me.say(text)
    me.press("Skip")  # importance
    return finish(me, consent="No")
