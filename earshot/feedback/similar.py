"""The one measure of "is this the same wish or fault?" between two feedback texts.

It serves the chat's "is that what you mean?" (`service.find_similar`), the dashboard's
similar items (`inbox.similar_items`) and the merge suggestions
(`earshot/themes/service.py`). A score (0..1) mixes meaning and wording:

- meaning: cosine of WordLlama's pretrained static sentence vectors
  (`earshot/embeddings.py`), which know that "wake me up gradually" and "sunrise alarm"
  are close;
- wording: the cosine over stemmed content words and their character trigrams that the
  chat used before (`service.similarity`), which keeps Dutch and product jargon apart
  where the embedding (trained mostly on English) cannot.

The thresholds are calibrated by scripts/eval_themes.py on scripts/data/themes_dev.csv
(precision >= 0.9 at recall >= 0.6 for duplicates; reports/themes.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from earshot.embeddings import embedder
from earshot.feedback import service

MEANING_WEIGHT = 0.5
# At or above: the same wish or fault (chat offer, merge suggestion, one-click merge).
DUPLICATE_THRESHOLD = 0.5
# At or above: related enough to list under "similar feedback" in the dashboard.
RELATED_THRESHOLD = 0.4


def scores(
    query: str, candidates: Sequence[str], *, ignore: frozenset[str] = frozenset()
) -> np.ndarray:
    """The similarity (0..1) of `query` to each candidate text."""
    if not candidates:
        return np.zeros(0, dtype=np.float32)
    vectors = embedder().embed([query, *candidates], normalise=True)
    meaning = np.clip(vectors[1:] @ vectors[0], 0.0, 1.0)
    q = service.text_vector(query, ignore)
    wording = np.array(
        [service.cosine(q, service.text_vector(c, ignore)) for c in candidates],
        dtype=np.float32,
    )
    if not q:  # nothing but stop words: wording cannot vouch for anything
        return np.zeros(len(candidates), dtype=np.float32)
    return np.asarray(MEANING_WEIGHT * meaning + (1 - MEANING_WEIGHT) * wording, np.float32)


def score(a: str, b: str, *, ignore: frozenset[str] = frozenset()) -> float:
    """The similarity (0..1) of two texts."""
    return float(scores(a, [b], ignore=ignore)[0])
