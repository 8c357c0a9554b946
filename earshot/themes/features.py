"""What the theme clustering sees of a text: a fixed-size vector and the words of its label.

A text's vector joins two halves, each normalised:

- meaning: a pretrained sentence vector minus the mean vector of the language's items, so
  what all feedback shares ("the app", "please") stops pulling unrelated items together.
  English and Dutch use all-MiniLM-L6-v2 (`earshot/sentence_encoder.py`, trained on
  English paraphrase pairs; its word pieces still carry Dutch product words), other
  languages WordLlama's static embedding (`earshot/embeddings.py`);
- wording: the Snowball stems of its content words (for Dutch also their character
  3-5-grams, which meet compounds halfway: "wifi-verbinding", "verbinding"), weighted by
  inverse document frequency and summed as fixed random vectors (a random projection of
  TF-IDF). The projection needs no fitted matrix, so a new item lands in the same space as
  the last full run from two numbers per term (its IDF) and the mean vector, both kept in
  `theme_models`.

Weights and cuts were chosen on two development sets (reports/themes-dev.md).
"""

from __future__ import annotations

import math
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from earshot import sentence_encoder
from earshot.embeddings import embedder

LEXICAL_DIM = 256
# Character n-grams make many terms per text: a wider projection keeps their cosines
# (256 dimensions blurred Dutch themes on the development sets).
LEXICAL_DIMS: dict[str, int] = {"nl": 1024}
# Share of the meaning half in cosine similarity, per language. MiniLM carries English
# themes well; Dutch leans on stems and character n-grams, with MiniLM's word pieces
# ("wifi", "thermostaat", "update") as a smaller share (reports/themes-dev.md compares
# weights on both development sets). Other languages get WordLlama at 0.15.
MEANING_WEIGHTS: dict[str, float] = {"en": 0.95, "nl": 0.3}
OTHER_MEANING_WEIGHT = 0.15
# Languages whose meaning half comes from the English sentence encoder when installed:
# for Dutch it lifted theme AMI on both development sets over WordLlama (0.46 -> 0.52,
# 0.26 -> 0.27), though it was trained on English.
ENCODER_LANGUAGES = frozenset({"en", "nl"})
# Languages whose wording half adds character n-grams of each content word.
CHAR_NGRAM_LANGUAGES = frozenset({"nl"})
CHAR_NGRAMS = (3, 5)
MEAN_SHRINK = 20

_NL_STOP = frozenset(
    """de het een en ik je jij u uw mijn me mij niet geen wat hoe waar waarom wanneer welke
    kan kun kunt wil wilt moet moeten is zijn was ben bent heb hebt heeft hebben van voor met
    op aan bij naar dat dit die er nog ook maar al wel graag zou zouden worden wordt werd hij
    zij ze we wij ons onze in uit om te tot als of dan omdat mag mogen toch even steeds zo nu
    na door over heel echt alsjeblieft alstublieft fijn leuk goed zeer erg meer veel iets
    iemand alles altijd gewoon eens hallo hoi bedankt dank lumen keer dus""".split()
)
_EN_STOP = frozenset(ENGLISH_STOP_WORDS) | frozenset(
    """please pls like love want wish would could really just also thanks thank hi hello lumen
    great nice cool good awesome able let lets make way thing things im ive dont doesnt cant
    id get got does did doing don doesn isn aren wasn""".split()
)
_STEMMER_NAMES = {"en": "english", "nl": "dutch"}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def meaning_weight(language: str) -> float:
    """The meaning half's share of a language's vectors."""
    return MEANING_WEIGHTS.get(language, OTHER_MEANING_WEIGHT)


def stop_words(language: str) -> frozenset[str]:
    """Words that say nothing about a theme, per language (English's for others)."""
    return _NL_STOP if language == "nl" else _EN_STOP


def plain(text: str) -> str:
    """Lower case without accents, so "scènes" meets "scenes"."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def words(text: str, language: str) -> list[str]:
    """The content words of a text, in order (stop words and one-letter words dropped)."""
    stop = stop_words(language)
    return [w for w in _WORD.findall(plain(text).replace("'", "")) if len(w) > 1 and w not in stop]


@cache
def _stemmer(language: str) -> object:
    import snowballstemmer

    return snowballstemmer.stemmer(_STEMMER_NAMES.get(language, "english"))


@cache
def _stem_word(language: str, word: str) -> str:
    return str(_stemmer(language).stemWord(word))  # type: ignore[attr-defined]


def stems(text: str, language: str) -> set[str]:
    """The distinct Snowball stems of a text's content words."""
    return {_stem_word(language, w) for w in words(text, language)}


def terms(text: str, language: str) -> set[str]:
    """What the wording half counts: stems, plus character n-grams where the language
    glues words together (marked with '#', so they never meet a stem)."""
    found = stems(text, language)
    if language in CHAR_NGRAM_LANGUAGES:
        lo, hi = CHAR_NGRAMS
        for w in words(text, language):
            padded = f" {w} "
            for n in range(lo, hi + 1):
                found.update("#" + padded[i : i + n] for i in range(len(padded) - n + 1))
    return found


def meaning(texts: Sequence[str], language: str) -> np.ndarray:
    """Unit meaning vectors: the sentence encoder for its languages, else WordLlama."""
    enc = sentence_encoder.encoder() if language in ENCODER_LANGUAGES else None
    if enc is not None:
        return enc.encode(list(texts))
    return embedder().embed(list(texts), normalise=True)


def lexical_dimension(language: str) -> int:
    """Length of a language's wording half."""
    return LEXICAL_DIMS.get(language, LEXICAL_DIM)


def meaning_dimension(language: str) -> int:
    """Length of a language's meaning vectors."""
    enc = sentence_encoder.encoder() if language in ENCODER_LANGUAGES else None
    return sentence_encoder.DIMENSION if enc is not None else embedder().dimension


@cache
def _projection(term: str, dim: int = LEXICAL_DIM) -> np.ndarray:
    """A fixed pseudo-random unit-variance vector per term (seeded by the term's CRC32)."""
    rng = np.random.default_rng(zlib.crc32(term.encode()))
    return rng.standard_normal(dim).astype(np.float32)


def _normalised(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.asarray(m / np.where(norms > 0, norms, 1.0), dtype=np.float32)


@dataclass(frozen=True)
class Space:
    """The vector space of one language's last full run: IDF per stem and the mean meaning."""

    language: str
    idf: Mapping[str, float]
    mean: np.ndarray
    documents: int

    @classmethod
    def fit(cls, texts: Sequence[str], language: str) -> Space:
        """IDF and mean embedding of `texts` (one language's items)."""
        df: Counter[str] = Counter()
        for t in texts:
            df.update(terms(t, language))
        n = len(texts)
        idf = {s: math.log((1 + n) / (1 + c)) + 1.0 for s, c in df.items()}
        # A handful of items' mean is mostly those items: centring fully on it would erase
        # them, so a small language's mean counts for less (n / (n + MEAN_SHRINK)).
        mean = np.zeros(meaning_dimension(language), np.float32)
        if n:
            full = meaning(texts, language).mean(axis=0)
            mean = (full * (n / (n + MEAN_SHRINK))).astype(np.float32)
        return cls(language, idf, mean, n)

    def unseen_idf(self) -> float:
        """The IDF of a stem no item of the last run had (the rarest there is)."""
        return math.log((1 + self.documents) / 1) + 1.0

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """One unit row per text: weighted meaning half, weighted wording half."""
        if not texts:
            width = meaning_dimension(self.language) + lexical_dimension(self.language)
            return np.zeros((0, width), np.float32)
        found = meaning(texts, self.language)
        # A space saved by another encoder (its mean of another length) centres nothing.
        centred = found - self.mean if self.mean.shape[-1:] == found.shape[-1:] else found
        wording = self._wording(texts)
        weight = meaning_weight(self.language)
        joined = np.hstack(
            [
                math.sqrt(weight) * _normalised(centred),
                math.sqrt(1 - weight) * _normalised(wording),
            ]
        )
        return _normalised(joined)

    def _wording(self, texts: Sequence[str]) -> np.ndarray:
        """IDF-weighted terms projected to the lexical dimension through one sparse product."""
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        unseen = self.unseen_idf()
        for i, text in enumerate(texts):
            for s in terms(text, self.language):
                rows.append(i)
                cols.append(vocab.setdefault(s, len(vocab)))
                vals.append(self.idf.get(s, unseen))
        dim = lexical_dimension(self.language)
        if not vocab:
            return np.zeros((len(texts), dim), np.float32)
        weights = sparse.csr_matrix((vals, (rows, cols)), shape=(len(texts), len(vocab)))
        basis = np.vstack([_projection(s, dim) for s in vocab])
        return np.asarray(weights @ basis, dtype=np.float32)


# --------------------------------------------------------------------------- labels


def _ngrams(text: str, language: str) -> set[str]:
    ws = words(text, language)
    return set(ws) | {f"{a} {b}" for a, b in pairwise(ws)}


def labels(groups: Mapping[int, Sequence[str]], language: str, parts: int = 3) -> dict[int, str]:
    """A short label per group from its members' own words (class-based TF-IDF).

    A term scores its share of the group's members times how much rarer it is in the other
    groups; bigrams that most members share come first, and a word already in the label
    is not repeated.
    """
    counts = {
        g: Counter(t for text in texts for t in _ngrams(text, language))
        for g, texts in groups.items()
    }
    total: Counter[str] = Counter()
    for c in counts.values():
        total.update(c)
    n_groups = max(len(groups), 1)
    out: dict[int, str] = {}
    for g, c in counts.items():
        size = max(len(groups[g]), 1)
        scored = sorted(
            (
                (c[t] / size)
                * math.log(1 + n_groups * c[t] / total[t])
                * (1.3 if " " in t else 1.0),
                t,
            )
            for t in c
            if c[t] >= 2 or size == 1
        )
        chosen: list[str] = []
        used: set[str] = set()
        for _, term in reversed(scored):
            if " " not in term:
                # A phrase most of the word's items share reads better: "sunrise alarm".
                phrases = [
                    p for p in c if " " in p and term in p.split() and c[p] * 5 >= c[term] * 3
                ]
                term = max(phrases, key=lambda p: (c[p], p)) if phrases else term
            words_of = set(term.split())
            if words_of <= used:
                continue
            chosen.append(term)
            used |= words_of
            if len(chosen) == parts:
                break
        # "alarm" chosen before "sunrise alarm": the phrase says it already.
        chosen = [
            t for t in chosen if " " in t or not any(t in p.split() for p in chosen if " " in p)
        ]
        out[g] = ", ".join(chosen) if chosen else _fallback(groups[g], language)
    return out


def _fallback(texts: Iterable[str], language: str) -> str:
    for text in texts:
        ws = words(text, language)
        if ws:
            return " ".join(ws[:3])
    return "(no words)"
