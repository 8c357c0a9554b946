"""The pipeline's FlatIntentClassifier: topics are classes of their own, "faq" is their sum,
and its topic opinion is averaged with the ResponseSelector's (runs in the Rasa venv)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RASA_PY = ROOT / ".venv-rasa/bin/python"


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    if not RASA_PY.exists():
        pytest.skip("needs the Rasa venv (make setup)")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "rasa_project"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [str(RASA_PY), str(ROOT / "tests/rasa_side/flat_classifier_check.py"),
         str(tmp_path_factory.mktemp("flat"))],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_faq_is_one_intent_whose_confidence_sums_its_topics(result: dict) -> None:
    assert result["intent"]["name"] == "faq"
    assert result["intent"]["confidence"] > 0.9
    assert result["intent_names"] == ["faq", "feedback_complaint"]  # no faq/<topic> leaks


def test_a_small_intent_beside_thousands_of_faq_examples_is_still_recognised(result: dict) -> None:
    assert result["complaint_intent"] == "feedback_complaint"


def test_the_topic_is_re_ranked_by_the_average_of_both_models(result: dict) -> None:
    response = result["response"]
    assert response["intent_response_key"] == "faq/order_track"
    assert response["utter_action"] == "utter_faq/order_track"
    assert response["responses"] == [{"text": "Track it here."}]
    ranking = result["ranking"]
    assert [r["intent_response_key"] for r in ranking] == ["faq/order_track", "faq/refund_status"]
    assert ranking[0]["confidence"] == response["confidence"]
    assert abs(sum(r["confidence"] for r in ranking) - 1.0) < 1e-6
    assert ranking[0]["id"] == 2  # the selector's ids are kept


def test_only_the_topic_responses_are_saved_with_the_model(result: dict) -> None:
    assert result["responses_kept"] == ["utter_faq/order_track", "utter_faq/refund_status"]
    assert result["column_major"] and result["same_probabilities"]


def test_the_loaded_model_predicts_as_the_trained_one_without_pickle_or_skops(
    result: dict,
) -> None:
    assert result["loaded_as_trained"]
    assert result["saved_files"] == ["responses.json", "weights.npz"]
    assert result["old_format_as_trained"]  # models saved in Rasa's skops format still load
