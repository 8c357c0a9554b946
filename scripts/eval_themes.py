"""Theme and duplicate quality on a labelled CSV, written to reports/themes.md.

    python scripts/eval_themes.py [--set tests/data/themes/labelled.csv] [--out reports/themes.md]
    python scripts/eval_themes.py --set scripts/data/themes_dev.csv \
        --set scripts/data/themes_dev2.csv --out reports/themes-dev.md    # one section a set

The CSV has the columns id, language (en|nl), product, type, text, theme, duplicate_of
(an earlier id or empty). Themes are found per language exactly as `earshot themes run`
finds them (`earshot.themes.cluster` over `earshot.themes.features`); their agreement with
the labelled themes is adjusted mutual information (an item left unthemed counts as a
theme of its own). Duplicates are suggested as the dashboard suggests them: each item in
id order against the earlier items of its language and product (product words ignored),
the one `earshot.feedback.similar.pick_duplicate` picks (the nearest, at or above the
language's threshold and ahead of the second nearest by a margin); a suggestion is right
when both items are in one duplicate group (duplicate_of chains). The default set is the
independent one, tests/data/themes/labelled.csv (kept apart from development, never tuned
on), when it is there, else the development set scripts/data/themes_dev.csv
(`make eval-themes` runs the two development sets and the independent one).
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


Method = Callable[[np.ndarray, int, str], np.ndarray]


def ours(x: np.ndarray, _: int, language: str) -> np.ndarray:
    return cluster.cluster(x, language=language)


def hdbscan(x: np.ndarray, _: int, __: str) -> np.ndarray:
    return np.asarray(HDBSCAN(min_cluster_size=2).fit_predict(x), dtype=int)


def ward(x: np.ndarray, _: int, language: str) -> np.ndarray:
    """Ward linkage on the unit vectors, cut where it finds about as many groups as ours."""
    from sklearn.cluster import AgglomerativeClustering

    k = len(set(cluster.cluster(x, language=language).tolist()))
    found = AgglomerativeClustering(n_clusters=max(1, min(k, len(x))), linkage="ward")
    return np.asarray(found.fit_predict(x), dtype=int)


def kmeans_oracle(x: np.ndarray, k: int, _: str) -> np.ndarray:
    """k-means told the true number of themes (an upper bound no real run has)."""
    return np.asarray(KMeans(min(k, len(x)), n_init=5, random_state=0).fit_predict(x), dtype=int)


METHODS: dict[str, Method] = {
    "agglomerative, average linkage (chosen)": ours,
    "HDBSCAN (min cluster size 2)": hdbscan,
    "Ward linkage, as many groups": ward,
    "k-means with the true k (oracle)": kmeans_oracle,
}


def themes_by_language(
    rows: Sequence[Row],
    method: Method = ours,
    meaning: float | None = None,
    *,
    encoder: frozenset[str] | None = None,
    meanings: dict[str, float] | None = None,
    char_ngrams: bool = True,
) -> dict[str, tuple[list[Row], np.ndarray]]:
    """Per language: its rows and the cluster number of each (`meaning`: one weight for
    both languages; `encoder`: the languages MiniLM encodes instead of the configured ones,
    WordLlama the others; `meanings`: weights of some languages; `char_ngrams` off: stems
    only)."""
    out = {}
    saved = (
        dict(features.MEANING_WEIGHTS),
        features.ENCODER_LANGUAGES,
        features.CHAR_NGRAM_LANGUAGES,
    )
    if meaning is not None:
        features.MEANING_WEIGHTS.update(dict.fromkeys(("en", "nl"), meaning))
    features.MEANING_WEIGHTS.update(meanings or {})
    if encoder is not None:
        features.ENCODER_LANGUAGES = encoder
    if not char_ngrams:
        features.CHAR_NGRAM_LANGUAGES = frozenset()
    try:
        for lang in sorted({r.language for r in rows}):
            mine = [r for r in rows if r.language == lang]
            texts = [r.text for r in mine]
            x = features.Space.fit(texts, lang).vectors(texts)
            out[lang] = (mine, method(x, len({r.theme for r in mine}), lang))
    finally:
        features.MEANING_WEIGHTS.clear()
        features.MEANING_WEIGHTS.update(saved[0])
        features.ENCODER_LANGUAGES, features.CHAR_NGRAM_LANGUAGES = saved[1], saved[2]
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
        labels = list(cluster.cluster(x[:cut], language=lang).tolist())
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


@dataclass(frozen=True)
class Match:
    """An item, its earlier candidates (same language, compatible product) and their scores."""

    row: Row
    earlier: list[Row]
    scores: np.ndarray


def _product_words() -> frozenset[str]:
    """The catalogue's product words, ignored by the wording half as `earshot themes` does."""
    import yaml

    from earshot.feedback.service import product_words

    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    return product_words(
        {p["key"]: [p.get("name", ""), *p.get("synonyms", [])] for p in config["products"]}
    )


def best_matches(rows: Sequence[Row]) -> list[Match]:
    """Each item with its earlier candidates (same language, compatible product) scored as
    the dashboard scores them (`earshot.feedback.similar`, product words ignored)."""
    ignore = _product_words()
    out: list[Match] = []
    for i, row in enumerate(rows):
        earlier = [
            r
            for r in rows[:i]
            if r.language == row.language
            and (not r.product or not row.product or r.product == row.product)
        ]
        found = (
            similar.scores(
                row.text, [r.text for r in earlier], ignore=ignore, language=row.language
            )
            if earlier
            else np.zeros(0, np.float32)
        )
        out.append(Match(row, earlier, found))
    return out


def precision_recall(
    matches: Sequence[Match],
    groups: dict[str, str],
    threshold: float | None = None,
    margin: float = similar.DUPLICATE_MARGIN,
    language: str | None = None,
) -> tuple[float, float, int, int, int]:
    """Precision, recall, right suggestions, suggestions, items that have an earlier twin,
    for `similar.pick_duplicate` at `threshold` (None: each language's) and `margin`;
    `language`: that language's suggestions only (recall still over all twins)."""
    first_of: dict[str, str] = {}
    should = 0
    for m in matches:
        g = groups[m.row.id]
        if g in first_of:
            should += 1
        else:
            first_of[g] = m.row.id
    made = right = 0
    for m in matches:
        if language is not None and m.row.language != language:
            continue
        j = similar.pick_duplicate(m.scores, m.row.language, threshold=threshold, margin=margin)
        if j is None:
            continue
        made += 1
        right += groups[m.earlier[j].id] == groups[m.row.id]
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


def _cross_language_only(rows: Sequence[Row], groups: dict[str, str]) -> int:
    """Items whose group appeared earlier, but never in their own language."""
    seen: dict[str, set[str]] = defaultdict(set)
    count = 0
    for row in rows:
        g = groups[row.id]
        if seen[g] and row.language not in seen[g]:
            count += 1
        seen[g].add(row.language)
    return count


def _table(head: str, rows: dict[str, dict[str, float]], keys: Sequence[str]) -> list[str]:
    return [
        f"| {head} | " + " | ".join(keys) + " |",
        "| --- | " + " | ".join("---" for _ in keys) + " |",
        *(
            f"| {name} | " + " | ".join(f"{res[k]:.3f}" for k in keys) + " |"
            for name, res in rows.items()
        ),
    ]


def _by_id(r: Row) -> tuple[int, str]:
    """Id order: numbers as numbers ("10" after "9"), others ("d010") as text."""
    return (int(r.id), "") if r.id.isdigit() else (0, r.id)


def section(
    path: Path, sweep_out: bool = False
) -> tuple[list[str], dict[str, float], float, float]:
    """The report section of one labelled set, its AMI and duplicate precision/recall."""
    rows = sorted(load(path), key=_by_id)
    chosen = themes_by_language(rows)
    scores = ami(chosen)
    keys = list(scores)
    comparison = {name: ami(themes_by_language(rows, m)) for name, m in METHODS.items()}
    comparison["chosen, 60% clustered then 40% assigned one by one"] = ami(incremental(rows))
    comparison["chosen, WordLlama instead of MiniLM for English"] = ami(
        themes_by_language(rows, encoder=features.ENCODER_LANGUAGES - {"en"})
    )
    comparison["chosen, WordLlama instead of MiniLM for Dutch (meaning 0.15, before)"] = ami(
        themes_by_language(rows, encoder=features.ENCODER_LANGUAGES - {"nl"}, meanings={"nl": 0.15})
    )
    comparison["chosen, Dutch without character n-grams"] = ami(
        themes_by_language(rows, char_ngrams=False)
    )
    weights = {
        f"{w:.2f}": ami(themes_by_language(rows, meaning=w))
        for w in (0.0, 0.25, 0.5, 0.7, 0.85, 1.0)
    }
    cuts = {}
    for d in (0.7, 0.75, 0.8, 0.85, 0.9, 0.95):

        def cut(x: np.ndarray, _: int, __: str, d: float = d) -> np.ndarray:
            return cluster.cluster(x, threshold=d)

        cuts[f"{d:.2f}"] = ami(themes_by_language(rows, cut))

    groups = duplicate_groups(rows)
    matches = best_matches(rows)
    p, r, right, made, should = precision_recall(matches, groups)
    cross = _cross_language_only(rows, groups)
    sweep = [
        (
            t,
            *precision_recall(matches, groups, t, margin=0.0)[:2],
            *precision_recall(matches, groups, t)[:2],
        )
        for t in np.round(np.arange(0.40, 0.86, 0.025), 3).tolist()
    ]
    if sweep_out:
        for t, bp, br, sp, sr in sweep:
            print(
                f"duplicates threshold {t:.3f}: bare precision {bp:.3f} recall {br:.3f};"
                f" with margin precision {sp:.3f} recall {sr:.3f}"
            )
    per_language = {
        lang: precision_recall(matches, groups, language=lang)
        for lang in sorted({row.language for row in rows})
    }
    langs = Counter(r.language for r in rows)
    themes = {(r.language, r.theme) for r in rows}
    target_dup = p >= 0.9 and r >= 0.6
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    lines = [
        f"## `{shown}`",
        "",
        f"Set: {len(rows)} items ({', '.join(f'{n} {k}' for k, n in sorted(langs.items()))}),"
        f" {len({t for _, t in themes})} labelled themes, {should} with an earlier duplicate.",
        "",
        "### Theme quality (adjusted mutual information)",
        "",
        *_table("", {"chosen method": scores}, keys),
        "",
        f"Target AMI ≥ 0.6 overall: {'met' if scores['overall'] >= 0.6 else 'NOT met'}.",
        "",
        "#### Methods and features compared",
        "",
        *_table("method", comparison, keys),
        "",
        "#### Share of meaning vs wording (one weight for both languages)",
        "",
        "Chosen: " + ", ".join(f"{k} {v:.2f}" for k, v in features.MEANING_WEIGHTS.items()) + ".",
        "",
        *_table("meaning weight", weights, keys),
        "",
        "#### Dendrogram cut (one cut for both languages)",
        "",
        "Chosen: "
        + ", ".join(f"{k} {v:.2f}" for k, v in cluster.DISTANCE_THRESHOLDS.items())
        + ".",
        "",
        *_table("cut", cuts, keys),
        "",
        "### Duplicate suggestions",
        "",
        "Rule (`earshot.feedback.similar.pick_duplicate`): the nearest earlier item of the"
        " language and product, when it scores at least "
        + ", ".join(f"{k} {v:g}" for k, v in similar.DUPLICATE_THRESHOLDS.items())
        + f" (other languages {similar.OTHER_DUPLICATE_THRESHOLD:g}) and beats the second"
        f" nearest by {similar.DUPLICATE_MARGIN:g}; meaning weight "
        + ", ".join(f"{k} {v:g}" for k, v in similar.MEANING_WEIGHTS.items())
        + f" (other languages {similar.OTHER_MEANING_WEIGHT:g}).",
        "",
        f"Precision **{p:.3f}** ({right} of {made} suggestions right), recall **{r:.3f}**"
        f" ({right} of {should} items with an earlier duplicate). Target precision ≥ 0.9 at"
        f" recall ≥ 0.6: {'met' if target_dup else 'NOT met'}. Suggestions stay in the item's"
        f" language, so an item whose only earlier duplicate is in the other language"
        f" ({cross} here) can never count: recall is at most"
        f" {(should - cross) / max(should, 1):.2f}. Per language: "
        + "; ".join(f"{lang} {lp[2]} of {lp[3]} right" for lang, lp in per_language.items())
        + ".",
        "",
        "One threshold for every language: the bare threshold (the best item at or above it)"
        " and with the margin over the second nearest.",
        "",
        "| threshold | bare precision | bare recall | margin precision | margin recall |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {t:.3f} | {bp:.3f} | {br:.3f} | {sp:.3f} | {sr:.3f} |"
            for t, bp, br, sp, sr in sweep
        ),
        "",
        "### Example themes (largest per language)",
        "",
        *examples(chosen),
        "",
    ]
    return lines, scores, p, r


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--set",
        type=Path,
        action="append",
        help="labelled CSV, repeatable (default: the independent set if present, else the"
        " development set)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "reports/themes.md")
    parser.add_argument("--sweep", action="store_true", help="also print the duplicate sweep")
    args = parser.parse_args(argv)
    sets = args.set or [INDEPENDENT_SET if INDEPENDENT_SET.exists() else DEV_SET]
    started = time.perf_counter()
    body: list[str] = []
    summary: list[str] = []
    for path in sets:
        lines, scores, p, r = section(path, args.sweep)
        body += lines
        summary.append(f"{path.name}: AMI {scores}; duplicates precision {p:.3f} recall {r:.3f}")
    shown = " ".join(f"--set {s.relative_to(ROOT) if s.is_relative_to(ROOT) else s}" for s in sets)
    lines = [
        "# Themes and duplicates",
        "",
        f"Generated by `scripts/eval_themes.py {shown}` in {time.perf_counter() - started:.1f} s.",
        "",
        *body,
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(summary) + f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
