"""Several Rasa servers share one Redis lock store: two processes taking the lock of the
same conversation must never be inside it at once, and none may be refused or hang."""

from __future__ import annotations

import os

import pytest
import redis

from tests.rasa_venv import RASA_PY, run_rasa_check

REDIS_URL = os.environ.get("EARSHOT_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping())
    except redis.RedisError:
        return False


@pytest.mark.skipif(not RASA_PY.exists(), reason="needs the Rasa venv (make setup)")
def test_two_servers_never_hold_one_conversation_at_once() -> None:
    if not _redis_up():
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {REDIS_URL}")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    counts = run_rasa_check("lock_race.py", REDIS_URL, "100", timeout=600)
    assert counts == {"ok": 200, "overlap": 0, "lockerror": 0, "hang": 0}
