"""The benchmark's arithmetic: percentiles, throughput over the whole run and in the steady
state, on hand-made runs whose answers are known."""

from __future__ import annotations

import pytest

from bench.drivers import Run, Turn
from bench.stats import percentile, steady_throughput, summarize


def turn(
    customer: int, index: int, done_at: float, latency_s: float = 0.1, ok: bool = True
) -> Turn:
    return Turn(
        customer=customer, index=index, cls="faq", ok=ok, latency_s=latency_s if ok else None,
        done_at=done_at, messages=1 if ok else 0, error="" if ok else "timeout",
    )  # fmt: skip


def test_percentiles_interpolate_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) is None


def test_summary_counts_errors_apart_from_throughput_and_latency() -> None:
    turns = [turn(1, i, i * 0.5, latency_s=0.01 * i) for i in range(1, 11)]
    turns.append(turn(2, 1, 1.0, ok=False))
    summary = summarize(Run("t", 2, turns, wall_s=5.0))
    assert summary["ok_turns"] == 10 and summary["errors"] == 1
    assert summary["error_samples"] == ["timeout"]
    assert summary["throughput_rps"] == 2.0  # 10 answered turns in 5 s; the error is not one
    assert summary["p50_ms"] == 55.0
    assert summary["customers"] == 2


def test_steady_throughput_leaves_out_the_ramp_up_and_the_drain() -> None:
    # A answers every 0.5 s from 0.5 to 10 s; B starts late (first reply at 3 s) and
    # leaves early (last at 8 s), every 0.25 s. Only (3, 8] has both in conversation.
    a = [turn(1, i, i * 0.5) for i in range(1, 21)]
    b = [turn(2, i, 3.0 + (i - 1) * 0.25) for i in range(1, 22)]
    run = Run("t", 2, a + b, wall_s=10.0)
    assert steady_throughput(run) == 6.0  # A's 10 and B's 20 turns in those 5 s
    assert summarize(run)["throughput_rps"] == round(41 / 10.0, 2)


def test_customers_served_one_after_another_have_no_steady_state() -> None:
    first = [turn(1, i, float(i)) for i in range(1, 4)]
    second = [turn(2, i, 3.0 + i) for i in range(1, 4)]
    assert steady_throughput(Run("t", 1, first + second, wall_s=6.0)) is None
