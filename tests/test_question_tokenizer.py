"""The pipeline's QuestionTokenizer: training questions are tokenized and featurised as
Rasa does, without the FAQ answer Rasa copies onto each of them (runs in the Rasa venv)."""

from __future__ import annotations

from pathlib import Path

from tests.rasa_venv import run_rasa_check


def test_answers_are_not_featurised_and_still_served(tmp_path: Path) -> None:
    result = run_rasa_check("tokenizer_check.py", str(tmp_path))
    assert result["copied_answer"].startswith("You can track")  # what Rasa would featurise
    assert result["response_after"] is None
    assert result["tokens"] == ["where", "is", "my", "parcel"]
    assert result["text_features"] == 2  # sequence and sentence features of the question
    assert "response" not in result["vocabularies"] and "text" in result["vocabularies"]
    assert result["responses_kept"]["utter_faq/order_track"][0]["text"].startswith("You can")


def test_redaction_labels_are_not_read_as_words(tmp_path: Path) -> None:
    """`[email]` stands for an address the model never saw: not for the word "email"."""
    result = run_rasa_check("tokenizer_check.py", str(tmp_path))
    assert result["redacted_tokens"] == ["my", "email", "is", "card", "and"]
    assert result["only_label_tokens"] == ["phone"]  # a message needs a token
