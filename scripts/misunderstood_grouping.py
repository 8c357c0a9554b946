"""Measure how the Misunderstood page groups messages -> reports/misunderstood-grouping.md.

Customer wording from the train parts of public corpora (Banking77 train, CLINC150 train;
never a test part), a sample of intents with a few messages each, shuffled: a good
grouping puts each intent's messages together (completeness) and nothing else with them
(homogeneity). Compared: the page's centroid threshold grouping (earshot.knowledge.misunderstood)
at several thresholds, and scikit-learn's AgglomerativeClustering (average linkage,
cosine distance threshold).
"""

from __future__ import annotations

import csv
import random
import sys
import time
from pathlib import Path

from sklearn.metrics import adjusted_rand_score, homogeneity_completeness_v_measure

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import numpy as np  # noqa: E402

from earshot.knowledge.misunderstood import GROUP_THRESHOLD, cluster, vectors  # noqa: E402

# ../shared/datasets from the repository; a worktree may sit one level deeper.
DATA = next(
    (p / "shared" / "datasets" for p in ROOT.parents if (p / "shared" / "datasets").is_dir()),
    ROOT.parent / "shared" / "datasets",
)
INTENTS, PER_INTENT, SEED = 30, 8, 7


def centroid(vecs: np.ndarray, threshold: float) -> list[int]:
    """The alternative: each message joins the most similar group centroid, else starts one."""
    labels: list[int] = []
    centroids: list[np.ndarray] = []
    for vec in vecs:
        sims = [float(vec @ c) / float(np.linalg.norm(c)) for c in centroids]
        best = int(np.argmax(sims)) if sims else -1
        if best < 0 or sims[best] < threshold:
            centroids.append(vec.astype(np.float64).copy())
            labels.append(len(centroids) - 1)
        else:
            centroids[best] += vec
            labels.append(best)
    return labels


def sample(rows: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    rng = random.Random(SEED)
    by: dict[str, list[str]] = {}
    for text, label in rows:
        by.setdefault(label, []).append(text)
    picked = rng.sample(sorted(by), INTENTS)
    pairs = [(t, lab) for lab in picked for t in rng.sample(by[lab], PER_INTENT)]
    rng.shuffle(pairs)
    return [p[0] for p in pairs], [p[1] for p in pairs]


def sources() -> dict[str, list[tuple[str, str]]]:
    with (DATA / "banking77" / "train.csv").open(encoding="utf-8") as f:
        banking = [(r["text"], r["category"]) for r in csv.DictReader(f)]
    with (DATA / "clinc150" / "clinc150_train_val.csv").open(encoding="utf-8") as f:
        clinc = [
            (r["text"], r["intent"])
            for r in csv.DictReader(f)
            if r["split"] == "train" and r["intent"] != "oos"
        ]
    return {"Banking77 train": banking, "CLINC150 train": clinc}


def main() -> int:
    lines = [
        "# Misunderstood page: grouping measured",
        "",
        f"{INTENTS} intents x {PER_INTENT} messages per source, shuffled (seed {SEED}); "
        "WordLlama static embedding (earshot.embeddings), cosine similarity. "
        "Homogeneity: groups hold one intent; completeness: an intent stays in one group.",
        "",
        "| source | method | groups | ARI | homogeneity | completeness | V |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, rows in sources().items():
        texts, labels = sample(rows)
        vecs = vectors(texts)
        runs = {}
        for th in (0.35, 0.45, 0.50, 0.55, 0.60, 0.70):
            runs[f"centroid threshold {th:.2f}"] = centroid(vecs, th)
        for th in (0.35, 0.40, 0.45, 0.50, 0.55):
            mark = " (shipped)" if th == GROUP_THRESHOLD else ""
            runs[f"agglomerative average {th:.2f}{mark}"] = cluster(vecs, th)
        for method, pred in runs.items():
            h, c, v = homogeneity_completeness_v_measure(labels, pred)
            ari = adjusted_rand_score(labels, pred)
            scores = " | ".join(f"{x:.2f}" for x in (ari, h, c, v))
            lines.append(f"| {name} | {method} | {len(set(pred))} | {scores} |")
    lines.append("")
    lines.append(f"({INTENTS} true intents per source; measured {time.strftime('%Y-%m-%d')})")
    out = ROOT / "reports" / "misunderstood-grouping.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
