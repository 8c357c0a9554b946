"""Grouping vectors into themes, and following themes from one run to the next.

Pure functions over numpy arrays; the database side is `earshot/themes/service.py`.

Method (compared with HDBSCAN and k-means in reports/themes.md): agglomerative
clustering with average linkage over cosine distance, cut at a fixed distance, so the
number of themes follows the data. Its cost grows with the square of the items, so above
`DIRECT_LIMIT` items it clusters a random sample and lets the other items join the
nearest cluster found, in a few rounds (`_sampled`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import AgglomerativeClustering

# Cut of the dendrogram (average cosine distance between two merged groups), per language;
# chosen on the development sets, see reports/themes-dev.md. Dutch vectors lean on wording,
# whose cosines run lower, so its cut is looser.
DISTANCE_THRESHOLDS: dict[str, float] = {"en": 0.8, "nl": 0.9}
DISTANCE_THRESHOLD = 0.9  # other languages
# Fewer members than this make no theme: the items stay unthemed until others join them.
MIN_SIZE = 2
DIRECT_LIMIT = 3000
ROUNDS = 4  # samples clustered, at most, above DIRECT_LIMIT items
# Cosine between an item and a theme's centroid to join it (a new item, or one outside
# the sample of a large run); typical members sit at 0.4-0.8 from their own centroid.
JOIN_SIMILARITY = 0.3
NOISE = -1


def threshold_for(language: str) -> float:
    """The dendrogram cut for a language's items."""
    return DISTANCE_THRESHOLDS.get(language, DISTANCE_THRESHOLD)


def _agglomerate(x: np.ndarray, threshold: float) -> np.ndarray:
    if len(x) == 1:
        return np.zeros(1, dtype=int)
    model = AgglomerativeClustering(
        n_clusters=None, distance_threshold=threshold, metric="cosine", linkage="average"
    )
    return np.asarray(model.fit_predict(x), dtype=int)


def cluster(
    x: np.ndarray,
    *,
    threshold: float | None = None,
    language: str = "",
    min_size: int = MIN_SIZE,
    seed: int = 0,
) -> np.ndarray:
    """A cluster number per row of `x` (unit vectors); NOISE for groups under `min_size`.

    The cut is `threshold`, else the language's (`threshold_for`)."""
    threshold = threshold_for(language) if threshold is None else threshold
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=int)
    if n <= DIRECT_LIMIT:
        found = _agglomerate(x, threshold)
    else:
        found = _sampled(x, threshold, min_size, np.random.default_rng(seed))
    sizes = Counter(found.tolist())
    return np.array([c if sizes[c] >= min_size else NOISE for c in found.tolist()], dtype=int)


def _sampled(
    x: np.ndarray, threshold: float, min_size: int, rng: np.random.Generator
) -> np.ndarray:
    """Many items: cluster a sample, let every other item join its nearest cluster if it
    is close enough (`JOIN_SIMILARITY`, as new items join themes), and repeat on the
    items left over, so themes too rare to show in the first sample get their turn."""
    found = np.full(len(x), NOISE, dtype=int)
    remaining = np.arange(len(x))
    next_label = 0
    for _ in range(ROUNDS):
        if len(remaining) <= DIRECT_LIMIT:
            labels = _agglomerate(x[remaining], threshold) if len(remaining) else remaining
            found[remaining] = labels + next_label
            break
        sample = rng.choice(remaining, DIRECT_LIMIT, replace=False)
        labels = _agglomerate(x[sample], threshold)
        sizes = np.bincount(labels)
        kept = np.flatnonzero(sizes >= min_size)
        if not len(kept):
            break
        centres = np.vstack([centroid(x[sample[labels == c]]) for c in kept])
        sims = x[remaining] @ centres.T
        best = sims.argmax(axis=1)
        close = sims[np.arange(len(remaining)), best] >= JOIN_SIMILARITY
        found[remaining[close]] = kept[best[close]] + next_label
        in_kept = np.isin(labels, kept)
        found[sample[in_kept]] = labels[in_kept] + next_label
        next_label += int(labels.max()) + 1
        remaining = remaining[found[remaining] == NOISE]
    return found


def centroid(x: np.ndarray) -> np.ndarray:
    """The unit mean direction of some unit vectors."""
    mean = x.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm if norm > 0 else mean).astype(np.float32)


def match(
    new: Mapping[int, Sequence[int]],
    old: Mapping[int, Sequence[int]],
) -> dict[int, int]:
    """New cluster -> old theme, one to one, by shared members (ids in both mappings).

    The pairing that shares the most members overall (Hungarian method); a pair counts
    only when the shared members are at least half of the new cluster or of the old
    theme, so a theme keeps its id while it stays recognisably itself.
    """
    new_keys = list(new)
    old_keys = list(old)
    if not new_keys or not old_keys:
        return {}
    where = {m: j for j, t in enumerate(old_keys) for m in old[t]}
    overlap = np.zeros((len(new_keys), len(old_keys)), dtype=np.int64)
    for i, c in enumerate(new_keys):
        for m in new[c]:
            j = where.get(m)
            if j is not None:
                overlap[i, j] += 1
    rows, cols = linear_sum_assignment(overlap, maximize=True)
    out: dict[int, int] = {}
    for i, j in zip(rows.tolist(), cols.tolist(), strict=False):
        shared = int(overlap[i, j])
        c, t = new_keys[i], old_keys[j]
        if shared and 2 * shared >= min(len(new[c]), len(old[t])):
            out[c] = t
    return out
