"""The pipeline's SentenceResponseSelector gives Rasa's ResponseSelector's answers, to the
last digit, with one input layer fewer (runs in the Rasa venv)."""

from __future__ import annotations

import pytest

from tests.rasa_venv import run_rasa_check

UNITS = 32  # the check's dense_dimension for text


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return dict(run_rasa_check("selector_check.py", str(tmp_path_factory.mktemp("selector"))))


def test_it_answers_exactly_as_rasas_selector_before_and_after_loading(result: dict) -> None:
    for question, answers in result["questions"].items():
        assert answers["ours"] == answers["stock"], question
        assert answers["loaded"] == answers["stock"], question


def test_the_answers_are_trained_ones(result: dict) -> None:
    def top(question: str) -> str:
        ranking = result["questions"][question]["ours"]
        return str(max(ranking, key=ranking.get))

    assert top("where is my order") == "faq/order_track"
    assert top("my refund has not arrived") == "faq/refund_status"
    assert top("broken lamp warranty") == "faq/warranty"


def test_the_token_input_layer_is_gone(result: dict) -> None:
    # Rasa's token layer is vocabulary x units; ours is the one-column placeholder.
    saved = result["weights"]["stock"] - result["weights"]["ours"]
    assert saved == (result["vocabulary"] - 1) * UNITS


def test_a_transformer_that_would_read_the_empty_tokens_is_refused(result: dict) -> None:
    assert "number_of_transformer_layers" in str(result["transformer_refused"])
