"""Text normalisation and feature extraction shared by training and inference.

Plain Python (plus the VADER lexicon), so the saved model needs no scikit-learn at run
time; training and inference call the same `analyse`, so they cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Set

from earshot.classify.sentiment import lexicon_scores

# Contractions are expanded so "doesn't work", "doesnt work" and "does not work" share
# features; reviews drop apostrophes constantly.
_CONTRACTIONS: tuple[tuple[str, str], ...] = (
    (r"\bcan'?t\b", "can not"),
    (r"\bcannot\b", "can not"),
    (r"\bwon'?t\b", "will not"),
    (r"\bain'?t\b", "is not"),
    (r"\b(do|does|did|is|are|was|were|has|have|had|could|would|should|must)n'?t\b", r"\1 not"),
    (r"\bi'?m\b", "i am"),
    (r"\b(i|you|we|they|it|that|there|he|she)'d\b", r"\1 would"),
    (r"\b(i|you|we|they)'ll\b", r"\1 will"),
    (r"\bpl[sz]\b", "please"),
    (r"\bpleas\b", "please"),
    (r"\bthx\b", "thanks"),
    (r"\bu\b", "you"),
)
_CONTRACTIONS_RE = [(re.compile(p), r) for p, r in _CONTRACTIONS]

_URL_RE = re.compile(r"https?://\S+|www\.\S+")
_EMAIL_RE = re.compile(r"\S+@\S+\.\w+")
# Version strings, prices and counts carry no type signal but fragment the vocabulary.
_NUM_RE = re.compile(r"\d+(?:[.,:/]\d+)*")
_REPEAT_RE = re.compile(r"(\w)\1{2,}")
_TOKEN_RE = re.compile(r"[a-z]+|<[a-z]+>|[!?]")

NUM = "<num>"
ENT = "<ent>"


def normalise(text: str) -> str:
    """Lower-case, unify apostrophes, expand contractions, mask URLs/e-mails/numbers."""
    t = text.lower().replace("\u2019", "'").replace("`", "'").replace("\u00b4", "'")
    t = _URL_RE.sub(" <url> ", t)
    t = _EMAIL_RE.sub(" <email> ", t)
    t = _NUM_RE.sub(f" {NUM} ", t)
    t = _REPEAT_RE.sub(r"\1\1", t)  # "sooooo" -> "soo"
    for pat, rep in _CONTRACTIONS_RE:
        t = pat.sub(rep, t)
    return t


def tokens(norm_text: str, masked: Set[str] = frozenset()) -> list[str]:
    """Word tokens of normalised text; words in `masked` (domain names) become <ent>."""
    return [ENT if w in masked else w for w in _TOKEN_RE.findall(norm_text)]


# Cue phrases that mark a request or a malfunction in any product domain. They let the
# model share evidence between surface variants it has not seen together in training.


def _any(words: str) -> str:
    return "(" + "|".join(words.split()) + ")"


_CUES: dict[str, str] = {
    "idea_polite": r"\bplease "
    + _any("add make include allow let give bring consider implement provide support introduce")
    + r"\b",
    "idea_would": r"\b(would|will|it'?d|that'?d) (be )?(really |very |so |even )?"
    + _any("nice great good helpful useful awesome cool better handy lovely perfect")
    + r"\b",
    "idea_love": r"\b(would|i'?d) (love|like|prefer|appreciate)\b",
    "idea_wish": r"\b(i |we )?wish\b|\bhop(e|ing) (you|they|for|to see)\b",
    "idea_should": r"\b(should|could|can) (you |they |it |we )?"
    + r"(add|have|include|allow|let|make|support|be able|offer|show)\b",
    "idea_option": r"\b(an? )?(option|ability|way|setting|feature|possibility) to\b|\bbe able to\b",
    "idea_add": r"\badd(ing)? (an?|the|more|some|support|option)\b|\bbring back\b",
    "idea_missing": r"\b(missing|lacks?|needs?|wants?) (an?|more|the|some)\b"
    + r"|\bno (option|way|setting)\b",
    "idea_suggest": r"\bsuggest(ion)?s?\b|\bfeature request\b|\brequest\b",
    "idea_integrate": r"\b(integration|integrate|compatib\w*|support for|sync with)\b",
    "prob_crash": r"\b"
    + _any(r"crash\w* freez\w* froze frozen hang(s|ing)? stuck lag\w* glitch\w* bug\w*")
    + r"\b",
    "prob_notwork": r"\b(not|never|no longer|stopped|stops|stop) "
    + _any(
        r"work\w* load\w* open\w* sync\w* connect\w* show\w* updat\w* record\w* count\w*"
        r" respond\w* arriv\w* start\w* send\w* pair\w*"
    )
    + r"\b",
    "prob_cannot": r"\b(can not|unable to|will not|impossible to|fails? to|failed to)\b",
    "prob_error": r"\b"
    + _any(
        r"error fail\w* broken wrong incorrect\w* inaccura\w* missing lost disappear\w*"
        r" reset\w* disconnect\w* drain\w*"
    )
    + r"\b",
    # Malfunction words from any domain; grouped so that "flicker" or "late" borrow the
    # weight that "slow" and "broken" earn in app reviews.
    "prob_defect": r"\b"
    + _any(
        r"late delay\w* slow\w* flicker\w* overheat\w* noisy leak\w* damag\w* broke cracked"
        r" dead drop(s|ped|ping) skip(s|ped|ping) stutter\w* blurr?y unresponsive unstable"
        r" randomly"
    )[:-1]
    + r"|by itself|on its own|charged (me )?twice|refund\w*|never (arrived|came|received)"
    + r"|not received)\b",
    "prob_update": r"\b(since|after) (the |this |last |latest |recent |new |an? )*"
    + r"(update|upgrade|version)\b",
    "prob_keeps": r"\bkeeps? (on )?\w+ing\b|\bevery (single )?time\b|\ball the time\b"
    + r"|\bconstantly\b",
    "prob_fix": r"\b(fix|fixed|fixing|resolve|solve)\b",
    "prob_still": r"\bstill (not|no|does not|can not|has not|have not)\b",
    "other_praise": r"\b"
    + _any("love great awesome excellent amazing best perfect fantastic good nice happy easy")
    + r"\b",
    "other_thanks": r"\bthanks?\b|\bthank you\b",
}
_CUE_RES = [(name, re.compile(p)) for name, p in _CUES.items()]


def cues(norm_text: str) -> list[str]:
    return [name for name, rx in _CUE_RES if rx.search(norm_text)]


def _ngrams(seq: list[str], lo: int, hi: int) -> Iterable[str]:
    for n in range(lo, hi + 1):
        for i in range(len(seq) - n + 1):
            yield " ".join(seq[i : i + n])


# The abstract view keeps only function words and the cue vocabulary; everything else is
# "_". Its n-grams ("please add _", "does not _") describe sentence shape, not topic,
# which is what transfers to products the training data never mentions.
FUNCTION_WORDS = frozenset(
    """a an the i me my we us our you your it its this that these those there here he she
    they them their is am are was were be been being do does did done have has had having
    will would should could can may might must shall not no never nor and or but if then
    than so too very just only also even still yet again ever always anymore any some all
    every each more most less much many few other another same such what which who whom
    whose when where why how to of in on at by for with from about into onto over under
    after before since until while during up down out off back away as like please thanks
    thank ! ? <num> <ent> <url> get gets got make makes made let lets want wants wish hope
    need needs love like add added adding option options able way feature features keep
    keeps kept work works working worked stop stops stopped fix fixed update updated
    updates issue issues problem problems bug bugs error crash crashes crashing load
    loading show showing sync open opening connect connection nice great good bad better
    best worst""".split()
)


def abstract(toks: list[str]) -> list[str]:
    return [t if t in FUNCTION_WORDS else "_" for t in toks]


BLOCKS = ("word", "shape", "char", "cue", "meta")


def analyse(text: str, masked: Set[str] = frozenset()) -> dict[str, list[str]]:
    """All feature blocks of one text; each block is L2-normalised separately later."""
    norm = normalise(text)
    toks = tokens(norm, masked)
    chars: list[str] = []
    for t in toks:
        w = f" {t} "
        for n in range(3, 6):
            chars.extend(w[i : i + n] for i in range(max(1, len(w) - n + 1)))
    return {
        "word": list(_ngrams(toks, 1, 2)),
        "shape": [g for g in _ngrams(abstract(toks), 2, 3) if g.strip("_ ")],
        "char": chars,
        "cue": cues(norm),
        "meta": meta_tokens(text, len(toks)),
    }


def meta_tokens(text: str, n: int) -> list[str]:
    """Length and lexicon-sentiment bins: topic-free signals that transfer across apps."""
    length = (
        "len:1-3" if n <= 3 else "len:4-10" if n <= 10 else "len:11-30" if n <= 30 else "len:31+"
    )
    compound, pos, neg = lexicon_scores(text)
    out = [length, "sent:" + _bin(compound, (-0.5, -0.05, 0.05, 0.5))]
    if pos > 0 and neg > 0:
        out.append("sent:mixed")
    if "?" in text:
        out.append("has:question")
    return out


def _bin(x: float, edges: tuple[float, ...]) -> str:
    for i, e in enumerate(edges):
        if x < e:
            return str(i)
    return str(len(edges))
