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
from functools import cache

import numpy as np

from earshot.embeddings import embedder
from earshot.feedback import service

# The meaning half's share per language: WordLlama knows English far better than Dutch.
MEANING_WEIGHTS: dict[str, float] = {"en": 0.5}
OTHER_MEANING_WEIGHT = 0.25
# At or above: the same wish or fault (chat offer, merge suggestion, one-click merge).
DUPLICATE_THRESHOLD = 0.5
# At or above: related enough to list under "similar feedback" in the dashboard.
RELATED_THRESHOLD = 0.4


@cache
def _stop_stems(language: str) -> frozenset[str]:
    """A language's stop words as the wording half sees them (stemmed); English's are
    built into `service` already."""
    if language == "en":
        return frozenset()
    from earshot.themes.features import stop_words

    return frozenset(service.stem(w) for w in stop_words(language))


def scores(
    query: str,
    candidates: Sequence[str],
    *,
    ignore: frozenset[str] = frozenset(),
    language: str = "en",
) -> np.ndarray:
    """The similarity (0..1) of `query` to each candidate text (all in `language`)."""
    if not candidates:
        return np.zeros(0, dtype=np.float32)
    ignore = ignore | _stop_stems(language)
    vectors = embedder().embed([query, *candidates], normalise=True)
    meaning = np.clip(vectors[1:] @ vectors[0], 0.0, 1.0)
    q = service.text_vector(query, ignore)
    wording = np.array(
        [service.cosine(q, service.text_vector(c, ignore)) for c in candidates],
        dtype=np.float32,
    )
    if not q:  # nothing but stop words: wording cannot vouch for anything
        return np.zeros(len(candidates), dtype=np.float32)
    weight = MEANING_WEIGHTS.get(language, OTHER_MEANING_WEIGHT)
    return np.asarray(weight * meaning + (1 - weight) * wording, np.float32)


def score(a: str, b: str, *, ignore: frozenset[str] = frozenset(), language: str = "en") -> float:
    """The similarity (0..1) of two texts."""
    return float(scores(a, [b], ignore=ignore, language=language)[0])
