"""Find which catalogue product a text mentions. Names come from the caller, never from code.

Matching is written for English and Dutch. Both inflect the last word ("bulbs", "lampen",
"lampje", "deurbellen", "thermostaten"), and Dutch writes compounds as one word: a long
name (≥ 6 letters, such as "deurbel" or "thermostaat") also matches inside a compound
("deurbelcamera", "videodeurbel", "vloerverwarming"). Short names ("hub", "lamp", "strip")
only match as whole words, so "hubris", "clamp" and "stripped" name nothing; list their
compounds ("ledlamp", "ledstrip") as synonyms instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

Catalogue = Mapping[str, Sequence[str]]

# A name this long is specific enough to be found inside a Dutch compound word.
COMPOUND_MIN_LETTERS = 6
# ... with at least this many letters on the other side ("videodeurbel", not "xdeurbel").
_COMPOUND_PART = r"[^\W\d_]{3,}"
_VOWELS = "aeiouy"


def _last_word(last: str) -> str:
    """The last word of a name with its English and Dutch plural and diminutive endings."""
    forms = [last]
    # Dutch open syllables lose a vowel: thermostaat -> thermostaten, peer -> peren.
    m = re.fullmatch(r"(.*)(aa|ee|oo|uu)([^aeiou])", last)
    if m:
        forms.append(m[1] + m[2][0] + m[3] + "en")
    # ... and short vowels double the consonant: deurbel -> deurbellen, deurbelletje.
    if (
        len(last) > 2
        and last[-1] not in _VOWELS
        and last[-2] in _VOWELS
        and last[-3] not in _VOWELS
    ):
        forms.append(last + last[-1] + "(?:en|etjes?)")
    if last.endswith("y") and len(last) > 2 and last[-2] not in _VOWELS:
        forms.append(f"{last[:-1]}ies")  # battery/batteries
    # bulb(s), box(es), lamp(en), app('s), lamp(je), peer(tje), ...
    ending = r"(?:e?s|'s|en|n|je|jes|tje|tjes|pje|pjes)?"
    return "(?:" + "|".join(forms) + ")" + ending


def _name_pattern(name: str) -> str | None:
    words = re.findall(r"[^\W_]+", name.lower())
    if not words:
        return None
    *head, last = (re.escape(w) for w in words)
    # "light bulb", "light-bulb" and "lightbulb" are the same name.
    body = r"[\s\-_]*".join([*head, _last_word(last)])
    if sum(len(w) for w in words) < COMPOUND_MIN_LETTERS:
        return rf"(?<![^\W_]){body}(?![^\W_])"
    # Inside a compound: "deurbelcamera", "videodeurbel" ("wifi-deurbel" needs no rule).
    part = _COMPOUND_PART
    return rf"(?<![^\W_])(?:{part}?)?{body}(?:{part})?(?![^\W_])"


@lru_cache(maxsize=32)
def _compile(
    entries: tuple[tuple[str, tuple[str, ...]], ...],
) -> tuple[tuple[str, re.Pattern[str]], ...]:
    out = []
    for key, names in entries:
        # The key counts as a name too ("bulb" -> "bulb"); "smart_plug" reads "smart plug".
        for name in (*names, key):
            pattern = _name_pattern(name)
            if pattern:
                out.append((key, re.compile(pattern, re.IGNORECASE)))
    return tuple(out)


def find_product(text: str, catalogue: Catalogue | None) -> str | None:
    """Key of the product the text names, or None.

    The longest matching name wins where names overlap ("Lumen Hub" over "hub"); among
    separate mentions the earliest wins, since people usually name their subject first.
    """
    if not catalogue or not text:
        return None
    entries = tuple((str(k), tuple(str(n) for n in v)) for k, v in catalogue.items())
    hits: list[tuple[int, int, str]] = []  # (start, -length, key)
    for key, rx in _compile(entries):
        hits.extend((m.start(), -(m.end() - m.start()), key) for m in rx.finditer(text))
    if not hits:
        return None
    hits.sort()
    best_start, best_neg_len, best_key = hits[0]
    best_end = best_start - best_neg_len
    # A longer name overlapping the earliest hit is the more specific mention.
    for start, neg_len, key in hits[1:]:
        end = start - neg_len
        if start < best_end and end - start > best_end - best_start:
            best_start, best_end, best_key = start, end, key
    return best_key
