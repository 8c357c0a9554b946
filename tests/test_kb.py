"""Knowledge base: the shipped KB, validation errors, and the generated Rasa files."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from earshot.knowledge.kb import (
    GENERATED_HEADER,
    KnowledgeBase,
    KnowledgeBaseError,
    build_rasa_files,
    load_kb,
)
from earshot.knowledge.learned import held_out_texts

ROOT = Path(__file__).resolve().parent.parent
KB_DIR = ROOT / "kb"
TOPIC_KEYS = {
    "order_place", "order_cancel", "order_change", "order_track", "delivery_options",
    "delivery_time", "shipping_address", "returns_refunds", "refund_status",
    "payment_methods", "payment_problem", "invoice", "account_create", "account_delete",
    "account_edit", "password_reset", "registration_problem", "newsletter",
    "contact_support", "warranty", "device_setup", "device_offline", "firmware_update",
    "app_compatibility", "privacy",
}  # fmt: skip


KNOWN_TEST_TEXT = "hi, what's the procedure for buying something on your site?"


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def _nlu_examples(path: Path) -> list[tuple[str, str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        (line.strip()[2:], block["intent"])
        for block in data.get("nlu", [])
        for line in block["examples"].splitlines()
        if line.strip().startswith("- ")
    ]


# --- the shipped KB -------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> KnowledgeBase:
    config = yaml.safe_load((KB_DIR.parent / "config.yml").read_text(encoding="utf-8"))
    return load_kb(KB_DIR, languages=config["languages"])


def test_shipped_kb_has_exactly_the_agreed_topics(shipped: KnowledgeBase) -> None:
    assert {t.key for t in shipped.topics} == TOPIC_KEYS
    assert [t.key for t in shipped.topics] == sorted(TOPIC_KEYS)


def test_shipped_kb_answers_are_plain_and_linked_to_the_company_site(
    shipped: KnowledgeBase,
) -> None:
    for topic in shipped.topics:
        assert len(topic.examples["en"]) >= 15, topic.key
        answer = topic.answer["en"]
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", answer.text) if s]
        assert 2 <= len(sentences) <= 5, (topic.key, len(sentences))
        assert not re.search(r"[*_`]", answer.text), topic.key  # no Markdown: sent as plain text
        for link in answer.links:
            assert link.url.startswith("https://www.lumenhome.example/"), topic.key
    privacy = shipped.topic("privacy").answer["en"].text
    assert "/privacy" in privacy and "/deletemydata" in privacy
    help_text = shipped.responses["utter_help"]["en"].text
    for command in ("/start", "/help", "/feedback", "/myfeedback", "/privacy",
                    "/deletemydata", "/stop", "/language"):  # fmt: skip
        assert command in help_text
    assert "/privacy" in shipped.responses["utter_start"]["en"].text


def test_training_examples_are_unique_across_kb_and_core_nlu(shipped: KnowledgeBase) -> None:
    kb_examples = {_norm(e) for t in shipped.topics for e in t.examples["en"]}
    core = ROOT / "rasa_project/data/nlu/core.yml"
    core_examples = [_norm(text) for text, _ in _nlu_examples(core)]
    assert len(core_examples) == len(set(core_examples))
    assert not kb_examples & set(core_examples)


def test_test_sets_do_not_leak_into_training(shipped: KnowledgeBase) -> None:
    """No held-out question (any language) is a topic example; nor an English core one.

    Dutch chit-chat ("hallo", "dank je wel") is left out of the check: one-word greetings
    are bound to coincide, and dropping them from training would hurt real customers.
    """
    topics = {_norm(e) for t in shipped.topics for ex in t.examples.values() for e in ex}
    core = {_norm(t) for t, _ in _nlu_examples(ROOT / "rasa_project/data/nlu/core.yml")}
    test_files = sorted((ROOT / "rasa_project/tests").glob("*_[a-z][a-z].yml"))
    assert {p.name for p in test_files} >= {"nlu_holdout_en.yml", "nlu_holdout_nl.yml"}
    for path in test_files:
        training = topics | core if path.name.endswith("_en.yml") else topics
        leaked = {text for text, _ in _nlu_examples(path) if _norm(text) in training}
        assert not leaked, (path.name, leaked)


def test_learned_examples_never_come_from_a_test_part(shipped: KnowledgeBase) -> None:
    """kb/learned/ (assigned on the dashboard) holds no text of any test part: every file
    under rasa_project/tests, the independent sets' splits included."""
    held_out = held_out_texts([ROOT / "rasa_project/tests"])
    assert _norm(KNOWN_TEST_TEXT) in held_out  # the check reads the test sets at all
    leaked = {
        text
        for by_key in shipped.learned.values()
        for texts in by_key.values()
        for text in texts
        if _norm(text) in held_out
    }
    assert not leaked


# --- validation -----------------------------------------------------------


def _topic(key: str, n: int = 10, langs: tuple[str, ...] = ("en",)) -> dict[str, Any]:
    return {
        "key": key,
        "examples": {lang: [f"{key} question {i} {lang}" for i in range(n)] for lang in langs},
        "answer": {lang: {"text": f"Answer about {key}. Second sentence."} for lang in langs},
    }


def _company(langs: tuple[str, ...] = ("en",)) -> dict[str, Any]:
    names = ("utter_start", "utter_help", "utter_contact_options")
    return {"responses": {n: {lang: {"text": f"{n} text"} for lang in langs} for n in names}}


def _write(path: Path, data: Any) -> None:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    """A small valid KB: orders.yml (two topics), privacy.yml, company.yml."""
    _write(tmp_path / "orders.yml", {"topics": [_topic("order_track"), _topic("order_cancel")]})
    _write(tmp_path / "privacy.yml", {"topics": [_topic("privacy")]})
    _write(tmp_path / "company.yml", _company())
    return tmp_path


def _expect_error(kb_dir: Path, file: str, entry: str, field: str, **kwargs: Any) -> str:
    with pytest.raises(KnowledgeBaseError) as info:
        load_kb(kb_dir, **kwargs)
    err = info.value
    assert Path(err.file).name == file
    assert err.entry == entry
    assert err.field == field
    message = str(err)
    assert file in message and entry in message and field in message
    return message


def test_minimal_kb_loads(kb_dir: Path) -> None:
    kb = load_kb(kb_dir)
    assert [t.key for t in kb.topics] == ["order_cancel", "order_track", "privacy"]
    assert kb.sources["order_track"].name == "orders.yml"


def test_missing_answer_is_rejected(kb_dir: Path) -> None:
    topic = _topic("order_track")
    del topic["answer"]
    _write(kb_dir / "orders.yml", {"topics": [topic]})
    _expect_error(kb_dir, "orders.yml", "order_track", "answer")


def test_missing_configured_language_is_rejected(kb_dir: Path) -> None:
    message = _expect_error(
        kb_dir, "orders.yml", "order_track", "answer.nl", languages=("en", "nl")
    )
    assert "'nl'" in message


def test_missing_language_in_company_texts_is_rejected(kb_dir: Path) -> None:
    both = ("en", "nl")
    _write(kb_dir / "orders.yml", {"topics": [_topic("order_track", langs=both)]})
    _write(kb_dir / "privacy.yml", {"topics": [_topic("privacy", langs=both)]})
    _expect_error(kb_dir, "company.yml", "utter_contact_options", "answer.nl", languages=both)


def test_duplicate_key_across_files_is_rejected(kb_dir: Path) -> None:
    _write(kb_dir / "returns.yml", {"topics": [_topic("order_track")]})
    message = _expect_error(kb_dir, "returns.yml", "order_track", "key")
    assert "orders.yml" in message  # points at the first definition too


def test_too_few_examples_are_rejected(kb_dir: Path) -> None:
    _write(kb_dir / "orders.yml", {"topics": [_topic("order_track", n=9)]})
    _expect_error(kb_dir, "orders.yml", "order_track", "examples.en")


def test_example_shared_by_two_topics_is_rejected(kb_dir: Path) -> None:
    first, second = _topic("order_track"), _topic("order_cancel")
    first["examples"]["en"][3] = "Where is my order?"
    second["examples"]["en"][5] = "  where is   MY order? "
    _write(kb_dir / "orders.yml", {"topics": [first, second]})
    message = _expect_error(kb_dir, "orders.yml", "order_cancel", "examples.en")
    assert "order_track" in message


def test_malformed_yaml_is_rejected(kb_dir: Path) -> None:
    _write(kb_dir / "orders.yml", "topics:\n  - key: order_track\n    examples: [unclosed\n")
    message = _expect_error(kb_dir, "orders.yml", "-", "-")
    assert "YAML" in message


def test_unknown_field_is_rejected(kb_dir: Path) -> None:
    topic = _topic("order_track")
    topic["answer"]["en"]["txt"] = "typo of text"
    _write(kb_dir / "orders.yml", {"topics": [topic]})
    message = _expect_error(kb_dir, "orders.yml", "order_track", "answer.en.txt")
    assert "unknown field" in message


def test_bad_link_url_is_rejected(kb_dir: Path) -> None:
    topic = _topic("order_track")
    topic["answer"]["en"]["links"] = [{"title": "Track", "url": "lumenhome.example/track"}]
    _write(kb_dir / "orders.yml", {"topics": [topic]})
    _expect_error(kb_dir, "orders.yml", "order_track", "answer.en.links.0.url")


def test_missing_company_response_is_rejected(kb_dir: Path) -> None:
    company = _company()
    del company["responses"]["utter_help"]
    _write(kb_dir / "company.yml", company)
    _expect_error(kb_dir, "company.yml", "utter_help", "responses")


def test_privacy_topic_is_required(kb_dir: Path) -> None:
    (kb_dir / "privacy.yml").unlink()
    with pytest.raises(KnowledgeBaseError, match="privacy"):
        load_kb(kb_dir)


def test_dutch_is_accepted_when_configured(kb_dir: Path) -> None:
    both = ("en", "nl")
    _write(kb_dir / "orders.yml", {"topics": [_topic("order_track", langs=both)]})
    _write(kb_dir / "privacy.yml", {"topics": [_topic("privacy", langs=both)]})
    _write(kb_dir / "company.yml", _company(both))
    kb = load_kb(kb_dir, languages=both)
    assert kb.languages == both
    assert kb.topic("order_track").answer["nl"].text.endswith("Second sentence.")


# --- generator ------------------------------------------------------------


def _read_generated(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    assert text.startswith(GENERATED_HEADER)
    return yaml.safe_load(text)


def test_generator_writes_retrieval_intents_and_responses(
    shipped: KnowledgeBase, tmp_path: Path
) -> None:
    written = build_rasa_files(shipped, tmp_path)
    nlu_path = tmp_path / "data/generated/faq.yml"
    domain_path = tmp_path / "domain/generated/faq.yml"
    assert written == [nlu_path, domain_path]

    nlu = _read_generated(nlu_path)
    intents = {block["intent"]: block["examples"] for block in nlu["nlu"]}
    assert set(intents) == {f"faq/{key}" for key in TOPIC_KEYS}
    examples = [line[2:] for line in intents["faq/order_track"].splitlines()]
    topic = shipped.topic("order_track")
    assert examples == [e for lang in shipped.languages for e in topic.examples[lang]]

    domain = _read_generated(domain_path)
    assert "intents" not in domain  # declared once, in the hand-written domain
    responses = domain["responses"]
    assert {f"utter_faq/{key}" for key in TOPIC_KEYS} <= set(responses)
    assert {"utter_privacy", "utter_start", "utter_help", "utter_contact_options"} <= set(responses)
    assert list(responses) == sorted(responses)
    privacy = shipped.topic("privacy").answer["en"]
    assert responses["utter_privacy"] == responses["utter_faq/privacy"]
    assert responses["utter_privacy"][-1]["text"] == privacy.text  # default: unconditional
    track = responses["utter_faq/order_track"][-1]
    link = shipped.topic("order_track").answer["en"].links[0]
    assert {"title": link.title, "payload": link.url} in track["buttons"]
    assert "condition" not in track  # single language: no slot conditions


def test_generator_is_deterministic_and_skips_unchanged_files(
    shipped: KnowledgeBase, tmp_path: Path
) -> None:
    first = build_rasa_files(shipped, tmp_path)
    contents = [p.read_bytes() for p in first]
    for path in first:
        os.utime(path, (1_000_000, 1_000_000))
    assert build_rasa_files(shipped, tmp_path) == []
    assert [p.read_bytes() for p in first] == contents
    assert all(p.stat().st_mtime == 1_000_000 for p in first)


def test_generator_adds_language_conditions_for_extra_languages(
    kb_dir: Path, tmp_path: Path
) -> None:
    both = ("en", "nl")
    _write(kb_dir / "orders.yml", {"topics": [_topic("order_track", langs=both)]})
    _write(kb_dir / "privacy.yml", {"topics": [_topic("privacy", langs=both)]})
    _write(kb_dir / "company.yml", _company(both))
    build_rasa_files(load_kb(kb_dir, languages=both), tmp_path)
    domain = _read_generated(tmp_path / "domain/generated/faq.yml")
    variations = domain["responses"]["utter_faq/order_track"]
    assert variations[0]["condition"] == [{"type": "slot", "name": "language", "value": "nl"}]
    assert "condition" not in variations[-1]  # default language answers everyone else
    nlu = _read_generated(tmp_path / "data/generated/faq.yml")
    # One multilingual model: each topic is trained on the examples of every language.
    endings = {line.rsplit(" ", 1)[-1] for line in nlu["nlu"][0]["examples"].splitlines()}
    assert endings == {"en", "nl"}
    start = domain["responses"]["utter_start"]
    offered = {v.get("condition", [{}])[0].get("value", "en"): v["buttons"] for v in start}
    assert offered["en"][-1] == {
        "title": "Nederlands",
        "payload": '/set_language{{"language": "nl"}}',
    }
    assert offered["nl"][-1]["title"] == "English"


def test_checked_in_generated_files_are_up_to_date(shipped: KnowledgeBase, tmp_path: Path) -> None:
    build_rasa_files(shipped, tmp_path)
    for rel in ("data/generated/faq.yml", "domain/generated/faq.yml"):
        current = ROOT / "rasa_project" / rel
        if current.exists():
            assert current.read_text() == (tmp_path / rel).read_text(), f"run the KB build: {rel}"
