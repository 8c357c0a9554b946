"""The independent evaluation's scoring: what a customer got, per message and per set,
and the report `make eval` prints, driven by a fake parser (no model needed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ev() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "eval_independent", ROOT / "scripts/eval_independent.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def test_outcomes_separate_wrong_answers_from_questions_back(ev: ModuleType) -> None:
    p = ev.Parsed
    offered = ("faq/order_track", "faq/delivery_time")
    track = "faq/order_track"
    assert ev.outcome(track, p(track, 0.9, offered)) == "right"
    assert ev.outcome(track, p("faq/returns_refunds", 0.95, offered)) == "wrong_topic"
    assert ev.outcome(track, p("nlu_fallback", 0.6, offered)) == "asked_back"
    assert ev.outcome(track, p("nlu_fallback", 0.6, ("faq/invoice",))) == "fallback"
    assert ev.outcome(track, p("out_of_scope", 0.8, offered)) == "declined"
    assert ev.outcome(track, p("feedback_problem", 0.8, offered)) == "other_intent"
    assert ev.outcome("out_of_scope", p("nlu_fallback", 0.6, offered)) == "fallback"
    assert ev.outcome("out_of_scope", p("faq/order_place", 0.88, ())) == "answered_topic"
    assert ev.outcome("greet", p("greet", 0.9, ())) == "right"


def _fake_parser(ev: ModuleType, answers: dict[str, str]) -> object:
    """Answers a topic only for the given texts; everything else goes to out_of_scope."""

    def parse_all(texts: list[str]) -> list[object]:
        return [
            ev.Parsed(answers.get(t, "out_of_scope"), 0.95, ("faq/order_track",)) for t in texts
        ]

    return parse_all


def test_a_model_that_declines_everything_misses_the_service_targets(ev: ModuleType) -> None:
    summary = ev.evaluate(_fake_parser(ev, {}), ROOT, "fake")
    res = summary["independent"]
    assert res["fresh_nl"]["right_topic"] == 0.0
    assert res["fresh_nl"]["wrongly_declined"] == 1.0
    assert res["clinc150_val oos"]["declined"] == 1.0
    assert res["clinc150_val oos"]["examples"] == 100
    assert res["clinc150_val other domains"]["examples"] > 2000
    checks = summary["checks"]
    assert not checks["right topic, Dutch (fresh_nl)"]["ok"]
    assert checks["declined, CLINC150 val out-of-scope"]["ok"]
    report = ev.markdown(summary)
    assert "| declined, CLINC150 val out-of-scope | 100.0% | >= 85% | yes |" in report
    assert "| right topic, Dutch (fresh_nl) | 0.0% | >= 88% | NO |" in report
    assert "/work/" not in report and str(ROOT) not in report


def test_wrong_topics_are_counted_and_shown_with_their_confidence(ev: ModuleType) -> None:
    sets = ev.independent_sets(ROOT)
    fresh = sets["fresh_en"]["examples"]
    # Every English question answered right except the first, which gets the wrong answer.
    answers = {t: label for t, label in fresh}
    first_text, first_label = fresh[0]
    wrong = "faq/invoice" if first_label != "faq/invoice" else "faq/warranty"
    answers[first_text] = wrong
    summary = ev.evaluate(_fake_parser(ev, answers), ROOT, "fake")
    result = summary["independent"]["fresh_en"]
    n = len(fresh)
    assert result["right_topic"] == round((n - 1) / n, 4)
    assert result["wrong_topic"] == round(1 / n, 4)
    assert result["wrong_topic_confident"] == round(1 / n, 4)
    assert result["errors"] == [
        {"text": first_text, "target": first_label, "got": wrong, "confidence": 0.95}
    ]
    assert f'"{first_text}" ({first_label}) -> {wrong} (0.95)' in ev.markdown(summary)


def test_the_dev_parts_are_scored_apart_from_the_test_parts(ev: ModuleType) -> None:
    summary = ev.evaluate(_fake_parser(ev, {}), ROOT, "fake", dev=True)
    assert summary["checks"] == {} and summary["own"] == {}
    assert set(summary["independent"]) == set(ev.dev_sets(ROOT))
    assert summary["independent"]["dev topics"]["examples"] > 50
    dev_texts = {t for s in ev.dev_sets(ROOT).values() for t, _ in s["examples"]}
    test_texts = {t for s in ev.independent_sets(ROOT).values() for t, _ in s["examples"]}
    assert not dev_texts & test_texts
    assert ev.markdown(summary).startswith("# Dev parts, for tuning (not a result) evaluation")
