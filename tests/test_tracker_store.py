"""Rasa's tracker store as Earshot configures it: sessions come back whole and alone, and
the per-turn queries find them through an index (runs in the Rasa venv, SQLite and PostgreSQL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from earshot.cli.supervise import write_endpoints
from earshot.settings import load_settings
from testkit.pgtemp import create_pg_database, drop_pg_database, pg_available
from tests.rasa_venv import RASA_PY, run_rasa_check


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if not RASA_PY.exists():
        pytest.skip("needs the Rasa venv (make setup)")
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'rasa.db'}"
        return
    if not pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI")
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    url = create_pg_database("earshot_tracker")
    try:
        yield url.replace("postgresql+psycopg://", "postgresql://")
    finally:
        drop_pg_database(url)


def _check(url: str) -> dict:
    return dict(run_rasa_check("tracker_store_check.py", url))


def test_the_current_session_comes_back_alone_and_every_event_is_stored(db_url: str) -> None:
    result = _check(db_url)
    assert result["current_texts"] == [f"s2 question {i}" for i in range(20)]
    assert result["full_user_events"] == 60  # earlier sessions are kept, not loaded
    # 3 sessions x (session start, session_started, 20 turns x 4 events); nothing twice
    assert result["stored_rows"] == {"customer-1": 246, "customer-2": 60}
    assert result["indexes"] == ["ix_events_sender_time", "ix_events_sender_type_time"]
    if db_url.startswith("sqlite"):
        # The session-start lookup reads the index, not the customer's every event.
        assert "USING COVERING INDEX ix_events_sender_type_time" in result["max_plan"]
        assert result["synchronous"] == 1  # NORMAL, as for Earshot's own tables
    # 120 saves and 60 loads reuse pooled connections (SQLAlchemy 1.4's SQLite default
    # opened one per session); PostgreSQL is pooled by Rasa already.
    assert result["connects"] <= 4


def test_rasa_is_configured_with_this_store(tmp_path: Path) -> None:
    import yaml

    settings = load_settings()
    path = write_endpoints(settings, tmp_path / "endpoints.yml")
    store = yaml.safe_load(path.read_text())["tracker_store"]
    assert store["type"] == "addons.tracker_store.IndexedSQLTrackerStore"
