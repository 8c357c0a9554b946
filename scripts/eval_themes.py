"""Theme and duplicate quality on a labelled CSV, written to reports/themes.md.

    python scripts/eval_themes.py [--set tests/data/themes/labelled.csv] [--out reports/themes.md]

The CSV has the columns id, language (en|nl), product, type, text, theme, duplicate_of
(an earlier id or empty). Themes are found per language exactly as `earshot themes run`
finds them (`earshot.themes.cluster` over `earshot.themes.features`); their agreement with
the labelled themes is adjusted mutual information (an item left unthemed counts as a
theme of its own). Duplicates are suggested as the dashboard suggests them: each item in
id order against the earlier items of its language and product, the best one at or above
`earshot.feedback.similar.DUPLICATE_THRESHOLD`; a suggestion is right when both items are in
one duplicate group (duplicate_of chains). The default set is the independent one,
tests/data/themes/labelled.csv (kept apart from development, never tuned on), when it is
there, else the development set scripts/data/themes_dev.csv (`make eval-themes` runs both).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.cluster import HDBSCAN, KMeans
from sklearn.metrics import adjusted_mutual_info_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from earshot.feedback import similar  # noqa: E402
from earshot.themes import cluster, features  # noqa: E402

DEV_SET = ROOT / "scripts/data/themes_dev.csv"
INDEPENDENT_SET = ROOT / "tests/data/themes/labelled.csv"


@dataclass(frozen=True)
class Row:
    id: str
    language: str
    product: str
    type: str
    text: str
    theme: str
    duplicate_of: str


def load(path: Path) -> list[Row]:
    """The labelled rows of a CSV (UTF-8, header row)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return [
            Row(**{k: (r.get(k) or "").strip() for k in Row.__dataclass_fields__})
            for r in csv.DictReader(fh)
        ]


def _singletons(labels: np.ndarray) -> list[int]:
    """Unthemed items (NOISE) as themes of their own, as AMI needs a label per item."""
    top = int(labels.max()) + 1 if len(labels) else 0
    return [int(c) if c != cluster.NOISE else top + i for i, c in enumerate(labels.tolist())]


Method = Callable[[np.ndarray, int], np.ndarray]


def ours(x: np.ndarray, _: int) -> np.ndarray:
    return cluster.cluster(x)


def hdbscan(x: np.ndarray, _: int) -> np.ndarray:
    return np.asarray(HDBSCAN(min_cluster_size=2).fit_predict(x), dtype=int)


def kmeans_oracle(x: np.ndarray, k: int) -> np.ndarray:
    """k-means told the true number of themes (an upper bound no real run has)."""
    return np.asarray(KMeans(min(k, len(x)), n_init=5, random_state=0).fit_predict(x), dtype=int)


METHODS: dict[str, Method] = {
    "agglomerative, average linkage (chosen)": ours,
    "HDBSCAN (min cluster size 2)": hdbscan,
    "k-means with the true k (oracle)": kmeans_oracle,
}


def themes_by_language(
    rows: Sequence[Row], method: Method = ours, meaning: float | None = None
) -> dict[str, tuple[list[Row], np.ndarray]]:
    """Per language: its rows and the cluster number of each."""
    out = {}
    saved = dict(features.MEANING_WEIGHTS)
    if meaning is not None:
        features.MEANING_WEIGHTS.update(dict.fromkeys(("en", "nl"), meaning))
    try:
        for lang in sorted({r.language for r in rows}):
            mine = [r for r in rows if r.language == lang]
            texts = [r.text for r in mine]
            x = features.Space.fit(texts, lang).vectors(texts)
            out[lang] = (mine, method(x, len({r.theme for r in mine})))
    finally:
        features.MEANING_WEIGHTS.update(saved)
    return out


def incremental(rows: Sequence[Row], share: float = 0.6) -> dict[str, tuple[list[Row], np.ndarray]]:
    """Themes as they stand when the first `share` of items (by id) were clustered in a full
    run and the rest joined one by one, as `earshot.themes.service.assign` does: the nearest
    theme at `cluster.JOIN_SIMILARITY` or more, else a new theme with the closest unthemed
    item at `service.PAIR_SIMILARITY` or more, else none."""
    from earshot.themes import service

    out = {}
    for lang in sorted({r.language for r in rows}):
        mine = [r for r in rows if r.language == lang]
        cut = max(2, int(len(mine) * share))
        first = [r.text for r in mine[:cut]]
        space = features.Space.fit(first, lang)
        x = space.vectors([r.text for r in mine])
        labels = list(cluster.cluster(x[:cut]).tolist())
        for i in range(cut, len(mine)):
            known = sorted({c for c in labels if c != cluster.NOISE})
            if known:
                centres = np.vstack(
                    [cluster.centroid(x[: len(labels)][np.array(labels) == c]) for c in known]
                )
                sims = centres @ x[i]
                if sims.max() >= cluster.JOIN_SIMILARITY:
                    labels.append(known[int(sims.argmax())])
                    continue
            loose = [j for j, c in enumerate(labels) if c == cluster.NOISE]
            if loose:
                sims = x[loose] @ x[i]
                if sims.max() >= service.PAIR_SIMILARITY:
                    new = max(labels) + 1
                    labels[loose[int(sims.argmax())]] = new
                    labels.append(new)
                    continue
            labels.append(cluster.NOISE)
        out[lang] = (mine, np.array(labels, dtype=int))
    return out


def ami(found: dict[str, tuple[list[Row], np.ndarray]]) -> dict[str, float]:
    """AMI per language and overall (themes never span languages)."""
    result: dict[str, float] = {}
    truth_all: list[str] = []
    pred_all: list[str] = []
    for lang, (mine, labels) in found.items():
        truth = [r.theme for r in mine]
        pred = _singletons(labels)
        result[lang] = float(adjusted_mutual_info_score(truth, pred))
        truth_all += [f"{lang}:{t}" for t in truth]
        pred_all += [f"{lang}:{p}" for p in pred]
    result["overall"] = float(adjusted_mutual_info_score(truth_all, pred_all))
    return result


def duplicate_groups(rows: Sequence[Row]) -> dict[str, str]:
    """Item id -> the id at the root of its duplicate_of chain."""
    parent = {r.id: r.duplicate_of or r.id for r in rows}

    def root(i: str) -> str:
        seen = set()
        while parent.get(i, i) != i and i not in seen:
            seen.add(i)
            i = parent[i]
        return i

    return {r.id: root(r.id) for r in rows}


def best_matches(rows: Sequence[Row]) -> list[tuple[Row, Row | None, float]]:
    """Each item with its best earlier candidate (same language, compatible product)."""
    out: list[tuple[Row, Row | None, float]] = []
    for i, row in enumerate(rows):
        earlier = [
            r
            for r in rows[:i]
            if r.language == row.language
            and (not r.product or not row.product or r.product == row.product)
        ]
        if not earlier:
            out.append((row, None, 0.0))
            continue
        found = similar.scores(row.text, [r.text for r in earlier], language=row.language)
        j = int(found.argmax())
        out.append((row, earlier[j], float(found[j])))
    return out


def precision_recall(
    matches: Sequence[tuple[Row, Row | None, float]], groups: dict[str, str], threshold: float
) -> tuple[float, float, int, int, int]:
    """Precision, recall, right suggestions, suggestions, items that have an earlier twin."""
    first_of: dict[str, str] = {}
    should = 0
    for row, _, _ in matches:
        g = groups[row.id]
        if g in first_of:
            should += 1
        else:
            first_of[g] = row.id
    made = right = 0
    for row, cand, s in matches:
        if cand is None or s < threshold:
            continue
        made += 1
        right += groups[cand.id] == groups[row.id]
    precision = right / made if made else 1.0
    recall = right / should if should else 1.0
    return precision, recall, right, made, should


def examples(found: dict[str, tuple[list[Row], np.ndarray]], per_language: int = 4) -> list[str]:
    lines: list[str] = []
    for lang, (mine, labels) in found.items():
        groups: dict[int, list[str]] = defaultdict(list)
        for r, c in zip(mine, labels.tolist(), strict=False):
            if c != cluster.NOISE:
                groups[c].append(r.text)
        named = features.labels(groups, lang)
        biggest = sorted(groups, key=lambda c: -len(groups[c]))[:per_language]
        for c in biggest:
            truth = Counter(r.theme for r, k in zip(mine, labels.tolist(), strict=False) if k == c)
            lines.append(
                f"- **{named[c]}** ({lang}, {len(groups[c])} items; labelled "
                + ", ".join(f"{t} ×{n}" for t, n in truth.most_common(3))
                + ")"
            )
            lines += [f"  - {t}" for t in groups[c][:4]]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--set",
        type=Path,
        default=INDEPENDENT_SET if INDEPENDENT_SET.exists() else DEV_SET,
        help="labelled CSV (default: the independent set if present, else the development set)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "reports/themes.md")
    parser.add_argument("--sweep", action="store_true", help="also print threshold sweeps")
    args = parser.parse_args(argv)
    rows = load(args.set)
    rows.sort(key=lambda r: int(r.id) if r.id.isdigit() else 0)
    started = time.perf_counter()

    chosen = themes_by_language(rows)
    scores = ami(chosen)
    comparison = {name: ami(themes_by_language(rows, m)) for name, m in METHODS.items()}
    comparison["chosen, 60% clustered then 40% assigned one by one"] = ami(incremental(rows))
    weights = {
        w: ami(themes_by_language(rows, meaning=w)) for w in (0.0, 0.25, 0.4, 0.55, 0.7, 1.0)
    }

    groups = duplicate_groups(rows)
    matches = best_matches(rows)
    p, r, right, made, should = precision_recall(matches, groups, similar.DUPLICATE_THRESHOLD)
    sweep = [
        (t, *precision_recall(matches, groups, t)[:2])
        for t in np.round(np.arange(0.40, 0.86, 0.03), 2).tolist()
    ]
    if args.sweep:
        for t, sp, sr in sweep:
            print(f"duplicates threshold {t:.2f}: precision {sp:.3f} recall {sr:.3f}")
        for d in (0.8, 0.85, 0.9, 0.95):

            def cut(x: np.ndarray, _: int, d: float = d) -> np.ndarray:
                return cluster.cluster(x, threshold=d)

            print(f"cut {d}: {ami(themes_by_language(rows, cut))}")

    langs = Counter(r.language for r in rows)
    themes = {(r.language, r.theme) for r in rows}
    target_ami = scores["overall"] >= 0.6
    target_dup = p >= 0.9 and r >= 0.6
    shown = args.set.relative_to(ROOT) if args.set.is_relative_to(ROOT) else args.set
    lines = [
        "# Themes and duplicates",
        "",
        f"Generated by `scripts/eval_themes.py --set {shown}`"
        f" in {time.perf_counter() - started:.1f} s.",
        "",
        f"Set: {len(rows)} items ({', '.join(f'{n} {k}' for k, n in sorted(langs.items()))}),"
        f" {len({t for _, t in themes})} labelled themes, {should} with an earlier duplicate.",
        "",
        "## Theme quality (adjusted mutual information)",
        "",
        "| | " + " | ".join(scores) + " |",
        "| --- | " + " | ".join("---" for _ in scores) + " |",
        "| chosen method | " + " | ".join(f"{v:.3f}" for v in scores.values()) + " |",
        "",
        f"Target AMI ≥ 0.6 overall: {'met' if target_ami else 'NOT met'}.",
        "",
        "### Methods compared (same vectors)",
        "",
        "| method | " + " | ".join(scores) + " |",
        "| --- | " + " | ".join("---" for _ in scores) + " |",
        *(
            f"| {name} | " + " | ".join(f"{v:.3f}" for v in res.values()) + " |"
            for name, res in comparison.items()
        ),
        "",
        "### Share of meaning (WordLlama) vs wording (stems) in the vectors",
        "",
        "The same weight for both languages; chosen: "
        + ", ".join(f"{k} {v:.2f}" for k, v in features.MEANING_WEIGHTS.items())
        + ".",
        "",
        "| meaning weight | " + " | ".join(scores) + " |",
        "| --- | " + " | ".join("---" for _ in scores) + " |",
        *(
            f"| {w:.2f} | " + " | ".join(f"{v:.3f}" for v in res.values()) + " |"
            for w, res in weights.items()
        ),
        "",
        "## Duplicate suggestions",
        "",
        f"At the threshold {similar.DUPLICATE_THRESHOLD:.2f}: precision **{p:.3f}** ({right} of"
        f" {made} suggestions right), recall **{r:.3f}** ({right} of {should} items with an"
        f" earlier duplicate). Target precision ≥ 0.9 at recall ≥ 0.6:"
        f" {'met' if target_dup else 'NOT met'}.",
        "",
        "| threshold | precision | recall |",
        "| --- | --- | --- |",
        *(f"| {t:.2f} | {sp:.3f} | {sr:.3f} |" for t, sp, sr in sweep),
        "",
        "## Example themes (largest per language)",
        "",
        *examples(chosen),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"AMI {scores}; duplicates precision {p:.3f} recall {r:.3f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
