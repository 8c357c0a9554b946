"""Earshot's adaptations of Rasa internals (channels.earshot_channel) that exist for speed
must not change a result: run in the Rasa venv, each check compares with Rasa's own way."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RASA_PY = ROOT / ".venv-rasa/bin/python"


def _run(script: str) -> dict[str, Any]:
    if not RASA_PY.exists():
        pytest.skip("needs the Rasa venv (make setup)")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "rasa_project"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [str(RASA_PY), str(ROOT / "tests/rasa_side" / script)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_every_event_type_resolves_as_rasa_resolves_it() -> None:
    result = _run("event_types_check.py")
    assert result["names"] > 20  # user, bot, action, slot, session_started, …
    assert result["mismatches"] == []  # also on the second, cached, lookup
    assert result["default"] == "SlotSet"  # an unknown name falls back to the default
    assert result["topic"] is None  # Rasa's compatibility case for old TopicSet events
    assert "Unknown event name 'no_such_event'" in result["unknown"]
    assert result["round_trip"] == [True, True]


def test_action_results_get_the_verdict_of_rasas_full_schema() -> None:
    # Checked one event branch at a time; valid results and every way an action server
    # could break one.
    result = _run("action_result_check.py")
    assert result["disagreements"] == []
    assert result["cases"] > 60 and 10 < result["valid"] < result["cases"] - 40
