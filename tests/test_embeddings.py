"""The shipped static embedding: same vectors as WordLlama's own loader, offline."""

from __future__ import annotations

import numpy as np
import pytest

from earshot.embeddings import DIMENSION, embedder

TEXTS = [
    "where could I check when my item is going to arrive?",
    "Waar blijft mijn bestelling?",
    "",
]


def test_vectors_equal_wordllamas_own() -> None:
    """Our reader of the package's files pools exactly as WordLlama's `embed` does."""
    from wordllama import WordLlama

    from earshot.embeddings import package_dir

    theirs = WordLlama.load(
        config="l2_supercat", dim=DIMENSION, cache_dir=package_dir(), disable_download=True
    ).embed(TEXTS[:2])
    ours = embedder().embed(TEXTS[:2])
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_similar_questions_are_closer_than_unrelated_ones() -> None:
    """Words the training data never used still land near their meaning."""
    e = embedder().embed(
        [
            "when will my parcel arrive",
            "where is my package, it has not been delivered",
            "how do i get red wine out of a couch cushion",
        ],
        normalise=True,
    )
    assert float(e[0] @ e[1]) > float(e[0] @ e[2]) + 0.1


def test_empty_text_is_a_zero_row() -> None:
    out = embedder().embed(TEXTS, normalise=True)
    assert out.shape == (3, DIMENSION)
    assert not out[2].any()
    assert np.isclose(np.linalg.norm(out[0]), 1.0)
    with pytest.raises(TypeError):
        embedder().embed([None])  # type: ignore[list-item]
