"""Text normalisation and feature extraction shared by training and inference.

Plain Python (plus the sentiment lexicons), so the saved model needs no scikit-learn at
run time; training and inference call the same `analyse`, so they cannot drift apart.

English and Dutch: contractions of both are expanded, and the cue phrases of both
languages fire the same cue features ("would be nice" and "zou handig zijn" are both
`idea_would`), so what the model learned from English reviews carries over to Dutch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Set

from earshot.classify.sentiment import lexicon_scores, looks_dutch

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
    # Dutch and Flemish chat spelling.
    (r"(?<!\w)'t\b", "het"),
    (r"(?<!\w)'k\b", "ik"),
    (r"\bda'?s\b", "dat is"),
    (r"\btis\b", "het is"),
    (r"\bm'?n\b", "mijn"),
    (r"\bz'?n\b", "zijn"),
    (r"\bnie\b|\bni\b", "niet"),
    (r"\ba\.?u\.?b\.?(?!\w)|\bsvp\b", "alsjeblieft"),
    (r"\bff\b", "even"),
    (r"\bipv\b", "in plaats van"),
    (r"\bnogsteeds\b", "nog steeds"),
    (r"\bkunde\b", "kun je"),
    (r"\bzoudt\b", "zou"),
)
_CONTRACTIONS_RE = [(re.compile(p), r) for p, r in _CONTRACTIONS]

_URL_RE = re.compile(r"https?://\S+|www\.\S+")
_EMAIL_RE = re.compile(r"\S+@\S+\.\w+")
# Version strings, prices and counts carry no type signal but fragment the vocabulary.
_NUM_RE = re.compile(r"\d+(?:[.,:/]\d+)*")
_REPEAT_RE = re.compile(r"(\w)\1{2,}")
_TOKEN_RE = re.compile(r"[^\W\d_]+|<[a-z]+>|[!?]")  # letters incl. é, ë, ï

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

_NL_NOT = r"(niet|nooit|geen)"
_NL_PLEASANT = (
    r"(fijn|handig|leuk|mooi|top|super|geweldig|nuttig|chique|tof|praktisch|welkom|ideaal"
    r"|prettig|cool|plezant|wenselijk|beter)"
)
_DUTCH_CUES: dict[str, str] = {
    "idea_polite": r"\b(graag|alsjeblieft|alstublieft)\b.*\b(toevoeg\w*|toe (te )?voegen"
    + r"|inbouwen|maken|mogelijk maken)\b",
    "idea_would": r"\b(zou|zouden|zo'?n|het zou)\b( \w+)?( (echt|heel|erg|zeer|wel|toch|nog))?"
    + rf" {_NL_PLEASANT}\b|\b{_NL_PLEASANT} (zou zijn|als|mocht|moest)\b"
    + r"|\bwat (fijn|handig|leuk) zou\b",
    "idea_love": r"\b(zou|wil|wou|zag|had|zie|hoor)( ik| je| we| het)? graag\b"
    + r"|\bgraag (een|meer|ook|zien)\b"
    + r"|\bik (zou|wil|wou) (graag|ook|even)?\b",
    "idea_wish": r"\b(hoop|hoopte|hopelijk|wens|zou willen|zouden willen)\b",
    "idea_should": r"\b(kunnen|kunt|kun|kan|zouden|zou|moeten|moet)( jullie| je| ze| u| er)\b"
    + r".{0,60}"
    + r"\b(toevoeg\w*|toe (te )?voegen|maken|inbouwen|ondersteunen|aanbieden|mogelijk)\b",
    "idea_option": r"\b(optie|mogelijkheid|functie|functionaliteit|instelling|manier|knop|modus)"
    + r" (om|voor|waarmee|zodat|waarbij)\b|\bte kunnen\b|\bkunnen (instellen|kiezen|aanpassen)\b",
    "idea_add": r"\btoevoeg\w*|\btoe (te )?voegen\b|\bvoeg\w* .{0,50}\btoe\b"
    + r"|\bterug(brengen|komen)\b",
    "idea_missing": r"\b(ik|we) (mis|missen)\b|\bmis (ik|ook|nog|wel)\b"
    + r"|\bgeen (optie|mogelijkheid|manier|functie|instelling)\b",
    "idea_suggest": r"\b(suggestie|voorstel|idee|verzoek|feature ?request|wensenlijst|tip)"
    + r"(s|en|tje)?\b",
    "idea_integrate": r"\b(integratie|integreren|koppeling|compatib\w*|ondersteuning (voor|van)"
    + r"|samenwerk\w*|koppelen (met|aan))\b",
    "prob_crash": r"\b(crash\w*|loopt (\w+ )?vast|vastgelopen|vastloop\w*|blijft hangen|hangt"
    + r"|bevriest|bevroren|hapert|haperen|bug\w*|glitch\w*|lagt|laggy)\b",
    "prob_notwork": r"\b(werkt|werken|werkte|werkten|doet|doen|deed|reageert|laadt|opent|gaat|slaat"
    + r"|springt|komt|kwam|start|verbindt|koppelt|wil|wou|lukt|lukte)( het| ie| hij| ze| zij)?"
    + rf"( \w+)? ({_NL_NOT}|niet meer)\b"
    + rf"|\b{_NL_NOT} (meer )?(te )?(werk\w*|verbind\w*|verbonden|reag\w*|laden|geladen|open\w*"
    + r"|koppel\w*|gekoppeld|synchroni\w*|geleverd|aangekomen|ontvangen|binnen|gevonden"
    + r"|opgestart|aan|uit|meer)\b",
    "prob_cannot": r"\b(kan|kun|kunnen|kon|konden)( ik| je| het| we| ze| er)( \w+)? (niet|geen)\b"
    + r"|\b(niet mogelijk|onmogelijk|mislukt\w*|lukt niet|lukt het niet)\b",
    "prob_error": r"\b(fout\w*|error|kapot\w*|defect\w*|verkeerd\w*|onjuist\w*|klopt\w* (\w+ )?niet"
    + r"|ontbre\w*|kwijt|verloren|verdwenen|verdwijn\w*|verbroken|offline|onbereikbaar"
    + r"|(is|zijn|ging|gaat|gingen) stuk|leeg)\b",
    "prob_defect": r"\b(te laat|vertraag\w*|vertraging\w*|traag|trager|flikker\w*|knipper\w*"
    + r"|oververhit\w*|zoem\w*|beschadigd\w*|gebroken|gebarsten|deuk\w*|gaat (\w+ )?uit"
    + r"|valt (\w+ )?(uit|weg)|uitgevallen|willekeurig|uit zichzelf|vanzelf|zomaar"
    + r"|(twee ?keer|dubbel) (\w+ )?(afgeschreven|betaald|gefactureerd)|terugbetal\w*"
    + r"|geld terug|nooit (aangekomen|ontvangen|geleverd|gekregen)"
    + r"|niet (ontvangen|geleverd|aangekomen|gekregen))\b",
    "prob_update": r"\b(sinds|na|sedert) "
    + r"(de |het |die |deze |dat |laatste |vorige |recente |nieuwe |een )*"
    + r"(update|upgrade|versie|firmware\w*|software\w*)\b",
    "prob_keeps": r"\bblijf(t|ven)? (maar )?\w+en\b|\b(steeds|telkens|constant|voortdurend|continu"
    + r"|om de haverklap|de hele tijd)\b|\b(elke|iedere) (keer|dag|avond|nacht|ochtend)\b",
    "prob_fix": r"\b(oplossen|opgelost|los (dit|het|dat) (\w+ )?op|repareren|gerepareerd"
    + r"|fixen|gefixt)\b",
    "prob_still": r"\bnog (steeds|altijd) (niet|geen)\b",
    "other_praise": r"\b(geweldig\w*|top|super|prima|fantastisch\w*|uitstekend\w*|perfect\w*"
    + r"|heerlijk\w*|tevreden|blij|makkelijk\w*|gemakkelijk\w*|handig\w*|mooi\w*|goed\w*|tof\w*"
    + r"|chique|plezant\w*|content|aanrader|schitterend\w*|fijn\w*|in orde|dik oké|oké)\b",
    "other_thanks": r"\b(bedankt|dank( je| u)?( wel)?|dankjewel|dankuwel|merci)\b",
}
_CUE_RES = [(name, re.compile(p)) for name, p in _CUES.items()] + [
    (name, re.compile(p)) for name, p in _DUTCH_CUES.items()
]


def cues(norm_text: str) -> list[str]:
    return list(dict.fromkeys(name for name, rx in _CUE_RES if rx.search(norm_text)))


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
    best worst
    de het een ik mij me mijn we wij ons onze je jij jouw jullie u uw hij zij ze hun dit dat
    deze die daar hier er ben zijn wordt worden werd doe doet deed heb heeft hebben zal zou
    zouden kan kun kunt kunnen kon moet moeten mag wil wilt willen niet geen nooit meer en of
    maar als dan dus ook nog al wel heel erg zeer echt te van op aan bij met voor naar uit om
    tot na sinds zonder graag alsjeblieft bedankt dank toevoegen optie mogelijkheid functie
    werkt werken werkte fout probleem problemen steeds telkens blijft goed slecht beter
    even weer""".split()
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
    if looks_dutch(text):  # lets Dutch have its own class priors without moving English's
        out.append("lang:nl")
    return out


def _bin(x: float, edges: tuple[float, ...]) -> str:
    for i, e in enumerate(edges):
        if x < e:
            return str(i)
    return str(len(edges))
