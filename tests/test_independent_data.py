"""The independent evaluation's data: the mapping covers every intent, the split files are
consistent, and no test text (own held-out sets, fresh sets, public test and dev parts)
appears in any training file, compared case-, accent-, punctuation- and space-insensitively.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from earshot.corpora import (
    EXCLUDED,
    INDEPENDENT_DIR,
    OUT_OF_SCOPE,
    SPLITS_DIR,
    datasets_dir,
    normalise,
    read_split,
)

ROOT = Path(__file__).resolve().parent.parent
SPLITS = ROOT / SPLITS_DIR
TEST_PARTS = ("banking77_test", "clinc150_val")
CHIT_CHAT = {"greet", "goodbye", "thanks", "affirm", "deny"}
FRESH = ("fresh_en.yml", "fresh_nl.yml", "fresh_offtopic_nl.yml", "fresh_offtopic_nl_b.yml")


def _nlu_texts(data: Any) -> Iterator[str]:
    """Every user text in a Rasa YAML document: examples of intent blocks (not lookup
    tables, synonyms or regexes, which are features) and user turns of stories."""
    for text, _ in _labelled(data):
        yield text


def _labelled(data: Any, intent: str = "") -> Iterator[tuple[str, str]]:
    """(text, intent) pairs of a Rasa YAML document (see _nlu_texts)."""
    if isinstance(data, dict):
        if "lookup" in data or "synonym" in data or "regex" in data:
            return
        intent = str(data.get("intent") or intent)
        for key, value in data.items():
            if key == "examples" and isinstance(value, str):
                for line in value.splitlines():
                    if line.strip().startswith("- "):
                        yield line.strip()[2:], intent
            elif key == "user" and isinstance(value, str):
                yield value, intent
            else:
                yield from _labelled(value, intent)
    elif isinstance(data, list):
        for item in data:
            yield from _labelled(item, intent)


def _kb_texts(data: Any) -> Iterator[str]:
    """Training examples of a kb/ file (topics[].examples.<lang>[]) or a learned file."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ("examples", "text", "texts", "example", "message"):
                if isinstance(value, str):
                    yield value
                else:
                    yield from _strings(value)
            elif key != "answer":
                yield from _kb_texts(value)
    elif isinstance(data, list):
        for item in data:
            yield from _kb_texts(item)


def _strings(data: Any) -> Iterator[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from _strings(value)
    elif isinstance(data, list):
        for item in data:
            yield from _strings(item)


def _csv_texts(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row.get("text"):
                yield row["text"]


def training_texts(root: Path) -> dict[str, set[str]]:
    """Normalised training texts per file: rasa_project/data/** (generated files included),
    kb/*.yml examples and kb/learned/**."""
    found: dict[str, set[str]] = {}
    for path in sorted((root / "rasa_project/data").rglob("*")):
        if path.suffix in (".yml", ".yaml"):
            texts = _nlu_texts(yaml.safe_load(path.read_text(encoding="utf-8")))
        elif path.suffix == ".csv":
            texts = _csv_texts(path)
        else:
            continue
        found[str(path.relative_to(root))] = {normalise(t) for t in texts}
    kb = [*(root / "kb").glob("*.yml"), *(root / "kb/learned").rglob("*")]
    for path in sorted(kb):
        if path.suffix in (".yml", ".yaml"):
            texts = _kb_texts(yaml.safe_load(path.read_text(encoding="utf-8")))
        elif path.suffix == ".csv":
            texts = _csv_texts(path)
        else:
            continue
        found[str(path.relative_to(root))] = {normalise(t) for t in texts}
    return found


def held_texts(root: Path) -> dict[str, set[str]]:
    """Normalised texts of every NLU test part, minus what the check leaves out on purpose:
    chit-chat (greetings, thanks, yes/no) is bound to coincide ("hallo", "thanks") and
    dropping it from training would hurt real customers; `excluded` rows are not scored."""
    held: dict[str, set[str]] = {}
    own = sorted((root / "rasa_project/tests").glob("*.yml"))
    for path in [*own, *(root / INDEPENDENT_DIR / name for name in FRESH)]:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if "nlu" not in data:
            continue  # story tests replay conversations; they are not NLU test sets
        pairs = _labelled(data)
        texts = {normalise(t) for t, label in pairs if label not in CHIT_CHAT}
        held[str(path.relative_to(root))] = texts
    for part in TEST_PARTS:
        rows = read_split(root / SPLITS_DIR / f"{part}.csv")
        skip = CHIT_CHAT | {EXCLUDED}
        held[part] = {normalise(r["text"]) for r in rows if r["label"] not in skip}
    return held


def leaks(root: Path) -> list[tuple[str, str, str]]:
    """(held part, training file, text) for every held text found in training."""
    training = training_texts(root)
    return [
        (part, file, text)
        for part, texts in held_texts(root).items()
        for file, train in training.items()
        for text in sorted(texts & train)
        if text
    ]


def test_no_test_text_is_in_any_training_file() -> None:
    found = leaks(ROOT)
    assert not found, found[:20]


def test_the_leak_check_finds_a_test_text_copied_into_training(tmp_path: Path) -> None:
    """A copy of the repository's data with one public test question and one fresh Dutch
    question pasted into training files (differently cased and punctuated) must fail."""
    for sub in ("rasa_project/data", "rasa_project/tests", "kb"):
        shutil.copytree(ROOT / sub, tmp_path / sub)
    bank = next(r for r in read_split(SPLITS / "banking77_test.csv") if r["label"] != EXCLUDED)
    dutch = next(_nlu_texts(yaml.safe_load((ROOT / INDEPENDENT_DIR / "fresh_nl.yml").read_text())))
    assert not leaks(tmp_path)
    learned = tmp_path / "kb/learned"
    learned.mkdir(parents=True, exist_ok=True)
    (learned / "assigned.yml").write_text(
        yaml.safe_dump({"examples": [{"text": bank["text"].upper() + "!!", "topic": "x"}]})
    )
    core = tmp_path / "rasa_project/data/nlu/extra.yml"
    core.write_text(
        yaml.safe_dump({"nlu": [{"intent": "out_of_scope", "examples": f"- {dutch.lower()}  ?\n"}]})
    )
    found = {(part, file) for part, file, _ in leaks(tmp_path)}
    assert ("banking77_test", "kb/learned/assigned.yml") in found
    assert (
        "rasa_project/tests/independent/fresh_nl.yml",
        "rasa_project/data/nlu/extra.yml",
    ) in found


def test_fresh_sets_cover_every_topic_in_both_languages() -> None:
    topics = set()
    for path in (ROOT / "kb").glob("*.yml"):
        topics |= {t["key"] for t in (yaml.safe_load(path.read_text()) or {}).get("topics", [])}
    sizes = {}
    for name in FRESH:
        data = yaml.safe_load((ROOT / INDEPENDENT_DIR / name).read_text(encoding="utf-8"))
        blocks = {b["intent"]: list(_nlu_texts(b)) for b in data["nlu"]}
        sizes[name] = sum(map(len, blocks.values()))
        if "offtopic" not in name:
            assert {i.removeprefix("faq/") for i in blocks} == topics, name
    assert sizes["fresh_en.yml"] >= 150
    assert sizes["fresh_nl.yml"] >= 250
    assert sizes["fresh_offtopic_nl.yml"] >= 200
    assert sizes["fresh_offtopic_nl_b.yml"] >= 100


def test_split_parts_do_not_overlap_and_labels_come_from_the_mapping() -> None:
    mapping = yaml.safe_load((ROOT / INDEPENDENT_DIR / "mapping.yml").read_text())
    for source, parts in (
        ("banking77", ("train", "dev", "test")),
        ("clinc150", ("train", "dev", "val")),
    ):
        spec = mapping[source]
        expected = {i: e["target"] for group in ("topics", "core") for i, e in spec[group].items()}
        expected |= {i: EXCLUDED for i in spec["excluded"]}
        expected |= {i: OUT_OF_SCOPE for i in spec["out_of_scope"]}
        seen: dict[str, set[str]] = {}
        for part in parts:
            rows = read_split(SPLITS / f"{source}_{part}.csv")
            assert rows, part
            for row in rows:
                assert row["label"] == expected[row["source_intent"]], row
            seen[part] = {normalise(r["text"]) for r in rows}
        test_part = seen[parts[2]]
        assert not seen["train"] & test_part
        assert not seen["dev"] & test_part
        assert not seen["train"] & seen["dev"]


@pytest.mark.skipif(
    not (datasets_dir(ROOT) / "banking77/train.csv").is_file(),
    reason="the shared public corpora are not on this machine",
)
def test_split_files_are_what_the_split_script_makes_from_the_corpora() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/independent_split.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_the_data_card_counts_match_the_split_files() -> None:
    card = (ROOT / INDEPENDENT_DIR / "SOURCES.md").read_text(encoding="utf-8")
    parts = [f"{src}_{part}" for src in ("banking77", "clinc150") for part in ("train", "dev")]
    parts += ["banking77_test", "clinc150_val"]
    for part in parts:
        rows = read_split(SPLITS / f"{part}.csv")
        kinds = [r["label"] for r in rows]
        topic = sum(k.startswith("faq/") for k in kinds)
        oos, excluded = kinds.count(OUT_OF_SCOPE), kinds.count(EXCLUDED)
        core = len(kinds) - topic - oos - excluded
        assert f"| {part} | {len(rows)} | {topic} | {core} | {oos} | {excluded} |" in card, part
