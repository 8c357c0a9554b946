"""Run a check script of tests/rasa_side in the Rasa venv (rasa 3.6 cannot share this
venv) and read the JSON result it prints last."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RASA_PY = ROOT / ".venv-rasa/bin/python"


def run_rasa_check(script: str, *args: str, timeout: float = 300) -> Any:
    """The script's last stdout line as JSON; skips without the Rasa venv, fails on exit != 0."""
    if not RASA_PY.exists():
        pytest.skip("needs the Rasa venv (make setup)")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "rasa_project"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [str(RASA_PY), str(ROOT / "tests/rasa_side" / script), *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])
