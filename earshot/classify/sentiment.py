"""Lexicon sentiment, no training data or model weights: VADER for English and a small
hand-written lexicon for Dutch (`data/sentiment_nl.tsv`) with VADER's rules for negation,
intensifiers, "but"/"maar" and exclamation marks.

Which lexicon scores a text: `language="en"` or `"nl"`, or by default (None) a cheap
guess from common function words of each language.
"""

from __future__ import annotations

import math
import re
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

DUTCH_LEXICON = Path(__file__).parent / "data" / "sentiment_nl.tsv"

# Words that are common in one language and rare in the other ("is", "in", "was" and
# "over" are in both, so they count for neither).
_NL_WORDS = frozenset(
    """de het een ik mijn je jij jouw jullie u uw niet geen nooit nie en van dat die deze
    wel ook maar nog bij met voor zijn heb heeft hebben werkt kan kun zou zouden graag
    er naar om dan als al wat hoe waarom mij ons onze hij zij ze te op aan uit na sinds
    erg heel zeer echt goed slecht bedankt dank alsjeblieft ge gij da mn zn nu meer
    wordt worden moet moeten wil doet gaat komt kunnen lukt""".split()
)
_EN_WORDS = frozenset(
    """the a an and not no never my i you your it its this that these with for to of on
    at be are have has had do does did doesn't don't can't won't isn't would could should
    please but they them we our very really just so what when why how get got will from
    work works working thanks thank love great good bad after since still keeps""".split()
)
_WORD_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")

# VADER's constants, so Dutch scores live on the same scale as English ones.
_NEGATIONS = frozenset("niet nie ni geen nooit niks niets nergens allerminst zonder".split())
_BOOST = 0.293
_BOOSTERS = frozenset(
    """zeer heel echt super erg enorm ontzettend ongelooflijk bijzonder uiterst hartstikke
    vreselijk verschrikkelijk mega totaal compleet volledig absoluut zwaar keihard bere
    dik zo zó veel extreem ontiegelijk bizar kei""".split()
)
_DAMPENERS = frozenset("beetje wat enigszins redelijk vrij tamelijk nogal best".split())
_NEGATION_SCALAR = -0.74
_ALPHA = 15.0


def looks_dutch(text: str) -> bool:
    """Cheap language guess: more Dutch than English function words."""
    words = _WORD_RE.findall(text.lower())
    nl = sum(w in _NL_WORDS for w in words)
    en = sum(w in _EN_WORDS for w in words)
    return nl > en


@cache
def _analyzer() -> SentimentIntensityAnalyzer:
    # Imported here: the analyser reads its lexicon file on construction.
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@cache
def _dutch_lexicon() -> dict[str, float]:
    out: dict[str, float] = {}
    for line in DUTCH_LEXICON.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            word, valence = line.split("\t")
            out[word.strip()] = float(valence)
    return out


def _valence(word: str, lex: dict[str, float]) -> float:
    if word in lex:
        return lex[word]
    # slechte -> slecht, mooie -> mooi, geweldige -> geweldig, slechtste -> slecht(st)
    for suffix in ("e", "er", "ere", "ste", "st", "s"):
        stem = word.removesuffix(suffix)
        if stem != word and stem in lex:
            return lex[stem]
    # traagheid, teleurgesteldheid
    stem = word.removesuffix("heid")
    return lex.get(stem, 0.0) if stem != word else 0.0


def dutch_scores(text: str) -> tuple[float, float, float]:
    """(compound in [-1, 1], positive share, negative share) from the Dutch lexicon."""
    lex = _dutch_lexicon()
    words = _WORD_RE.findall(text.lower().replace("\u2019", "'"))
    vals: list[float] = []
    for i, w in enumerate(words):
        v = _valence(w, lex)
        if v and w not in _BOOSTERS:
            before = words[max(0, i - 3) : i]
            for k, b in enumerate(reversed(before)):
                scale = _BOOST * (1.0, 0.95, 0.9)[k]
                if b in _BOOSTERS:
                    v += math.copysign(scale, v)
                elif b in _DAMPENERS:
                    v -= math.copysign(scale, v)
            # "niet goed", "geen goede lamp", "nooit meer tevreden"; and "goed ... niet"
            # only right after the word ("goed is het niet").
            after = words[i + 1 : i + 4]
            if any(b in _NEGATIONS for b in before) or (
                after[:1] in (["is"], ["was"]) and "niet" in after
            ):
                v *= _NEGATION_SCALAR
        elif v and w in _BOOSTERS and i + 1 < len(words) and _valence(words[i + 1], lex):
            v = 0.0  # "super snel": a booster, not a word of its own
        vals.append(v)
    # "maar": what comes after it counts more ("mooi, maar traag").
    if "maar" in words:
        k = words.index("maar")
        vals = [v * 0.5 if i < k else v * 1.5 if i > k else v for i, v in enumerate(vals)]
    total = sum(vals)
    if total:
        bangs = min(text.count("!"), 4) * 0.292
        total += math.copysign(bangs, total)
    compound = total / math.sqrt(total * total + _ALPHA) if total else 0.0
    pos = sum(v + 1 for v in vals if v > 0)
    neg = sum(1 - v for v in vals if v < 0)
    neutral = sum(1 for v in vals if not v)
    denom = pos + neg + neutral or 1.0
    return max(-1.0, min(1.0, compound)), pos / denom, neg / denom


@lru_cache(maxsize=64)  # classify() and the "meta" features score the same text
def lexicon_scores(text: str, language: str | None = None) -> tuple[float, float, float]:
    """(compound in [-1, 1], positive share, negative share).

    language: "en" (VADER), "nl" (Dutch lexicon) or None to guess from the words.
    """
    if language is None:
        language = "nl" if looks_dutch(text) else "en"
    if language == "nl":
        return dutch_scores(text)
    s = _analyzer().polarity_scores(text)
    if language is None and not s["compound"]:
        # Too short to tell ("Prima", "Slechtste aankoop ooit"): VADER knows none of the
        # words, so let the Dutch lexicon try.
        return dutch_scores(text)
    return float(s["compound"]), float(s["pos"]), float(s["neg"])
