"""The labelled themes/duplicates evaluation set (tests/data/themes) is well formed: big enough,
both languages, unique ids and texts, duplicate links that point back within one theme.
Structure only: the set is evaluation data and is never read to tune anything."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "themes"
COLUMNS = ["id", "language", "product", "type", "text", "theme", "duplicate_of"]


def _read(name: str) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV file in the set."""
    with open(DATA / name, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    """The labelled texts, checked for the expected columns."""
    header, data = _read("labelled.csv")
    assert header == COLUMNS
    return data


def test_size_and_languages(rows: list[dict[str, str]]) -> None:
    """At least 400 texts in at least 30 themes, with 150+ in each language."""
    assert len(rows) >= 400
    assert len({r["theme"] for r in rows}) >= 30
    languages = Counter(r["language"] for r in rows)
    assert set(languages) == {"en", "nl"}
    assert languages["en"] >= 150 and languages["nl"] >= 150


def test_ids_unique_and_texts_distinct(rows: list[dict[str, str]]) -> None:
    """Ids are unique; no text is empty or repeated (exactly, or up to case and spacing)."""
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids)
    texts = [" ".join(r["text"].split()).casefold() for r in rows]
    assert all(texts)
    assert [t for t, n in Counter(texts).items() if n > 1] == []


def test_duplicates_point_back_within_theme(rows: list[dict[str, str]]) -> None:
    """Every duplicate_of names an earlier row of the same theme, and there are 70+ links."""
    position = {r["id"]: i for i, r in enumerate(rows)}
    linked = [r for r in rows if r["duplicate_of"]]
    assert len(linked) >= 70
    for r in linked:
        target = r["duplicate_of"]
        assert target in position, r["id"]
        assert position[target] < position[r["id"]], r["id"]
        assert rows[position[target]]["theme"] == r["theme"], r["id"]


def test_labels_known(rows: list[dict[str, str]]) -> None:
    """Types, products (config.yml keys) and themes (themes.csv, each used) are all known."""
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    products = {p["key"] for p in config["products"]} | {""}
    header, themes = _read("themes.csv")
    assert header == ["theme", "label", "description"]
    theme_ids = [t["theme"] for t in themes]
    assert all(t["label"].strip() and t["description"].strip() for t in themes)
    assert {r["type"] for r in rows} <= {"idea", "problem", "other"}
    assert {r["product"] for r in rows} <= products
    assert len(set(theme_ids)) == len(theme_ids)
    assert {r["theme"] for r in rows} == set(theme_ids)
