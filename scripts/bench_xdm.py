"""X direct messages next to Telegram: `earshot run` with both channels on their fakes,
real Rasa and action server; the same four-turn conversation (a service question, 👍,
"hello", /help) by N customers at once on each channel. Reports turns, errors, latency
(webhook or update in -> first reply out) and the CPU per turn of the X process and of
the Telegram bot process (from /proc), into reports/bench-xdm.{md,json}.

    PYTHONPATH=$PWD .venv/bin/python scripts/bench_xdm.py --customers 10 50
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# This script's folder comes first on sys.path, and scripts/bench.py would shadow `bench`.
sys.path[:] = [str(ROOT), str(ROOT / "rasa_project")] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

import httpx  # noqa: E402 - after the path setup above

from bench.procs import find_child, machine  # noqa: E402
from bench.stats import percentile  # noqa: E402
from testkit.stack import Stack, free_port, running_stack  # noqa: E402
from testkit.x_api import FakeXAPI  # noqa: E402

TURNS: list[tuple[str, str]] = [
    ("say", "Where is my order? I want to track my parcel"),
    ("press", "👍"),
    ("say", "hello"),
    ("say", "/help"),
]
TICKS = os.sysconf("SC_CLK_TCK")
_ids = itertools.count(5_100_000_001)


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def wait_new(count: Callable[[], int], seen: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while (now := count()) <= seen:
        if time.monotonic() > deadline:
            raise TimeoutError("no reply")
        time.sleep(0.005)
    return now


def x_customer(fake: FakeXAPI) -> list[float]:
    user = str(next(_ids))
    latencies, seen = [], 0
    for kind, text in TURNS:
        t0 = time.monotonic()
        if kind == "say":
            fake.push_text(user, text)
        else:
            fake.press_label(user, text)
        seen = wait_new(lambda: len(fake.sent_to(user)), seen)
        latencies.append(time.monotonic() - t0)
    return latencies


def telegram_customer(stack: Stack) -> list[float]:
    user = int(next(_ids)) % 2_000_000_000
    fake = stack.fake
    latencies, seen = [], 0

    def count() -> int:
        return len([m for m in fake.sent_messages(user) if m.method != "editMessageText"])

    for kind, text in TURNS:
        t0 = time.monotonic()
        if kind == "say":
            fake.send_text(user, text)
        else:
            time.sleep(0.05)  # the keyboard is on the message just counted
            fake.press_button_by_text(
                user,
                next(
                    b
                    for m in reversed(fake.sent_messages(user))
                    for b in m.button_texts
                    if b.startswith(text)
                ),
            )
        seen = wait_new(count, seen)
        latencies.append(time.monotonic() - t0)
    return latencies


def run(name: str, customers: int, pid: int, one: Callable[[], list[float]]) -> dict[str, Any]:
    errors: list[str] = []
    lat: list[float] = []
    lock = threading.Lock()

    def customer() -> None:
        try:
            got = one()
        except Exception as exc:  # a failed conversation is counted, not fatal
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}"[:120])
            return
        with lock:
            lat.extend(got)

    before, t0 = cpu_s(pid), time.monotonic()
    with ThreadPoolExecutor(customers) as pool:
        for _ in range(customers):
            pool.submit(customer)
    wall = time.monotonic() - t0
    time.sleep(1.0)  # trailing work (typing indicators, logs) belongs to these turns
    cpu = cpu_s(pid) - before
    turns = len(lat)
    return {
        "channel": name,
        "customers": customers,
        "turns": turns,
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:3],
        "wall_s": round(wall, 2),
        "turns_per_s": round(turns / wall, 2) if wall else None,
        "p50_ms": round((percentile(lat, 50) or 0) * 1000, 1),
        "p95_ms": round((percentile(lat, 95) or 0) * 1000, 1),
        "cpu_ms_per_turn": round(cpu * 1000 / turns, 2) if turns else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench-xdm"))
    args = parser.parse_args()
    port = free_port()
    results = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeXAPI(webhook_url=f"http://127.0.0.1:{port}/x") as fake,
    ):
        env = {
            **fake.env(),
            "X_WEBHOOK_PORT": str(port),
            "LOG_LEVEL": "WARNING",
            "TYPING_AFTER_S": "0.8",
            "TELEGRAM_MESSAGES_PER_SECOND": "0",
        }
        with running_stack(Path(tmp), **env) as stack:
            assert stack.proc is not None
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "no X webhook"
                time.sleep(0.3)
            x_pid = find_child(stack.proc.pid, "-m", "xdm")
            bot_pid = find_child(stack.proc.pid, "-m", "bot")
            assert x_pid and bot_pid, "X or Telegram process not found"
            x_customer(fake)  # warm up both paths (imports, first queries, Rasa caches)
            telegram_customer(stack)
            for n in args.customers:
                results.append(run("x", n, x_pid, lambda: x_customer(fake)))
                results.append(run("telegram", n, bot_pid, lambda: telegram_customer(stack)))
                print(json.dumps(results[-2:]), file=sys.stderr)
    out = Path(args.out)
    report = {"machine": machine(), "turns": [t for _, t in TURNS], "results": results}
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# X direct messages next to Telegram",
        "",
        "`scripts/bench_xdm.py`: `earshot run` with both channels on their fakes, real Rasa",
        "and action server; each customer sends a service question, presses 👍, says",
        '"hello" and /help. Latency: webhook POST (X) or update served (Telegram) to the',
        "first reply. CPU per turn: the channel's process (X webhook + gateway + sender;",
        "Telegram bot + gateway), from /proc, while only that channel is driven.",
        "",
        "| channel | customers at once | turns | errors | turns/s | p50 ms | p95 ms "
        "| CPU ms per turn |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['channel']} | {r['customers']} | {r['turns']} | {r['errors']} "
            f"| {r['turns_per_s']} | {r['p50_ms']} | {r['p95_ms']} | {r['cpu_ms_per_turn']} |"
        )
    m = report["machine"]
    lines += ["", f"Machine: {m}"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
