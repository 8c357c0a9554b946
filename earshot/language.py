"""Which language to answer a customer in.

Precedence (issue 8): the customer's explicit choice, then the messenger's language
setting, then detection on the first substantive message, then the configured default.
Detection is a stop-word vote: customer messages are short and the choice is between a
handful of configured languages, so a word list is more reliable than character models.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

# Frequent function words that are rare in the other language.
_STOPWORDS: dict[str, frozenset[str]] = {
    "nl": frozenset(
        "de het een en ik je jij u uw mijn me niet geen wat hoe waar waarom wanneer welke "
        "kan kun kunt wil wilt moet is zijn was ben bent heb hebt heeft van voor met op "
        "aan bij naar dat dit die er nog ook maar al wel graag bestelling pakket "
        "werkt gaat doet hallo hoi goedemorgen dag bedankt dank alsjeblieft alstublieft "
        "gij ge da zo nu om te tot als of dan omdat mag mogen".split()
    ),
    "en": frozenset(
        "the a an and i you your my me not no what how where why when which can could "
        "would want need should is are was were am have has had of for with on at to from "
        "that this these there still also but already please order parcel works does "
        "hello hi thanks thank it its do don't doesn't isn't i'm it's".split()
    ),
}
SET_LANGUAGE = "/set_language"
_CHOICE = re.compile(r'^/set_language(?:\{"language": ?"([a-z]{2})"\})?$')
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
MIN_WORDS = 2


def normalise(code: str | None) -> str | None:
    """``nl-BE`` -> ``nl``; None for empty or malformed codes."""
    if not code:
        return None
    base = code.strip().replace("_", "-").split("-")[0].lower()
    return base if re.fullmatch(r"[a-z]{2,3}", base) else None


def detect(text: str, languages: Sequence[str]) -> str | None:
    """The configured language ``text`` is most likely in, or None when it can't tell
    (commands and button payloads, fewer than two words, a tie)."""
    if not text or text.startswith("/"):
        return None
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < MIN_WORDS:
        return None
    scores = {
        lang: sum(w in _STOPWORDS[lang] for w in words) for lang in languages if lang in _STOPWORDS
    }
    if not scores:
        return None
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    best, best_score = ranked[0]
    if best_score == 0 or (len(ranked) > 1 and ranked[1][1] == best_score):
        return None
    return best


def resolve(
    *,
    chosen: str | None,
    reported: str | None,
    detected: str | None,
    languages: Sequence[str],
    default: str,
) -> str:
    """Apply the precedence; only configured languages count."""
    for candidate in (chosen, normalise(reported), detected):
        if candidate and candidate in languages:
            return candidate
    return default


def command_payload(args: Sequence[str]) -> str:
    """The intent payload of `/language [code]`: a choice, or a request for the buttons."""
    if args and re.fullmatch(r"[A-Za-z]{2}(?:[-_][A-Za-z]{2})?", args[0]):
        return SET_LANGUAGE + json.dumps({"language": normalise(args[0])})
    return SET_LANGUAGE


def chosen(payload: str, languages: Sequence[str]) -> str | None:
    """The language an explicit-choice payload picks, if it is one we offer."""
    m = _CHOICE.match(payload)
    return m.group(1) if m and m.group(1) in languages else None
