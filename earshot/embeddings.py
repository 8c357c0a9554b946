"""Sentence vectors from WordLlama's static word embedding, shipped inside its wheel.

Pretrained vectors know words our training data never used ("couch", "arrive",
"registration"), which the n-gram models cannot. `wordllama` 0.4.0.post1 bundles a
256-dimension embedding of Llama 2's 32,000 sub-word tokens (16 MB) and its tokenizer,
so nothing is downloaded.

Its own loader needs numpy 2 and pydantic 2, which the Rasa environment (numpy 1,
pydantic 1) cannot have, so both environments read the package's files here with the
libraries it uses itself (`tokenizers`, `safetensors`) and pool the same way it does: the
mean of the token vectors, no special tokens, no truncation. tests/test_embeddings.py
checks the vectors equal WordLlama's own `embed` where it can be imported.
"""

from __future__ import annotations

import importlib.util
import threading
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

DIMENSION = 256
_WEIGHTS = "weights/l2_supercat_256.safetensors"
_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"


def package_dir() -> Path:
    """The installed `wordllama` package's folder, found without importing it."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("wordllama is not installed (requirements/*.txt pin it)")
    return Path(next(iter(spec.submodule_search_locations)))


class StaticEmbedder:
    """Mean-pooled WordLlama token vectors for a batch of texts."""

    def __init__(self, root: Path | None = None) -> None:
        """Read the embedding matrix and tokenizer from ``root`` (the package by default)."""
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        root = root or package_dir()
        (matrix,) = load_file(str(root / _WEIGHTS)).values()
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self.tokenizer: Tokenizer = Tokenizer.from_file(str(root / _TOKENIZER))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        # The Rust tokenizer is not documented as safe to share between threads.
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        return int(self.matrix.shape[1])

    def embed(self, texts: list[str], normalise: bool = False) -> np.ndarray:
        """One float32 row per text; an empty text gives a zero row."""
        with self._lock:
            encoded = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        last = self.matrix.shape[0] - 1
        for i, enc in enumerate(encoded):
            if enc.ids:
                out[i] = self.matrix[np.clip(enc.ids, 0, last)].mean(axis=0)
        if normalise:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out /= np.where(norms > 0, norms, 1.0)
        return out


@cache
def embedder() -> StaticEmbedder:
    """The process-wide embedder, loaded on first use (about 0.2 s, 33 MB)."""
    return StaticEmbedder()
