"""Status notices are not lost when Rasa is unavailable: the claim goes back, the batch stops."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from earshot.gateway.model import Purpose, Reply, Sent
from earshot.gateway.outreach import send_notifications
from earshot.gateway.rasa import RasaUnavailable
from earshot.gateway.service import Gateway
from earshot.settings import load_settings
from earshot.storage.db import migrate, session_scope
from earshot.storage.models import Customer, Feedback, Notification


@dataclass
class FlakyRasa:
    """Rasa's trigger_intent, down until told otherwise; counts the calls it got."""

    up: bool = False
    calls: int = 0

    async def trigger_intent(
        self, sender: str, intent: str, entities: dict[str, Any]
    ) -> list[dict[str, Any]]:
        self.calls += 1
        if not self.up:
            raise RasaUnavailable("connection refused")
        return [{"text": f"Your idea {entities['ref']} is now {entities['status']}"}]


@dataclass
class FakeBot:
    """A channel that records what it was asked to send."""

    name: str = "telegram"
    sent: list[tuple[int, str]] = field(default_factory=list)
    purposes: list[Purpose] = field(default_factory=list)

    async def send(
        self, chat_id: str, replies: list[Reply], *, purpose: Purpose, language: str
    ) -> Sent:
        self.sent += [(int(chat_id), r.text) for r in replies]
        self.purposes.append(purpose)
        return Sent()


@pytest.fixture
def deps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    monkeypatch.setenv("EARSHOT_CONFIG", str(tmp_path / "none.yml"))
    url = f"sqlite:///{tmp_path / 'n.db'}"
    migrate(url)
    with session_scope(url) as s:
        for i in range(3):
            key = f"customer{i}".ljust(32, "0")
            s.add(Customer(user_key=key, channel="telegram", chat_id=str(5000 + i)))
            item = Feedback(
                ref=f"LH-NT{i}A",
                channel="telegram",
                source="chat",
                type="idea",
                category="innovation",
                description=f"idea {i}",
                customer_key=key,
            )
            s.add(item)
            s.flush()
            s.add(Notification(feedback_id=item.id, customer_key=key, status="planned"))
    settings = load_settings(database_url=url, data_dir=tmp_path, earshot_secret="x" * 32)
    return Gateway(settings, rasa=FlakyRasa())  # type: ignore[arg-type]


def _unsent(d: Gateway) -> int:
    with session_scope(d.settings.db_url) as s:
        return len(s.scalars(select(Notification).where(Notification.sent_at.is_(None))).all())


def test_notices_wait_while_rasa_is_down_and_go_out_once_when_it_is_back(deps: Gateway) -> None:
    rasa: FlakyRasa = deps.rasa  # type: ignore[assignment]
    bot = FakeBot()
    assert asyncio.run(send_notifications(deps, bot)) == 0
    assert rasa.calls == 1  # the batch stopped at the first failure
    assert _unsent(deps) == 3 and bot.sent == []  # nothing was marked sent

    rasa.up = True
    assert asyncio.run(send_notifications(deps, bot)) == 3
    assert asyncio.run(send_notifications(deps, bot)) == 0
    assert sorted(chat for chat, _ in bot.sent) == [5000, 5001, 5002]  # each told once
    assert all("is now planned" in text for _, text in bot.sent)
    assert _unsent(deps) == 0
    assert bot.purposes == [Purpose.NOTICE] * 3
