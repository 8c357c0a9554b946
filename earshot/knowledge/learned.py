"""Learned training examples: what the team assigned from the Misunderstood queue.

One reviewable YAML file per language under ``<kb>/learned/`` (``kb/learned/en.yml``)::

    payment_problem:            # a KB topic -> extra example questions for it
      - is it possible to report issues with payment?
    out_of_scope:               # trained as the out_of_scope intent
      - can you book me a flight
    new_topic_needed:           # listed for the team, never trained
      - do you sell garden lights?

``earshot kb build`` adds the topic examples to their ``faq/<topic>`` intents and the
out-of-scope ones to ``out_of_scope``. Every example is checked before it is written:
the key must be a topic (or one of the two reserved keys), the text one non-empty line
without Rasa markup, not already a training example, and not in any test set.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

LEARNED_DIR = "learned"
OUT_OF_SCOPE = "out_of_scope"
NEW_TOPIC = "new_topic_needed"
RESERVED = (OUT_OF_SCOPE, NEW_TOPIC)
HEADER = (
    "# Learned from customers (earshot dashboard, Misunderstood page). Reviewed in git;\n"
    "# used by the next `make train`. Keys: a KB topic, out_of_scope or new_topic_needed.\n"
)
MAX_LENGTH = 300
# Redaction labels (earshot.privacy.redaction.redact) are the only square brackets allowed: Rasa
# reads "[text](entity)" as entity markup and "{...}" as JSON.
_LABELS = re.compile(r"\[(?:email|iban|card|phone)\]")
# Where test parts live (relative to the repository): no text in them is ever trained.
TEST_PARTS = ("rasa_project/tests",)


class LearnedError(ValueError):
    """A learned example or file is invalid; the message says which and why."""


def normalise(text: str) -> str:
    """The form two texts are compared in: case-folded, single spaces."""
    return " ".join(text.casefold().split())


def clean(text: str) -> str:
    """One line, single spaces."""
    return " ".join(str(text).split())


def learned_dir(kb_dir: Path) -> Path:
    return Path(kb_dir) / LEARNED_DIR


def learned_file(kb_dir: Path, language: str) -> Path:
    return learned_dir(kb_dir) / f"{language}.yml"


def read_file(path: Path) -> dict[str, list[str]]:
    """One language's learned examples, key -> texts (empty when there is no file)."""
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise LearnedError(f"{path}: malformed YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise LearnedError(f"{path}: must map a topic key to a list of example questions")
    out: dict[str, list[str]] = {}
    for key, texts in data.items():
        if not isinstance(key, str) or not isinstance(texts, list | type(None)):
            raise LearnedError(f"{path}: '{key}' must hold a list of example questions")
        out[key] = [str(t) for t in texts or []]
    return out


def write_file(path: Path, data: Mapping[str, Sequence[str]]) -> None:
    """Write atomically, keys sorted (reserved keys last), so diffs stay reviewable."""
    keys = sorted(k for k in data if k not in RESERVED) + [k for k in RESERVED if k in data]
    body = yaml.safe_dump(
        {k: list(data[k]) for k in keys if data[k]},
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100_000,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yml.tmp")
    tmp.write_text(HEADER + (body if body.strip() != "{}" else ""), encoding="utf-8")
    tmp.replace(path)


def check_text(text: str) -> str:
    """The example as it will be trained, or LearnedError saying why it cannot be."""
    text = clean(text)
    if not text:
        raise LearnedError("the text is empty")
    if len(text) > MAX_LENGTH:
        raise LearnedError(f"the text is longer than {MAX_LENGTH} characters")
    if text.startswith("/"):
        raise LearnedError("a button or command payload is not a question")
    if re.search(r"[{}\[\]]", _LABELS.sub("", text)):
        raise LearnedError("the text has brackets or braces, which Rasa reads as markup")
    return text


def load_learned(
    kb_dir: Path, languages: Sequence[str], topics: Iterable[str]
) -> dict[str, dict[str, tuple[str, ...]]]:
    """Every language's learned examples, validated: language -> key -> texts."""
    known = set(topics)
    clash = known & set(RESERVED)
    if clash:
        raise LearnedError(f"topic key(s) {sorted(clash)} are reserved for learned examples")
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for lang in languages:
        path = learned_file(kb_dir, lang)
        seen: set[str] = set()
        by_key: dict[str, tuple[str, ...]] = {}
        for key, texts in read_file(path).items():
            if key not in known and key not in RESERVED:
                raise LearnedError(f"{path}: '{key}' is not a topic of the knowledge base")
            checked = []
            for text in texts:
                try:
                    good = check_text(text)
                except LearnedError as exc:
                    raise LearnedError(f"{path}: {key}: {text!r}: {exc}") from None
                if normalise(good) in seen:
                    raise LearnedError(f"{path}: {key}: {text!r} is listed twice")
                seen.add(normalise(good))
                checked.append(good)
            by_key[key] = tuple(checked)
        out[lang] = by_key
    return out


# --------------------------------------------------------------------------- test sets


def _strings(value: Any) -> Iterator[str]:
    """Every string in a parsed YAML/JSON value; NLU example blocks split into lines."""
    if isinstance(value, str):
        lines = value.splitlines()
        if len(lines) > 1 or value.lstrip().startswith("- "):
            for line in lines:
                line = line.strip()
                yield line[2:] if line.startswith("- ") else line
        else:
            yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _file_texts(path: Path) -> Iterator[str]:
    suffix = path.suffix.lower()
    try:
        if suffix in (".yml", ".yaml"):
            yield from _strings(yaml.safe_load(path.read_text(encoding="utf-8")))
        elif suffix == ".json":
            yield from _strings(json.loads(path.read_text(encoding="utf-8")))
        elif suffix == ".jsonl":
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    yield from _strings(json.loads(line))
        elif suffix in (".csv", ".tsv"):
            with path.open(encoding="utf-8", newline="") as f:
                for row in csv.reader(f, delimiter="\t" if suffix == ".tsv" else ","):
                    yield from row
        elif suffix == ".txt":
            yield from path.read_text(encoding="utf-8").splitlines()
    except (ValueError, yaml.YAMLError) as exc:
        raise LearnedError(f"{path}: cannot read this test part: {exc}") from exc


def held_out_texts(parts: Iterable[Path]) -> set[str]:
    """Every text, normalised, in the test parts (files, or folders read recursively):
    NLU examples, story messages, CSV cells, JSON strings. Over-inclusive on purpose."""
    out: set[str] = set()
    for base in parts:
        base = Path(base)
        files = sorted(base.rglob("*")) if base.is_dir() else [base] if base.is_file() else []
        for path in files:
            if path.is_file():
                out.update(normalise(t) for t in _file_texts(path) if t.strip())
    return out


# --------------------------------------------------------------------------- adding


@dataclass
class AddResult:
    """What happened to each text: added, or skipped with the reason."""

    added: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def add_examples(
    kb_dir: Path,
    *,
    language: str,
    key: str,
    texts: Sequence[str],
    topics: Mapping[str, Iterable[str]],
    training: Iterable[str] = (),
    tests: set[str] | frozenset[str] = frozenset(),
) -> AddResult:
    """Append ``texts`` under ``key`` in the language's learned file, after checking them.

    ``topics`` maps each KB topic to its examples in ``language``; ``training`` is any
    other training text of that language (core NLU); ``tests`` the normalised test texts.
    """
    if key not in topics and key not in RESERVED:
        raise LearnedError(f"'{key}' is not a topic of the knowledge base")
    path = learned_file(kb_dir, language)
    data = read_file(path)
    taken: dict[str, str] = {}
    for topic, examples in topics.items():
        taken.update({normalise(e): f"an example of '{topic}'" for e in examples})
    taken.update({normalise(e): "already a training example" for e in training})
    for other, listed in data.items():
        taken.update({normalise(e): f"already learned as '{other}'" for e in listed})
    result = AddResult()
    for raw in texts:
        try:
            text = check_text(raw)
        except LearnedError as exc:
            result.skipped.append((clean(raw), str(exc)))
            continue
        norm = normalise(text)
        if norm in tests:
            result.skipped.append((text, "it is in a test set, which must never be trained on"))
        elif norm in taken:
            result.skipped.append((text, f"duplicate: {taken[norm]}"))
        else:
            data.setdefault(key, []).append(text)
            taken[norm] = f"already learned as '{key}'"
            result.added.append(text)
    if result.added:
        write_file(path, data)
    return result


def new_topic_requests(kb_dir: Path, languages: Sequence[str]) -> list[tuple[str, str]]:
    """(language, text) of every message the team said needs a new topic."""
    return [
        (lang, text)
        for lang in languages
        for text in read_file(learned_file(kb_dir, lang)).get(NEW_TOPIC, [])
    ]
