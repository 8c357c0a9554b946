"""Render reports/bench.png from reports/bench.json.

Runs under .venv-rasa, which has matplotlib (Rasa depends on it), so the app venv
needs no plotting library: `.venv-rasa/bin/python bench/plot.py bench.json bench.png`.
Imports nothing from the project.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # the backend must be chosen before this import

COLOURS = {"ours": "#1f77b4", "stock": "#d62728"}


def main(src: str, dst: str) -> None:
    data = json.loads(Path(src).read_text(encoding="utf-8"))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for system in ("ours", "stock"):
        rows = data.get("by_concurrency", {}).get(system, [])
        if not rows:
            continue
        conc = [r["concurrency"] for r in rows]
        for key, style in (("p50_ms", "-o"), ("p95_ms", "--s")):
            left.plot(
                conc,
                [r[key] for r in rows],
                style,
                color=COLOURS[system],
                label=f"{system} {key[:3]}",
            )
        paced = data.get("paced", {}).get(system)
        if paced:  # customers at Telegram's per-chat pace, one message a second each
            left.plot(
                [paced["concurrency"]],
                [paced["p95_ms"]],
                "*",
                ms=12,
                color=COLOURS[system],
                label=f"{system} p95, paced {paced.get('pace_s', 1):g} s",
            )
        series = data.get("long_conversation", {}).get(system, {}).get("latency_ms", {})
        if series:
            xs = sorted(int(k) for k in series)
            right.plot(
                xs, [series[str(x)] for x in xs], ".", ms=3, alpha=0.5, color=COLOURS[system]
            )
            window = 10  # a rolling median shows the trend through per-turn noise
            smooth = [
                sorted(series[str(x)] for x in xs[max(0, i - window + 1) : i + 1])
                for i in range(len(xs))
            ]
            right.plot(
                xs,
                [s[len(s) // 2] for s in smooth],
                "-",
                color=COLOURS[system],
                label=f"{system} (rolling median of 10)",
            )
    left.set(
        xscale="log",
        yscale="log",
        xlabel="concurrent customers",
        ylabel="reply latency (ms)",
        title="Latency vs concurrency",
    )
    left.set_xticks([1, 10, 50], labels=["1", "10", "50"])
    left.grid(True, which="both", alpha=0.3)
    left.legend()
    right.set(
        xlabel="turn number in one conversation",
        ylabel="reply latency (ms)",
        title="Latency vs conversation length",
        yscale="log",
    )
    right.grid(True, which="both", alpha=0.3)
    right.legend()
    fig.suptitle(f"make bench: {data.get('machine', '')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
