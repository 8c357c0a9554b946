"""PostgreSQL stops mid-flow: the message is spooled locally and nothing is lost."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from earshot.storage.db import session_scope
from earshot.storage.models import Feedback
from tests.chaos.conftest import Parts, running_parts
from tests.chaos.throwaway_pg import ThrowawayPostgres
from tests.e2e.helpers import Customer, finish, texts

REF = re.compile(r"\bLH-[2-9A-HJ-NP-Z]{4}\b")


@pytest.fixture(scope="module")
def pg_parts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Parts, ThrowawayPostgres]]:
    pg = ThrowawayPostgres()
    pg.start()
    try:
        with running_parts(tmp_path_factory.mktemp("chaos-pg"), pg.url) as parts:
            yield parts, pg
    finally:
        pg.destroy()


def _wait_text(parts: Parts, user: int, needle: str, timeout: float = 120.0) -> str:
    def found() -> str | None:
        return next(
            (m.text for m in parts.fake.sent_messages(user) if needle in (m.text or "")), None
        )

    return parts.fake.wait_for(found, timeout=timeout)


def test_postgres_stopped_mid_flow_nothing_lost(
    pg_parts: tuple[Parts, ThrowawayPostgres], record: list
) -> None:
    parts, pg = pg_parts
    me = Customer(parts, 880_001)  # type: ignore[arg-type]
    me.say("/feedback")
    me.press("Not about a product")
    me.press("Other")
    pg.stop()
    text = "Hub firmware updates should run at night"
    assert "kept your message" in texts(me.say(text))
    pg.start()
    me._new(lambda m: "important" in texts(m).lower(), 120)  # the flow goes on: importance
    me.press("Skip")
    ref = finish(me, consent="No")
    with session_scope(parts.db_url) as session:
        rows = session.scalars(select(Feedback).where(Feedback.description == text)).all()
    refs = [r.ref for r in rows]
    lost = 0 if ref in refs else 1
    duplicated = max(0, len(refs) - 1)
    record.append(
        ("stop PostgreSQL mid-flow", "spooled locally, replayed, flow continued", lost, duplicated)
    )
    assert (lost, duplicated) == (0, 0)
