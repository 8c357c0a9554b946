"""The pipeline's FlatIntentClassifier: topics are classes of their own, "faq" is their sum,
and its topic opinion is averaged with the ResponseSelector's (runs in the Rasa venv)."""

from __future__ import annotations

import pytest

from tests.rasa_venv import run_rasa_check


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return dict(run_rasa_check("flat_classifier_check.py", str(tmp_path_factory.mktemp("flat"))))


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


def test_without_a_response_selector_it_picks_the_topic_itself(result: dict) -> None:
    """`utter_faq` reads Rasa's selector output, which the classifier now writes alone."""
    alone = result["alone"]
    assert result["alone_intent"] == "faq"
    assert alone["all_retrieval_intents"] == ["faq"]
    response = alone["faq"]["response"]
    assert response["intent_response_key"] == "faq/order_track"
    assert response["utter_action"] == "utter_faq/order_track"
    assert response["responses"] == [{"text": "Track it here."}]
    assert response["confidence"] > 0.9


def test_close_topics_go_to_the_fallback_which_offers_both(result: dict) -> None:
    """A question back beats a confident wrong answer: the fallback shows the top two."""
    assert result["close_intent"]["name"] == "nlu_fallback"
    assert result["close_first_intents"] == ["nlu_fallback", "faq"]
    topics = {r["intent_response_key"] for r in result["close_ranking"][:2]}
    assert topics == {"faq/order_track", "faq/refund_status"}
    assert result["clear_with_margin"] == "faq"  # a clear question is still answered
