"""Public evaluation corpora: where they live, how texts are compared, the split files.

Pure standard library, so the split script (.venv), the independent evaluation
(.venv-rasa) and the leak-check tests share one definition of "the same text".
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import unicodedata
from pathlib import Path

# The split parts, the topic mapping and the data card live here (see SOURCES.md there).
INDEPENDENT_DIR = Path("rasa_project/tests/independent")
SPLITS_DIR = INDEPENDENT_DIR / "splits"
SPLIT_COLUMNS = ("text", "source_split", "source_intent", "label")
EXCLUDED = "excluded"
OUT_OF_SCOPE = "out_of_scope"

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lowercase, accents and punctuation dropped, whitespace collapsed: the leak-check key."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()


def text_hash(text: str) -> str:
    """A stable hash of the normalised text (splits must not depend on row order)."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


def dev_bucket(text: str, buckets: int = 10) -> bool:
    """True for the ~1/buckets of trainable rows kept back for tuning (by text hash)."""
    return int(text_hash(text)[:8], 16) % buckets == 0


def datasets_dir(root: Path) -> Path:
    """The shared public corpora: $EARSHOT_DATASETS, else `../shared/datasets` beside
    the repository (one level further up for a git worktree in a sub-folder)."""
    env = os.environ.get("EARSHOT_DATASETS")
    if env:
        return Path(env)
    for parent in (root.parent, root.parent.parent):
        candidate = parent / "shared" / "datasets"
        if candidate.is_dir():
            return candidate
    return root.parent / "shared" / "datasets"


def read_split(path: Path) -> list[dict[str, str]]:
    """Rows of one split file (columns SPLIT_COLUMNS)."""
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def write_split(path: Path, rows: list[dict[str, str]]) -> None:
    """Write one split file, rows sorted by source intent then text (stable diffs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(rows, key=lambda r: (r["label"], r["source_intent"], r["text"]))
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SPLIT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: r[k] for k in SPLIT_COLUMNS} for r in ordered)
