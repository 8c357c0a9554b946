"""The one measure of "is this the same wish or fault?" between two feedback texts.

It serves the chat's "is that what you mean?" (`service.find_similar`), the dashboard's
similar items (`inbox.similar_items`) and the merge suggestions
(`earshot/themes/service.py`). A score (0..1) mixes meaning and wording:

- meaning: cosine of pretrained sentence vectors, the ones themes use
  (`earshot.themes.features.meaning`: all-MiniLM-L6-v2 for English and Dutch, WordLlama
  otherwise), which know that "wake me up gradually" and "sunrise alarm" are close;
- wording: the cosine over stemmed content words and their character trigrams that the
  chat used before (`service.similarity`), which keeps Dutch and product jargon apart
  where the embedding (trained mostly on English) cannot.

A duplicate (`pick_duplicate`) is the one nearest candidate, when it scores at least the
language's threshold and stands out from the second nearest by `DUPLICATE_MARGIN`: a text
that sits as close to two different items says what their whole theme says, not what one
of them says. Weights, thresholds and the margin were chosen by scripts/eval_themes.py on
the two development sets for precision >= 0.9 on both (reports/themes-dev.md).
"""

from __future__ import annotations

import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from earshot.feedback import service

# The meaning half's share per language (MiniLM, trained on English, knows Dutch poorly).
MEANING_WEIGHTS: dict[str, float] = {"en": 0.8}
OTHER_MEANING_WEIGHT = 0.25
# At or above, and ahead of the second nearest by DUPLICATE_MARGIN: the same wish or fault
# (chat offer, merge suggestion, one-click merge). Dutch scores lean on wording, whose best
# pairs on the development sets were mostly other asks on the same product, so only a
# near-verbatim repeat counts there.
DUPLICATE_THRESHOLDS: dict[str, float] = {"en": 0.625}
OTHER_DUPLICATE_THRESHOLD = 0.75
DUPLICATE_THRESHOLD = DUPLICATE_THRESHOLDS["en"]
DUPLICATE_MARGIN = 0.02
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


@dataclass(frozen=True)
class _Seen:
    """What scoring needs of one text: its unit meaning vector and its wording vector."""

    meaning: np.ndarray
    wording: Counter[str]
    norm: float


_CACHE: OrderedDict[tuple[str, int], _Seen] = OrderedDict()  # (text, hash of ignore+language)
_CACHE_SIZE = 50_000  # texts; open items are scored again and again
_LOCK = threading.Lock()


def _seen(texts: Sequence[str], ignore: frozenset[str], language: str) -> list[_Seen]:
    """The vectors of `texts`, from the cache where it has them (the rest in one batch)."""
    from earshot.themes.features import meaning

    tag = hash((ignore, language))
    with _LOCK:
        found = [_CACHE.get((t, tag)) for t in texts]
    missing = [t for t, f in zip(texts, found, strict=True) if f is None]
    if missing:
        unique = list(dict.fromkeys(missing))
        vectors = meaning(unique, language)
        fresh = {}
        for text, vector in zip(unique, vectors, strict=True):
            wording = service.text_vector(text, ignore)
            norm = math.sqrt(sum(v * v for v in wording.values()))
            fresh[text] = _Seen(vector, wording, norm)
        with _LOCK:
            for text, seen in fresh.items():
                _CACHE[(text, tag)] = seen
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        found = [f if f is not None else fresh[t] for t, f in zip(texts, found, strict=True)]
    return [f for f in found if f is not None]


def _cosine(a: _Seen, b: _Seen) -> float:
    if not a.norm or not b.norm:
        return 0.0
    small, large = (
        (a.wording, b.wording) if len(a.wording) < len(b.wording) else (b.wording, a.wording)
    )
    return sum(v * large[k] for k, v in small.items() if k in large) / (a.norm * b.norm)


def scores(
    query: str,
    candidates: Sequence[str],
    *,
    ignore: frozenset[str] = frozenset(),
    language: str = "en",
) -> np.ndarray:
    """The similarity (0..1) of `query` to each candidate text (all in `language`).

    Vectors of texts seen before come from a cache, so scoring a new item against the
    same open items again costs little more than the cosines."""
    if not candidates:
        return np.zeros(0, dtype=np.float32)
    ignore = ignore | _stop_stems(language)
    q, *others = _seen([query, *candidates], ignore, language)
    if not q.wording:  # nothing but stop words: wording cannot vouch for anything
        return np.zeros(len(candidates), dtype=np.float32)
    meaning = np.clip(np.vstack([o.meaning for o in others]) @ q.meaning, 0.0, 1.0)
    wording = np.array([_cosine(q, o) for o in others], dtype=np.float32)
    weight = MEANING_WEIGHTS.get(language, OTHER_MEANING_WEIGHT)
    return np.asarray(weight * meaning + (1 - weight) * wording, np.float32)


def score(a: str, b: str, *, ignore: frozenset[str] = frozenset(), language: str = "en") -> float:
    """The similarity (0..1) of two texts."""
    return float(scores(a, [b], ignore=ignore, language=language)[0])


def duplicate_threshold(language: str) -> float:
    """The score from which two texts of `language` may be the same wish or fault."""
    return DUPLICATE_THRESHOLDS.get(language, OTHER_DUPLICATE_THRESHOLD)


def pick_duplicate(
    found: np.ndarray,
    language: str,
    *,
    threshold: float | None = None,
    margin: float = DUPLICATE_MARGIN,
) -> int | None:
    """Index of the duplicate among scored candidates (`scores`' output), or None.

    The nearest candidate counts when it scores at least the threshold (the language's
    unless given) and beats the second nearest by `margin`. Candidates scoring
    the same as the nearest (the same text twice, not merged yet) are not its rivals."""
    if not len(found):
        return None
    limit = duplicate_threshold(language) if threshold is None else threshold
    best = int(found.argmax())
    if found[best] < limit:
        return None
    top = float(found[best])
    rivals = found[found < top - 1e-6]
    if len(rivals) and top - float(rivals.max()) < margin:
        return None
    return best
