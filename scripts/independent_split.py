"""Split the public corpora into trainable and test-only parts, with Lumen labels.

Reads Banking77 and CLINC150 (train/val only) from the shared datasets folder and the
reviewed topic mapping (rasa_project/tests/independent/mapping.yml), and writes
rasa_project/tests/independent/splits/<source>_<part>.csv with the columns
text, source_split, source_intent, label (faq/<topic>, a core intent, out_of_scope or
excluded). Deterministic: the sources' own splits, plus a dev part carved from the
trainable rows by a hash of the normalised text. Trainable rows whose text also occurs
in any test part are dropped. `--check` verifies the committed files instead of writing.

    .venv/bin/python scripts/independent_split.py [--check]
"""

from __future__ import annotations

import argparse
import csv
import glob
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from earshot.corpora import (  # noqa: E402
    EXCLUDED,
    INDEPENDENT_DIR,
    OUT_OF_SCOPE,
    SPLITS_DIR,
    datasets_dir,
    dev_bucket,
    normalise,
    read_split,
    write_split,
)

Row = dict[str, str]
GROUPS = ("topics", "core", "excluded", "out_of_scope")


def labels_for(source: str, mapping: dict[str, Any], intents: set[str]) -> dict[str, str]:
    """intent -> Lumen label; fails unless every intent is in exactly one group."""
    spec = mapping[source]
    labels: dict[str, str] = {}
    for group in GROUPS:
        entries = spec.get(group) or {}
        for intent in entries:
            if intent in labels:
                raise SystemExit(f"{source}: {intent} is in two groups of mapping.yml")
            if group in ("topics", "core"):
                labels[intent] = entries[intent]["target"]
            else:
                labels[intent] = EXCLUDED if group == "excluded" else OUT_OF_SCOPE
    missing, unknown = intents - set(labels), set(labels) - intents
    if missing or unknown:
        raise SystemExit(f"{source}: unmapped {sorted(missing)}, unknown {sorted(unknown)}")
    return labels


def check_targets(mapping: dict[str, Any]) -> None:
    """Every mapped topic is a kb topic and every core target a domain intent."""
    topics = set()
    for path in sorted((ROOT / "kb").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        topics |= {f"faq/{t['key']}" for t in data.get("topics") or []}
    domain = yaml.safe_load((ROOT / "rasa_project/domain/core.yml").read_text(encoding="utf-8"))
    intents = set(domain["intents"])
    for source, spec in mapping.items():
        if not isinstance(spec, dict):
            continue
        for intent, entry in (spec.get("topics") or {}).items():
            if entry["target"] not in topics:
                raise SystemExit(f"{source}/{intent}: {entry['target']} is not a kb topic")
        for intent, entry in (spec.get("core") or {}).items():
            if entry["target"] not in intents:
                raise SystemExit(f"{source}/{intent}: {entry['target']} is not an intent")


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def own_test_texts() -> set[str]:
    """Normalised texts of the project's own test sets (never trainable either)."""
    texts = set()
    for path in glob.glob(str(ROOT / "rasa_project/tests/**/*.yml"), recursive=True):
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        for block in data.get("nlu") or [] if isinstance(data, dict) else []:
            for line in str(block.get("examples", "")).splitlines():
                if line.strip().startswith("- "):
                    texts.add(normalise(line.strip()[2:]))
    return texts


def build(datasets: Path, mapping: dict[str, Any]) -> dict[str, list[Row]]:
    """All parts of both sources, keyed `<source>_<part>`."""
    bank_train = _csv(datasets / "banking77/train.csv")
    bank_test = _csv(datasets / "banking77/test.csv")
    clinc = _csv(datasets / "clinc150/clinc150_train_val.csv")
    bank_labels = labels_for("banking77", mapping, {r["category"] for r in bank_train + bank_test})
    clinc_labels = labels_for("clinc150", mapping, {r["intent"] for r in clinc})

    def rows(
        src: list[dict[str, str]], split: str | None, key: str, labels: dict[str, str]
    ) -> list[Row]:
        return [
            {
                "text": r["text"].strip(),
                "source_split": split or r["split"],
                "source_intent": r[key],
                "label": labels[r[key]],
            }
            for r in src
        ]

    tests = {
        "banking77_test": rows(bank_test, "test", "category", bank_labels),
        "clinc150_val": rows(
            [r for r in clinc if r["split"] in ("val", "oos_val")], None, "intent", clinc_labels
        ),
    }
    trainable = {
        "banking77": rows(bank_train, "train", "category", bank_labels),
        "clinc150": rows(
            [r for r in clinc if r["split"] in ("train", "oos_train")], None, "intent", clinc_labels
        ),
    }
    held = own_test_texts() | {normalise(r["text"]) for part in tests.values() for r in part}
    parts: dict[str, list[Row]] = dict(tests)
    for source, part in trainable.items():
        kept = [r for r in part if normalise(r["text"]) not in held]
        parts[f"{source}_train"] = [r for r in kept if not dev_bucket(r["text"])]
        parts[f"{source}_dev"] = [r for r in kept if dev_bucket(r["text"])]
        parts[f"{source}_dropped_as_test_duplicates"] = [
            r for r in part if normalise(r["text"]) in held
        ]
    return parts


def summary(parts: dict[str, list[Row]]) -> str:
    """Counts per part and label kind, as a Markdown table for the data card."""
    lines = [
        "| part | rows | topic | core | out_of_scope | excluded |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in sorted(parts.items()):
        kinds = Counter(
            "topic" if r["label"].startswith("faq/")
            else r["label"] if r["label"] in (OUT_OF_SCOPE, EXCLUDED) else "core"
            for r in rows
        )  # fmt: skip
        lines.append(
            f"| {name} | {len(rows)} | {kinds['topic']} | {kinds['core']}"
            f" | {kinds[OUT_OF_SCOPE]} | {kinds[EXCLUDED]} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--datasets", type=Path, help="default: ../shared/datasets")
    parser.add_argument("--check", action="store_true", help="verify the committed files")
    args = parser.parse_args()
    datasets = args.datasets or datasets_dir(ROOT)
    mapping = yaml.safe_load((ROOT / INDEPENDENT_DIR / "mapping.yml").read_text(encoding="utf-8"))
    check_targets(mapping)
    parts = build(datasets, mapping)
    out = ROOT / SPLITS_DIR
    stale = []
    for name, rows in parts.items():
        if "dropped" in name:
            continue  # counted in the data card, not written
        path = out / f"{name}.csv"
        if args.check:
            key = lambda r: (r["label"], r["source_intent"], r["text"])  # noqa: E731
            if not path.is_file() or sorted(map(key, read_split(path))) != sorted(map(key, rows)):
                stale.append(name)
        else:
            write_split(path, rows)
    print(summary(parts))
    if stale:
        print(f"stale split files: {', '.join(stale)}; rerun this script", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
