"""The pipeline's QuestionTokenizer: training questions are tokenized and featurised as
Rasa does, without the FAQ answer Rasa copies onto each of them (runs in the Rasa venv)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RASA_PY = ROOT / ".venv-rasa/bin/python"


def test_answers_are_not_featurised_and_still_served(tmp_path: Path) -> None:
    if not RASA_PY.exists():
        pytest.skip("needs the Rasa venv (make setup)")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "rasa_project"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [str(RASA_PY), str(ROOT / "tests/rasa_side/tokenizer_check.py"), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["copied_answer"].startswith("You can track")  # what Rasa would featurise
    assert result["response_after"] is None
    assert result["tokens"] == ["where", "is", "my", "parcel"]
    assert result["text_features"] == 2  # sequence and sentence features of the question
    assert "response" not in result["vocabularies"] and "text" in result["vocabularies"]
    assert result["responses_kept"]["utter_faq/order_track"][0]["text"].startswith("You can")
