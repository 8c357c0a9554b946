#!/usr/bin/env python3
"""Benchmark the themes: a full run over 100,000 synthetic items and the incremental
assignment of new items, on a throwaway SQLite database (or --database-url).

    python scripts/bench_themes.py                 # 100,000 items -> reports/bench-themes.md
    python scripts/bench_themes.py --items 20000   # quicker

Synthetic items are variations of the development sets' texts (scripts/data/themes_dev.csv
and themes_dev2.csv: 55 themes, English and Dutch): words dropped and swapped, fillers and
numbers added, so there are many near-duplicates and a realistic vocabulary. English and
Dutch items' sentence vectors are made as items arrive (timed apart, as the incremental step makes
them) and kept in the vector cache, which the full run reads. Targets: the full run in
<= 120 s; assigning a new item (`earshot.themes.service.assign`) in <= 50 ms at p95.
Checking a new item for duplicates (`suggest_duplicates`, 2,000 candidates) is timed too.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FULL_TARGET_S = 120.0
ASSIGN_TARGET_MS = 50.0
FILLERS = {
    "en": ["please", "honestly", "again", "today", "since last week", "at home", "really", "!!"],
    "nl": ["alsjeblieft", "echt", "weer", "vandaag", "sinds vorige week", "thuis", "!!"],
}


def variants(rows: list[dict[str, str]], n: int, seed: int = 7) -> list[dict[str, Any]]:
    """`n` items varied from the labelled rows, spread over the last 20 weeks."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    out: list[dict[str, Any]] = []
    for i in range(n):
        row = rng.choice(rows)
        words = row["text"].split()
        if len(words) > 4 and rng.random() < 0.5:
            del words[rng.randrange(len(words))]
        if len(words) > 3 and rng.random() < 0.3:
            a, b = rng.randrange(len(words)), rng.randrange(len(words))
            words[a], words[b] = words[b], words[a]
        if rng.random() < 0.5:
            words.insert(rng.randrange(len(words) + 1), rng.choice(FILLERS[row["language"]]))
        if rng.random() < 0.2:
            words.append(str(rng.randrange(2, 60)))
        out.append(
            {
                "ref": f"BT-{i:06d}",
                "created_at": now - timedelta(minutes=rng.randrange(20 * 7 * 24 * 60)),
                "updated_at": now,
                "channel": "bench",
                "source": "import",
                "language": row["language"],
                "customer_key": f"{i:032x}",
                "product": row["product"] or None,
                "type": row["type"],
                "category": "innovation",
                "description": " ".join(words),
                "supporters": 1,
                "status": "new",
                "attachments": [],
                "complete": True,
                "consent": False,
                "tags": [],
            }
        )
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=200, help="items assigned one by one")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--out", type=Path, default=ROOT / "reports/bench-themes.md")
    args = parser.parse_args(argv)

    from sqlalchemy import insert, select

    from earshot.embeddings import embedder
    from earshot.storage.db import make_engine, migrate
    from earshot.storage.models import Feedback, ThemeMember
    from earshot.themes import service as themes
    from earshot.themes import trends

    rows: list[dict[str, str]] = []
    for name in ("themes_dev.csv", "themes_dev2.csv"):
        with (ROOT / "scripts/data" / name).open(encoding="utf-8") as fh:
            rows += list(csv.DictReader(fh))
    tmp = tempfile.TemporaryDirectory()
    # A cache of this run's own, so earlier runs' vectors do not flatter it.
    os.environ.setdefault("EARSHOT_VECTOR_CACHE", f"{tmp.name}/vectors.sqlite3")
    from earshot import sentence_encoder
    from earshot.themes import features

    url = args.database_url or f"sqlite:///{tmp.name}/bench.db"
    migrate(url)
    engine = make_engine(url)
    items = variants(rows, args.items + args.new)
    base, fresh = items[: args.items], items[args.items :]
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        for start in range(0, len(base), 10_000):
            session.execute(insert(Feedback), base[start : start + 10_000])
        session.commit()
    embedder()  # loading the embedding (~0.2 s) is not part of a run
    enc = sentence_encoder.encoder()
    arrival_s, encoded = 0.0, 0
    if enc is not None:
        # What each item's arrival computed once (features.meaning), in arrival-size batches.
        encoded_texts = [
            v["description"] for v in base if v["language"] in features.ENCODER_LANGUAGES
        ]
        started = time.perf_counter()
        for start in range(0, len(encoded_texts), 64):
            enc.encode(encoded_texts[start : start + 64])
        arrival_s, encoded = time.perf_counter() - started, len(encoded_texts)
        enc.forget_memory()  # the full run reads them back from the disk cache

    with Session(engine) as session:
        started = time.perf_counter()
        result = themes.run(session)
        session.commit()
        full_s = time.perf_counter() - started
        run_again = time.perf_counter()
        themes.run(session)
        session.commit()
        rerun_s = time.perf_counter() - run_again
        emerging_started = time.perf_counter()
        emerging = trends.emerging_themes(session)
        emerging_s = time.perf_counter() - emerging_started

    assign_ms: list[float] = []
    duplicates_ms: list[float] = []
    joined = 0
    with Session(engine) as session:
        for values in fresh:
            session.execute(insert(Feedback), [values])
            item = session.scalar(select(Feedback).where(Feedback.ref == values["ref"]))
            assert item is not None
            t0 = time.perf_counter()
            tid = themes.assign(session, item=item)
            session.commit()
            assign_ms.append((time.perf_counter() - t0) * 1000)
            joined += tid is not None
            t0 = time.perf_counter()
            themes.suggest_duplicates(session, item=item)
            session.commit()
            duplicates_ms.append((time.perf_counter() - t0) * 1000)
        unthemed = session.scalar(
            select(ThemeMember.feedback_id).where(ThemeMember.theme_id.is_(None)).limit(1)
        )
    engine.dispose()

    p50, p95 = percentile(assign_ms, 0.5), percentile(assign_ms, 0.95)
    d50, d95 = percentile(duplicates_ms, 0.5), percentile(duplicates_ms, 0.95)
    cpus = os.cpu_count()
    lines = [
        "# Themes at scale",
        "",
        f"Generated by `scripts/bench_themes.py --items {args.items}` on {platform.node()}"
        f" ({cpus} CPUs shared with other work, Python {platform.python_version()},"
        f" {'SQLite' if url.startswith('sqlite') else 'PostgreSQL'}).",
        "",
        "| measure | value | target |",
        "| --- | --- | --- |",
        f"| full run, {result.items:,} items ({', '.join(result.languages)}) | {full_s:.1f} s |"
        f" ≤ {FULL_TARGET_S:.0f} s {'met' if full_s <= FULL_TARGET_S else 'NOT met'} |",
        f"| second full run (theme ids followed by overlap) | {rerun_s:.1f} s | |",
        f"| sentence vectors made on arrival (MiniLM, "
        f"{', '.join(sorted(features.ENCODER_LANGUAGES))}; batches of 64) |"
        f" {arrival_s * 1000 / max(encoded, 1):.1f} ms per item ({encoded:,} items,"
        f" {arrival_s:.0f} s) | not part of a run |",
        f"| themes found | {result.themes:,} ({result.unthemed:,} items in no theme) | |",
        f"| emerging_themes over all themes | {emerging_s * 1000:.0f} ms"
        f" ({len(emerging)} emerging) | |",
        f"| assign a new item, p50 / p95 ({len(assign_ms)} items) | {p50:.1f} / {p95:.1f} ms |"
        f" ≤ {ASSIGN_TARGET_MS:.0f} ms {'met' if p95 <= ASSIGN_TARGET_MS else 'NOT met'} |",
        f"| new items that joined a theme | {joined} of {len(fresh)} | |",
        f"| duplicate suggestions for a new item, p50 / p95 | {d50:.1f} / {d95:.1f} ms"
        f" (2,000 candidates) | |",
        "",
        f"Mean assignment {statistics.mean(assign_ms):.1f} ms. Above 3,000 items a run clusters"
        " a random sample of 3,000 and lets the other items join the nearest cluster, in up"
        " to four rounds (earshot/themes/cluster.py). Some items stay in no theme:"
        f" {'yes' if unthemed is not None else 'no'}.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
