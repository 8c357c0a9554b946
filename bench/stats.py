"""Numbers from load runs: percentiles, throughput, per-turn-position latency."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from bench.drivers import Run, Turn


def percentile(values: Sequence[float], p: float) -> float | None:
    """Linear-interpolated percentile (p in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def summarize(run: Run) -> dict[str, object]:
    lat = [t.latency_s for t in run.ok_turns if t.latency_s is not None]
    ok = len(run.ok_turns)
    return {
        "concurrency": run.concurrency,
        "customers": len({t.customer for t in run.turns}),
        "turns": len(run.turns),
        "ok_turns": ok,
        "errors": len(run.errors),
        "error_samples": sorted({t.error for t in run.errors})[:3],
        "empty_replies": sum(1 for t in run.ok_turns if t.messages == 0),
        "wall_s": round(run.wall_s, 2),
        "throughput_rps": round(ok / run.wall_s, 2) if run.wall_s else None,
        "messages_per_s": round(sum(t.messages for t in run.ok_turns) / run.wall_s, 2)
        if run.wall_s
        else None,
        "steady_rps": steady_throughput(run),
        "p50_ms": ms(percentile(lat, 50)),
        "p95_ms": ms(percentile(lat, 95)),
        "p99_ms": ms(percentile(lat, 99)),
        "mean_ms": ms(statistics.fmean(lat)) if lat else None,
        "max_ms": ms(max(lat)) if lat else None,
        # Typed messages and button presses take different paths through the bot.
        "p50_ms_by_kind": {
            kind: ms(percentile(values, 50))
            for kind in ("say", "press")
            if (values := [t.latency_s for t in run.ok_turns if t.kind == kind and t.latency_s])
        },
    }


def steady_throughput(run: Run) -> float | None:
    """Turns/s while every customer was mid-conversation: from the moment the last one
    got its first reply until the first one finished. Unlike turns / wall time it leaves
    out the ramp-up and the drain, when fewer customers are active than the run names.
    """
    done: dict[int, list[float]] = {}
    for t in run.ok_turns:
        done.setdefault(t.customer, []).append(t.done_at)
    if len(done) < 2 or run.concurrency < len(done):
        return None  # customers one after another: there is no steady state to measure
    start = max(min(v) for v in done.values())
    end = min(max(v) for v in done.values())
    if end - start < 1.0:
        return None
    n = sum(1 for v in done.values() for x in v if start < x <= end)
    return round(n / (end - start), 2)


def by_position(turns: Sequence[Turn]) -> dict[int, float]:
    """Latency (ms) per turn number of a single conversation."""
    return {
        t.index: round(t.latency_s * 1000, 1) for t in turns if t.ok and t.latency_s is not None
    }


def median_of(series: dict[int, float], first: int, last: int) -> float | None:
    values = [v for k, v in series.items() if first <= k <= last]
    return round(statistics.median(values), 1) if values else None


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None
