"""Several Rasa servers share one Redis lock store: two processes taking the lock of the
same conversation must never be inside it at once, and none may be refused or hang."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent
RASA_PY = ROOT / ".venv-rasa/bin/python"
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
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'rasa_project'}"}
    out = subprocess.run(
        [str(RASA_PY), str(ROOT / "tests/rasa_side/lock_race.py"), REDIS_URL, "100"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    assert counts == {"ok": 200, "overlap": 0, "lockerror": 0, "hang": 0}
