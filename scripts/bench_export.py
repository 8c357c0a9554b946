#!/usr/bin/env python3
"""Benchmark `earshot.insights.export`: rows per second and peak memory, SQLite and PostgreSQL.

Fills a throwaway database per backend with synthetic feedback (PostgreSQL: a temporary
database created and dropped here; SQLite: a temporary file), then at each size (10k,
100k, 1M rows, up to --rows) exports every format in a fresh child process and records
time and peak RSS (VmHWM), so one run's memory cannot hide in another's.

    python scripts/bench_export.py --rows 100000            # quick check
    python scripts/bench_export.py                          # the full 1M-row run

Targets: CSV and JSON lines at least 50,000 rows/s; peak RSS under 200 MB and flat from
10k to 1M rows. Writes reports/bench-export.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STEPS = (10_000, 100_000, 1_000_000)
FORMATS = ("csv", "jsonl", "xlsx")
RATE_TARGET = 50_000  # rows/s, CSV and JSON lines
RSS_TARGET_MB = 200.0

COLUMNS = (
    "ref",
    "created_at",
    "updated_at",
    "channel",
    "source",
    "campaign_id",
    "language",
    "customer_key",
    "product",
    "type",
    "category",
    "description",
    "benefit",
    "frequency",
    "importance",
    "sentiment",
    "attachments",
    "complete",
    "consent",
    "status",
    "supporters",
    "tags",
)

_PRODUCTS = ("bulb", "strip", "plug", "hub", "thermostat", "doorbell", "app", None)
_TYPES = (("idea", "innovation"), ("problem", "service"), ("complaint", "reputation"),
          ("praise", "reputation"), ("other", "service"))  # fmt: skip
_STATUSES = ("new", "new", "new", "under_review", "planned", "in_progress", "done", "declined")
_WORDS = (
    "the app keeps losing connection after the update and I have to pair the bulb again "
    "please add a sunrise alarm that slowly brightens the light strip in the morning "
    "support was quick and friendly but the thermostat schedule still resets at night "
    "=cmd it would be great to see energy usage per plug in a weekly overview"
).split()


# --- synthetic data ----------------------------------------------------------------------


def synthetic_rows(start: int, stop: int, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    """Rows start..stop-1 of a reproducible data set, oldest first."""
    rnd = random.Random(seed * 1_000_003 + start)
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for i in range(start, stop):
        created = t0 + timedelta(seconds=i * 30)
        type_, category = _TYPES[i % len(_TYPES)]
        n = rnd.randint(6, 40)
        k = rnd.randrange(len(_WORDS) - n)
        yield (
            f"BX-{i:08d}",
            created,
            created + timedelta(hours=rnd.randint(0, 200)),
            "telegram",
            "chat" if i % 4 else "after_service",
            "spring" if i % 10 == 0 else None,
            "en" if i % 5 else "nl",
            f"{i % 50_000:032x}",
            _PRODUCTS[i % len(_PRODUCTS)],
            type_,
            category,
            " ".join(_WORDS[k : k + n]),
            "saves me time every day" if i % 3 == 0 else None,
            "daily" if i % 2 else None,
            "important" if i % 7 == 0 else None,
            round(rnd.uniform(-1, 1), 3),
            "[]",
            True,
            i % 3 == 0,
            _STATUSES[i % len(_STATUSES)],
            1 + (i % 17 == 0) * rnd.randint(1, 40),
            '["wifi", "setup"]' if i % 9 == 0 else "[]",
        )


def fill_postgres(url: str, start: int, stop: int) -> None:
    import psycopg

    cols = ", ".join(COLUMNS)
    with psycopg.connect(url.replace("+psycopg", "")) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY feedback ({cols}) FROM STDIN") as copy:
            for row in synthetic_rows(start, stop):
                copy.write_row(row)
        cur.execute("ANALYZE feedback")


def fill_sqlite(path: Path, start: int, stop: int) -> None:
    import sqlite3

    # The format SQLAlchemy's SQLite DateTime reads back (UTC, as UTCDateTime stores it).
    def ts(value: datetime) -> str:
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")

    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        marks = ", ".join("?" for _ in COLUMNS)
        sql = f"INSERT INTO feedback ({', '.join(COLUMNS)}) VALUES ({marks})"  # noqa: S608
        batch: list[tuple[Any, ...]] = []
        for row in synthetic_rows(start, stop):
            batch.append((row[0], ts(row[1]), ts(row[2]), *row[3:]))
            if len(batch) == 20_000:
                conn.executemany(sql, batch)
                batch.clear()
        if batch:
            conn.executemany(sql, batch)
        conn.commit()
        conn.execute("ANALYZE")
    finally:
        conn.close()


# --- one measured export, in a child process -----------------------------------------------


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(url: str, fmt: str, out: Path) -> None:
    import openpyxl  # noqa: F401 - loaded before the baseline, like in a real run
    from sqlalchemy.orm import Session

    from earshot.insights.export import export
    from earshot.storage.db import make_engine

    engine = make_engine(url)
    with Session(engine) as session:
        session.connection()
        baseline = _status_kb("VmRSS")
        t, cpu = time.perf_counter(), time.process_time()
        rows = export(session, fmt=fmt, out=out)  # type: ignore[arg-type]
        seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    engine.dispose()
    peak = _status_kb("VmHWM")
    print(
        json.dumps(
            {
                "rows": rows,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "baseline_mb": baseline / 1024,
                "peak_mb": peak / 1024,
                "file_mb": out.stat().st_size / 1e6,
            }
        )
    )


def measure(url: str, fmt: str, workdir: Path) -> dict[str, Any]:
    out = workdir / f"export.{fmt}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, __file__, "--child", url, fmt, str(out)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    out.unlink(missing_ok=True)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --- backends --------------------------------------------------------------------------------


def run_backend(
    backend: str, sizes: list[int], formats: list[str], workdir: Path
) -> list[dict[str, Any]]:
    from earshot.storage.db import migrate
    from testkit.pgtemp import create_pg_database, drop_pg_database

    results: list[dict[str, Any]] = []
    pg_url: str | None = None
    try:
        if backend == "postgresql":
            url = pg_url = create_pg_database("earshot_bench")
        else:
            db = workdir / "bench.db"
            url = f"sqlite:///{db}"
        migrate(url)
        have = 0
        for size in sizes:
            t = time.perf_counter()
            if backend == "postgresql":
                fill_postgres(url, have, size)
            else:
                fill_sqlite(workdir / "bench.db", have, size)
            took = time.perf_counter() - t
            print(f"{backend}: {size:,} rows loaded (+{size - have:,} in {took:.1f}s)", flush=True)
            have = size
            for fmt in formats:
                r = measure(url, fmt, workdir)
                r.update(backend=backend, size=size, format=fmt)
                r.update(rate=size / r["seconds"], cpu_rate=size / max(r["cpu_seconds"], 1e-9))
                assert r["rows"] == size, r
                print(
                    f"  {fmt:5} {r['rate']:>10,.0f} rows/s ({r['cpu_rate']:,.0f} per CPU s) "
                    f"{r['seconds']:7.1f}s  "
                    f"peak {r['peak_mb']:6.1f} MB (baseline {r['baseline_mb']:.1f})",
                    flush=True,
                )
                results.append(r)
    finally:
        if pg_url:
            from earshot.storage.db import engine_for

            engine_for.cache_clear()
            drop_pg_database(pg_url)
    return results


# --- report -------------------------------------------------------------------------------


def write_report(path: Path, results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    load = os.getloadavg()
    lines = [
        "# Export benchmark",
        "",
        f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `scripts/bench_export.py "
        f"--rows {args.rows}` on {os.cpu_count()} CPU(s), Python {platform.python_version()}, "
        f"load average {load[0]:.1f} at the end (the machine is shared: rates are conservative).",
        "",
        f"Targets: CSV and JSON lines at least {RATE_TARGET:,} rows/s; peak RSS of the "
        f"exporting process under {RSS_TARGET_MB:.0f} MB and flat from 10k to 1M rows. "
        "XLSX has no rate target.",
        "",
        "Each export runs in a fresh process; *peak RSS* is its VmHWM (interpreter, SQLAlchemy, "
        "openpyxl and driver included), *baseline* its RSS just before exporting. *Rows/s* is "
        "wall-clock; *rows per CPU second* divides by the exporting process's own CPU time, "
        "which shows what it achieves when the machine is not shared (for PostgreSQL the "
        "server's work runs in parallel in its own process). The rate target is judged on "
        "wall-clock time.",
        "",
        "| Backend | Rows | Format | Seconds | Rows/s | Rows per CPU s | Peak RSS (MB) "
        "| Baseline (MB) | File (MB) | Target |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        rate_ok = r["format"] == "xlsx" or r["rate"] >= RATE_TARGET
        ok = rate_ok and r["peak_mb"] < RSS_TARGET_MB
        lines.append(
            f"| {r['backend']} | {r['size']:,} | {r['format']} | {r['seconds']:.1f} | "
            f"{r['rate']:,.0f} | {r['cpu_rate']:,.0f} | {r['peak_mb']:.1f} | "
            f"{r['baseline_mb']:.1f} | {r['file_mb']:.1f} | {'met' if ok else 'MISSED'} |"
        )
    lines += ["", "## Memory from smallest to largest run", ""]
    for backend in sorted({r["backend"] for r in results}):
        for fmt in FORMATS:
            runs = [r for r in results if r["backend"] == backend and r["format"] == fmt]
            if len(runs) >= 2:
                lo, hi = runs[0], runs[-1]
                lines.append(
                    f"- {backend} {fmt}: {lo['peak_mb']:.1f} MB at {lo['size']:,} rows -> "
                    f"{hi['peak_mb']:.1f} MB at {hi['size']:,} rows "
                    f"({hi['peak_mb'] - lo['peak_mb']:+.1f} MB)"
                )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1], argv[2], Path(argv[3]))
        return 0
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rows", type=int, default=1_000_000, help="largest size (default 1,000,000)")
    p.add_argument("--sizes", help="comma-separated sizes (default: 10k, 100k, 1M up to --rows)")
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--formats", default=",".join(FORMATS))
    p.add_argument("--out", default=str(ROOT / "reports" / "bench-export.md"))
    p.add_argument("--workdir", help="where the SQLite file and exports go (default: a temp dir)")
    args = p.parse_args(argv)

    if args.sizes:
        sizes = sorted({int(s) for s in args.sizes.split(",")})
    else:
        sizes = sorted({s for s in STEPS if s <= args.rows} | {args.rows})
    formats = [f for f in args.formats.split(",") if f]
    unknown = set(formats) - set(FORMATS)
    if unknown:
        p.error(f"unknown format(s): {', '.join(sorted(unknown))}")

    workdir = Path(tempfile.mkdtemp(prefix="earshot-bench-", dir=args.workdir))
    results: list[dict[str, Any]] = []
    try:
        for backend in args.backends.split(","):
            results += run_backend(backend, sizes, formats, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write_report(Path(args.out), results, args)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
