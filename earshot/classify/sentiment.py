"""Lexicon sentiment (VADER): no training data or model weights, works on any domain."""

from __future__ import annotations

from functools import cache, lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer


@cache
def _analyzer() -> SentimentIntensityAnalyzer:
    # Imported here: the analyser reads its lexicon file on construction.
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=64)  # classify() and the "meta" features score the same text
def lexicon_scores(text: str) -> tuple[float, float, float]:
    """(compound in [-1, 1], positive share, negative share)."""
    s = _analyzer().polarity_scores(text)
    return float(s["compound"]), float(s["pos"]), float(s["neg"])
