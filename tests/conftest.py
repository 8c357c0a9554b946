"""Shared fixtures: throwaway databases on SQLite and PostgreSQL, rolled back per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session

from earshot.storage.db import make_engine, migrate, session_scope
from earshot.storage.models import Feedback, IntegrationEvent
from testkit.pgtemp import PG_ADMIN_URL, create_pg_database, drop_pg_database, pg_available

__all__ = ["PG_ADMIN_URL", "_pg_available", "create_pg_database", "drop_pg_database"]
_pg_available = pg_available  # the name other test modules import


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A migrated PostgreSQL database of this test session, dropped at the end."""
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI")
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    url = create_pg_database()
    migrate(url)
    yield url
    from earshot.storage.db import engine_for

    engine_for.cache_clear()
    drop_pg_database(url)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'earshot.db'}"
    migrate(url)
    return url


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def committing_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database of the test module's own, once per backend, for code under test
    that commits (the dashboard, the CLI): tests of other modules never see its rows."""
    from earshot.storage.db import engine_for

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('own') / 'earshot.db'}"
    else:
        request.getfixturevalue("pg_url")  # skips when PostgreSQL is not running
        url = create_pg_database()
    migrate(url)
    yield url
    engine_for(url).dispose()
    if request.param == "postgresql":
        drop_pg_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The URL of a migrated database, once per backend."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work, commits included, is rolled back after the test."""
    with engine.connect() as conn:
        trans = conn.begin()
        with Session(bind=conn, join_transaction_mode="create_savepoint") as s:
            yield s
        trans.rollback()


@pytest.fixture
def no_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No config.yml: each test says its settings (the shipped ones would merge into them).
    For modules that ask for it: `pytestmark = pytest.mark.usefixtures("no_config_file")`."""
    monkeypatch.setenv("EARSHOT_CONFIG", str(tmp_path / "absent.yml"))


def empty_items_and_events(db_url: str) -> None:
    """Delete every feedback item and integration event (in a committing_db between tests
    of the integrations: each starts with nothing to deliver)."""
    with session_scope(db_url) as s:
        s.execute(delete(IntegrationEvent))
        s.execute(delete(Feedback))
