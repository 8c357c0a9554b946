"""Throwaway PostgreSQL databases with random names, for the tests and the benchmarks.

Plain psycopg, no pytest: `scripts/bench_export.py` imports this too. The server is the
one at EARSHOT_TEST_PG (default: postgres@127.0.0.1:5432, database `test`).
"""

from __future__ import annotations

import os
import uuid

PG_ADMIN_URL = os.environ.get(
    "EARSHOT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _admin_dsn() -> str:
    return PG_ADMIN_URL.replace("+psycopg", "")


def pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(_admin_dsn(), connect_timeout=3):
            return True
    except Exception:
        return False


def create_pg_database(prefix: str = "earshot_test") -> str:
    """A new, empty PostgreSQL database with a random name; returns its URL."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
