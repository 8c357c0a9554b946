#!/usr/bin/env python3
"""Do outgoing webhooks keep up with 50 events/s without blocking the bot?

Per scenario, three processes, as in production:
- a producer (standing in for the action server) saves feedback items at a steady rate,
  each with its item.created event in the same transaction (`service.save_feedback`);
- the deliverer (`earshot.integrations.deliverer.Deliverer.run`, as the dashboard runs
  it) on an asyncio loop that also runs a ticker waking every 10 ms: how late the ticker
  wakes is how long anything else on that loop (a dashboard request, a bot update if it
  shared the loop) would wait;
- testkit's webhook receiver, verifying every signature, fast or slow (200 ms a request)
  or failing 20% of the requests with 500 (retried with backoff).

Delivery lag = the receiver's arrival time minus the event's created_at (same clock).
Writes reports/bench-webhooks.md (and .json).

    .venv/bin/python scripts/bench_webhooks.py            # 30 s per scenario, SQLite + PostgreSQL
    .venv/bin/python scripts/bench_webhooks.py --seconds 5 --sqlite-only   # a quick check
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-webhook-secret-0123456789"  # noqa: S105 - a throwaway benchmark key
TICK_S = 0.010


def receiver_process(conn: Any, delay_s: float, fail_every: int) -> None:
    """Serve a webhook receiver until told to stop; send back what arrived when."""
    from testkit.webhook_receiver import WebhookReceiver

    class Flaky(WebhookReceiver):
        def handle(self, request: Any) -> Any:
            with self.lock:
                n = self.requests + 1
            if fail_every and n % fail_every == 0:
                self.fail_next(500)
            return super().handle(request)

    with Flaky(SECRET, delay_s=delay_s) as fake:
        conn.send(fake.url)
        conn.recv()  # stop
        arrivals = [(r.event["id"], r.event["created_at"], r.at) for r in fake.received]
        conn.send({"arrivals": arrivals, "rejected": len(fake.rejected), "requests": fake.requests})


def control_process(conn: Any) -> None:
    """The same ticker on a loop of its own with nothing else on it, at the same time: what
    the shared machine's scheduling costs the deliverer's loop anyway."""

    async def go() -> list[float]:
        loop = asyncio.get_running_loop()
        lags: list[float] = []
        while not conn.poll():
            t = loop.time()
            await asyncio.sleep(TICK_S)
            lags.append(loop.time() - t - TICK_S)
        return lags

    lags = asyncio.run(go())
    conn.recv()
    conn.send(lags)


def producer_process(url: str, rate: float, seconds: float, conn: Any) -> None:
    """Save `rate` items a second for `seconds`, each in its own transaction."""
    from earshot.feedback import service
    from earshot.feedback.schemas import FeedbackIn, FeedbackType
    from earshot.storage.db import session_scope

    n = int(rate * seconds)
    t0 = time.perf_counter()
    late = []
    for i in range(n):
        due = t0 + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        else:
            late.append(-wait)
        with session_scope(url) as s:
            item = FeedbackIn(
                customer_key=f"{i:032d}",
                type=FeedbackType.problem,
                description=f"The bulb drops wifi at night, case {i}",
                sentiment=-0.2,
            )
            service.save_feedback(s, item=item, ref_prefix="BW")
    conn.send(
        {
            "emitted": n,
            "wall_s": time.perf_counter() - t0,
            "producer_behind_max_s": max(late, default=0.0),
        }
    )


async def deliver_and_tick(url: str, hook_url: str, until_idle: Any) -> dict[str, Any]:
    """Run the deliverer and the ticker on one loop until `until_idle()` is true."""
    from sqlalchemy.orm import sessionmaker

    from earshot.integrations.deliverer import Deliverer
    from earshot.settings import load_settings
    from earshot.storage.db import engine_for

    settings = load_settings(
        database_url=url,
        webhooks=[{"name": "bench", "url": hook_url, "secret_env": "BENCH_HOOK_SECRET"}],
        webhook_retry_base_s=0.5,
        webhook_retry_max_s=5.0,
    )
    deliverer = Deliverer(
        settings,
        sessionmaker(engine_for(settings.db_url), expire_on_commit=False),
        environ={"BENCH_HOOK_SECRET": SECRET},
    )
    stop = asyncio.Event()
    lags: list[float] = []

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            t = loop.time()
            await asyncio.sleep(TICK_S)
            lags.append(loop.time() - t - TICK_S)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    tick_task = asyncio.create_task(ticker())
    run_task = asyncio.create_task(deliverer.run(stop))
    while not await asyncio.to_thread(until_idle):  # noqa: ASYNC110 - polls the database
        await asyncio.sleep(0.5)
    stop.set()
    await run_task
    await tick_task
    await deliverer.aclose()
    wall = time.perf_counter() - wall0
    return {"ticker_lags": lags, "cpu_s": time.process_time() - cpu0, "wall_s": wall}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def scenario(
    name: str, url: str, *, rate: float, seconds: float, delay_s: float, fail_every: int
) -> dict[str, Any]:
    """One run: producer, deliverer + ticker, receiver; the numbers."""
    from sqlalchemy import func, select

    from earshot.storage.db import session_scope
    from earshot.storage.models import IntegrationAttempt, IntegrationDelivery

    ctx = mp.get_context("spawn")
    r_parent, r_child = ctx.Pipe()
    receiver = ctx.Process(target=receiver_process, args=(r_child, delay_s, fail_every))
    receiver.start()
    hook_url = r_parent.recv()
    p_parent, p_child = ctx.Pipe()
    producer = ctx.Process(target=producer_process, args=(url, rate, seconds, p_child))
    total = int(rate * seconds)
    c_parent, c_child = ctx.Pipe()
    control = ctx.Process(target=control_process, args=(c_child,))
    control.start()
    producer.start()

    def idle() -> bool:
        if producer.is_alive():
            return False
        with session_scope(url) as s:
            done = s.scalar(
                select(func.count())
                .select_from(IntegrationDelivery)
                .where(IntegrationDelivery.status == "delivered")
            )
        return int(done or 0) >= total

    loop_stats = asyncio.run(deliver_and_tick(url, hook_url, idle))
    produced = p_parent.recv()
    producer.join()
    c_parent.send("stop")
    control_lags = c_parent.recv()
    control.join()
    r_parent.send("stop")
    got = r_parent.recv()
    receiver.join()
    with session_scope(url) as s:
        attempts = int(s.scalar(select(func.count()).select_from(IntegrationAttempt)) or 0)
        retries = int(
            s.scalar(
                select(func.count())
                .select_from(IntegrationAttempt)
                .where(IntegrationAttempt.outcome == "retry")
            )
            or 0
        )
    first: dict[str, float] = {}
    for event_id, created, at in got["arrivals"]:
        first.setdefault(event_id, at - datetime.fromisoformat(created).timestamp())
    lag = list(first.values())
    ticks = loop_stats["ticker_lags"]
    return {
        "name": name,
        "rate": rate,
        "seconds": seconds,
        "emitted": produced["emitted"],
        "produce_wall_s": round(produced["wall_s"], 2),
        "delivered": len(first),
        "rejected_signatures": got["rejected"],
        "attempts": attempts,
        "retries": retries,
        "lag_p50_ms": round(pct(lag, 50) * 1000, 1),
        "lag_p95_ms": round(pct(lag, 95) * 1000, 1),
        "lag_max_ms": round(max(lag) * 1000, 1) if lag else None,
        "tick_p50_ms": round(pct(ticks, 50) * 1000, 2),
        "tick_p99_ms": round(pct(ticks, 99) * 1000, 2),
        "tick_max_ms": round(max(ticks) * 1000, 2) if ticks else None,
        "control_p99_ms": round(pct(control_lags, 99) * 1000, 2),
        "control_max_ms": round(max(control_lags) * 1000, 2) if control_lags else None,
        "deliverer_cpu_pct": round(100 * loop_stats["cpu_s"] / loop_stats["wall_s"], 1),
    }


def baseline_ticks(seconds: float) -> dict[str, float]:
    """The ticker alone on an idle loop: what the machine's scheduling costs anyway."""

    async def go() -> list[float]:
        loop = asyncio.get_running_loop()
        lags, end = [], loop.time() + seconds
        while loop.time() < end:
            t = loop.time()
            await asyncio.sleep(TICK_S)
            lags.append(loop.time() - t - TICK_S)
        return lags

    lags = asyncio.run(go())
    return {
        "tick_p50_ms": round(pct(lags, 50) * 1000, 2),
        "tick_p99_ms": round(pct(lags, 99) * 1000, 2),
        "tick_max_ms": round(max(lags) * 1000, 2),
    }


def fresh_db(kind: str, tmp: Path) -> tuple[str, Any]:
    from earshot.storage.db import migrate

    if kind == "sqlite":
        url = f"sqlite:///{tmp / f'bench-{time.time_ns()}.db'}"
        migrate(url)
        return url, None
    from testkit.pgtemp import create_pg_database, drop_pg_database

    url = create_pg_database("earshot_bench")
    migrate(url)
    return url, lambda: drop_pg_database(url)


INTRO = """\
# Outgoing webhooks under load

Generated by `scripts/bench_webhooks.py` on {when}, {cpus} CPUs shared with other work:
compare rows, not absolute times.

A producer process saves {rate:g} feedback items a second for {seconds:g} s, each with its
`item.created` event in the same transaction. The deliverer (`Deliverer.run`, as the
dashboard runs it; default settings: 16 sends in flight, polling every 0.25 s) signs and
posts them to testkit's webhook receiver in a third process, which verifies every
signature. On the deliverer's event loop a ticker asks to wake every {tick:g} ms; how late
it wakes is how long any other work on that loop (a dashboard request) waits. The bot is a
separate process that only writes the event row, so it is never blocked by delivering;
the deliverer's loop is the stricter test.

Lag = arrival at the receiver minus the event's `created_at`. *Control loop*: the same
ticker in a process of its own with nothing else on its loop, at the same time: the
lateness the shared machine causes anyway.

| Scenario | DB | Events | Delivered | Bad signatures | Attempts (retries) | Lag p50 | \
Lag p95 | Lag max | Loop late p50 | p99 | max | Control loop p99 | max | Deliverer CPU |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
"""

OUTRO = """
Before the runs, the ticker alone: late p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max:.1f} ms.

Reading it: every event arrives, once, with a valid signature, at {rate:g}/s sustained.
The lag is mostly the 0.25 s poll (an event waits half a poll on average) plus the
receiver's own time; a slow receiver is absorbed by concurrency (16 × 200 ms ≈ 80
requests/s of room); failed requests come back after the backoff (0.5 s base here, 10 s by
default), which is what the flaky row's p95 and max show. The deliverer's loop stays
responsive because the database work is batched into one round trip per poll in a worker
thread and the HTTP calls are asynchronous; what lateness it adds over the control loop is
Python's GIL shared with that thread.
"""


def render(results: list[dict[str, Any]], base: dict[str, float], args: argparse.Namespace) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out = INTRO.format(
        when=when, cpus=os.cpu_count(), rate=args.rate, seconds=args.seconds, tick=TICK_S * 1000
    )
    for r in results:
        out += (
            f"| {r['name']} | {r['db']} | {r['emitted']} | {r['delivered']} | "
            f"{r['rejected_signatures']} | {r['attempts']} ({r['retries']}) | "
            f"{r['lag_p50_ms']:.0f} ms | {r['lag_p95_ms']:.0f} ms | {r['lag_max_ms']:.0f} ms | "
            f"{r['tick_p50_ms']:.1f} ms | {r['tick_p99_ms']:.1f} ms | {r['tick_max_ms']:.1f} ms | "
            f"{r['control_p99_ms']:.1f} ms | {r['control_max_ms']:.1f} ms | "
            f"{r['deliverer_cpu_pct']:.0f}% |\n"
        )
    return out + OUTRO.format(
        p50=base["tick_p50_ms"], p99=base["tick_p99_ms"], max=base["tick_max_ms"], rate=args.rate
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench-webhooks.md"))
    args = parser.parse_args()
    from testkit.pgtemp import pg_available

    dbs = ["sqlite"] + ([] if args.sqlite_only or not pg_available() else ["postgresql"])
    runs = [
        ("fast receiver", 0.0, 0),
        ("slow receiver (200 ms)", 0.2, 0),
        ("flaky receiver (every 5th request 500)", 0.0, 5),
    ]
    base = baseline_ticks(3.0)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in dbs:
            for name, delay, fail_every in runs:
                if kind != "sqlite" and fail_every:
                    continue  # retries behave alike on both; keep the run short
                url, cleanup = fresh_db(kind, Path(tmp))
                try:
                    r = scenario(
                        name,
                        url,
                        rate=args.rate,
                        seconds=args.seconds,
                        delay_s=delay,
                        fail_every=fail_every,
                    )
                finally:
                    from earshot.storage.db import engine_for

                    engine_for(url).dispose()
                    if cleanup:
                        cleanup()
                r["db"] = kind
                results.append(r)
                print(json.dumps(r), flush=True)
    out = Path(args.out)
    out.write_text(render(results, base, args), encoding="utf-8")
    out.with_suffix(".json").write_text(
        json.dumps({"baseline": base, "runs": results}, indent=2) + "\n"
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
