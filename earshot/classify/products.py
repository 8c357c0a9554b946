"""Find which catalogue product a text mentions. Names come from the caller, never from code."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

Catalogue = Mapping[str, Sequence[str]]


def _name_pattern(name: str) -> str | None:
    words = re.findall(r"[^\W_]+", name.lower())
    if not words:
        return None
    *head, last = (re.escape(w) for w in words)
    # Plurals of the last word: bulb(s), box(es), battery/batteries.
    if last.endswith("y") and len(last) > 2 and last[-2] not in "aeiou":
        last = f"{last[:-1]}(?:y|ies)"
    else:
        last = f"{last}(?:e?s)?"
    # "light bulb", "light-bulb" and "lightbulb" are the same name.
    body = r"[\s\-_]*".join([*head, last])
    return rf"(?<![^\W_]){body}(?![^\W_])"


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
