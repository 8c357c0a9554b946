#!/usr/bin/env python3
"""`make bench`: how fast Earshot answers, against stock Rasa 3.6, on this machine.

1. Our whole product (PTB bot polling a fake Bot API, Rasa, the action server, the
   database) with 1, 10 and 50 customers holding a realistic conversation at once: a
   service question, 👍, then feedback through every step of the form. Latency of a
   reply = from the moment the fake serves the update to the bot until the bot's first
   message for it arrives. Customers answer at once (the worst case); a *paced* run at
   concurrency 10 has each send at most one message a second, Telegram's per-chat pace.
2. Stock Rasa (the `rasa init` default config, TED and UnexpecTED included) trained on
   the same domain and data, served by `rasa run` with the REST channel and the
   in-memory tracker store, driven over HTTP with the same conversations. Both systems
   run side by side and their runs alternate, so background load hits both alike.
3. One long conversation (300 turns) per system: latency of turns 1-10 vs 291-300.
4. One vs two Rasa servers sharing a PostgreSQL tracker store and the Redis lock store,
   checking that no turn is lost or interleaved.
5. A py-spy profile of our path at concurrency 10.

Writes reports/bench.json, reports/bench.md and reports/bench.png. Compare ratios
(ours vs stock in the same run), not absolute times: the machine is shared.

    .venv/bin/python scripts/bench.py              # the full run (make bench)
    .venv/bin/python scripts/bench.py --quick      # a small run to check the harness
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# This script's folder comes first on sys.path, and its name would shadow the `bench` package.
sys.path[:] = [str(ROOT), str(ROOT / "rasa_project")] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

import httpx  # noqa: E402 - after the path setup above

from bench import procs  # noqa: E402
from bench.conversations import Step, long, standard  # noqa: E402
from bench.drivers import (  # noqa: E402
    BenchFake,
    BenchWaFake,
    CountBook,
    Customer,
    HttpCustomer,
    Run,
    TelegramCustomer,
    WhatsAppCustomer,
    domain_buttons,
    run_load,
)
from bench.profile import ACTIONS, BOT, RASA, summarise  # noqa: E402
from bench.stats import by_position, median_of, ratio, summarize  # noqa: E402
from bench.stock import stock_model  # noqa: E402
from bench.targets import TARGETS, targets  # noqa: E402
from bot.app import COMMAND_PAYLOADS  # noqa: E402
from bot.limits import sends_message  # noqa: E402
from earshot.cli.supervise import MODEL, RASA_BIN, Part, write_endpoints  # noqa: E402
from earshot.privacy.identity import user_key  # noqa: E402
from earshot.settings import Settings, load_settings  # noqa: E402
from earshot.storage.db import migrate  # noqa: E402
from testkit.stack import SECRET, Stack, free_port, stack_env, write_config  # noqa: E402

REPORTS = ROOT / "reports"
TRAIN_TIME = ROOT / "models" / "earshot-train-time.json"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
RASA_TOKEN = "bench-rasa-token"  # noqa: S105 - throwaway servers on loopback
TOKEN_HEADERS = {"X-Earshot-Token": RASA_TOKEN}
# What our bot sends along with each message; the direct HTTP drivers send the same.
METADATA = {"channel": "telegram", "language_code": "en", "language": "en", "chat_type": "private"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Telegram's Bot FAQ: "avoid sending more than one message per second" in one chat. A
# customer who answers instantly makes the bot break that; at this pace it cannot.
CHAT_PACE_S = 1.0


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a process so far."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def base_env(workdir: Path, db_url: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "RASA_", "DATABASE_"))
    }
    env.update(
        {
            "EARSHOT_CONFIG": str(write_config(workdir / "config.yml")),
            "DATA_DIR": str(workdir / "data"),
            "DATABASE_URL": db_url,
            "EARSHOT_SECRET": SECRET,
            "RASA_TOKEN": RASA_TOKEN,
            "CUSTOMER_MESSAGES_PER_MINUTE": "0",  # load generators type faster than people
            "RASA_TELEMETRY_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "rasa_project")]),
            "LOG_LEVEL": "INFO",
        }
    )
    return env


def action_part(name: str, env: dict[str, str], port: int, log_path: Path) -> Part:
    return Part(
        name,
        [sys.executable, "-m", "actions"],
        {**env, "ACTION_SERVER_PORT": str(port), "SANIC_HOST": "127.0.0.1"},
        f"http://127.0.0.1:{port}/health",
        log_path,
    )


def rasa_part(
    name: str,
    env: dict[str, str],
    model: Path,
    endpoints: Path,
    credentials: Path,
    port: int,
    log_path: Path,
    *,
    api: bool = False,
) -> Part:
    argv = [
        str(RASA_BIN),
        "run",
        "--model",
        str(model),
        "--endpoints",
        str(endpoints),
        "--credentials",
        str(credentials),
        "--interface",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if api:
        argv += ["--enable-api"]  # our channel checks RASA_TOKEN from the environment
    return Part(name, argv, env, f"http://127.0.0.1:{port}/", log_path)


# --------------------------------------------------------------------------- systems


class Ours:
    """The whole product via `earshot run`, its bot polling a fake Bot API."""

    def __init__(
        self,
        workdir: Path,
        db_url: str,
        rtt_s: float = 0.0,
        paid_overflow: bool = False,
        whatsapp: bool = False,
    ) -> None:
        self.workdir = workdir
        self.fake = BenchFake(rtt_s=rtt_s)
        self.fake.start()
        env = stack_env(self.fake, workdir, db_url)
        self.wa: BenchWaFake | None = None
        if whatsapp:  # the WhatsApp webhook too, on a fake Cloud API
            self.wa_port = free_port()
            self.wa = BenchWaFake(webhook_url=f"http://127.0.0.1:{self.wa_port}/whatsapp")
            self.wa.start()
            env.update(
                {
                    "WHATSAPP_ACCESS_TOKEN": self.wa.token,
                    "WHATSAPP_APP_SECRET": self.wa.app_secret,
                    "WHATSAPP_VERIFY_TOKEN": "bench-verify",
                    "WHATSAPP_PHONE_NUMBER_ID": self.wa.phone_number_id,
                    "WHATSAPP_API_BASE_URL": self.wa.base_url,
                    "WHATSAPP_WEBHOOK_PORT": str(self.wa_port),
                }
            )
        # The tests' values (small sessions, "typing…" on every turn) give way to the
        # product's defaults, or to the caller's, to compare.
        for name in ("SESSION_MAX_EVENTS", "TYPING_AFTER_S", "TELEGRAM_MESSAGES_PER_SECOND"):
            env.pop(name, None)
            if name in os.environ:
                env[name] = os.environ[name]
        env["TELEGRAM_PAID_OVERFLOW"] = "true" if paid_overflow else "false"
        # Messages/s the bot's rate limiter allows (0: none), as the bot reads it.
        default = Settings.model_fields["telegram_messages_per_second"].default
        self.message_rate = float(env.get("TELEGRAM_MESSAGES_PER_SECOND", default))
        self.stack = Stack(self.fake, env, db_url, workdir)
        self.book = CountBook()
        self.pids: dict[str, int | None] = {}

    def start(self) -> None:
        self.stack.start(timeout=900)
        assert self.stack.proc is not None
        sup = self.stack.proc.pid
        wanted = {
            "rasa": [str(RASA_BIN), "run"],
            "actions": ["-m", "actions"],
            "bot": ["-m", "bot"],
            "whatsapp": ["-m", "whatsapp"],
        }
        deadline = time.monotonic() + 120
        while True:
            for child in procs.children(sup):
                args = procs.cmdline(child)[1:3]
                for name, head in wanted.items():
                    if args == head:
                        self.pids[name] = child
            if self.wa is None or self._wa_healthy():
                break
            if time.monotonic() > deadline:
                raise TimeoutError("the WhatsApp webhook did not come up")
            time.sleep(0.3)

    def _wa_healthy(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.wa_port}/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def wa_customers(self, first_id: int, n: int) -> list[Customer]:
        assert self.wa is not None
        return [
            WhatsAppCustomer(self.wa, self.book, str(31_600_000_000 + first_id + i), i)
            for i in range(n)
        ]

    @property
    def rasa_url(self) -> str:
        return self.stack.env["RASA_URL"] + "/webhooks/earshot/webhook"

    def customers(self, first_id: int, n: int) -> list[Customer]:
        return [TelegramCustomer(self.fake, self.book, first_id + i, i) for i in range(n)]

    def stop(self) -> None:
        self.stack.stop()
        self.fake.stop()
        if self.wa is not None:
            self.wa.stop()


class Stock:
    """Stock Rasa: `rasa run` with the REST channel and the in-memory tracker store."""

    def __init__(self, workdir: Path, model: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        db_url = f"sqlite:///{workdir / 'data' / 'earshot.db'}"
        migrate(db_url)
        env = base_env(workdir, db_url)
        action_port, self.port = free_port(), free_port()
        endpoints = workdir / "endpoints.yml"
        endpoints.write_text(
            json.dumps(
                {
                    "action_endpoint": {
                        "url": f"http://127.0.0.1:{action_port}/webhook",
                        "headers": TOKEN_HEADERS,  # our action server wants the secret
                    }
                }
            )
        )  # JSON is YAML
        credentials = workdir / "credentials.yml"
        credentials.write_text("rest: {}\n")
        self.actions = action_part("stock actions", env, action_port, workdir / "actions.log")
        self.rasa = rasa_part(
            "stock Rasa", env, model, endpoints, credentials, self.port, workdir / "rasa.log"
        )
        self.parts = [self.actions, self.rasa]
        self.client = httpx.Client(
            timeout=120, limits=httpx.Limits(max_connections=100), headers=TOKEN_HEADERS
        )
        self.buttons = domain_buttons(ROOT / "rasa_project" / "domain")

    def start(self) -> None:
        for part in self.parts:
            part.start()

    @property
    def pids(self) -> dict[str, int | None]:
        return {
            p: (part.proc.pid if part.proc else None)
            for p, part in (("rasa", self.rasa), ("actions", self.actions))
        }

    def customers(self, first_id: int, n: int) -> list[Customer]:
        url = f"http://127.0.0.1:{self.port}/webhooks/rest/webhook"
        return [
            HttpCustomer(
                self.client,
                [url],
                user_key(SECRET, "telegram", first_id + i),
                i,
                commands=COMMAND_PAYLOADS,
                fallback_buttons=self.buttons,
            )
            for i in range(n)
        ]

    def stop(self) -> None:
        for part in reversed(self.parts):
            part.stop()
        self.client.close()


def direct_customers(
    client: httpx.Client, urls: Sequence[str], first_id: int, n: int, buttons: dict[str, str]
) -> list[HttpCustomer]:
    """Customers posting to our `earshot` channel with the bot's metadata, no bot."""
    out = []
    for i in range(n):
        order = list(urls) if i % 2 == 0 else list(reversed(urls))  # spread the first hits
        out.append(
            HttpCustomer(
                client,
                order,
                user_key(SECRET, "telegram", first_id + i),
                i,
                commands=COMMAND_PAYLOADS,
                fallback_buttons=buttons,
                metadata=METADATA,
            )
        )
    return out


# --------------------------------------------------------------------------- measuring


@dataclass
class Measured:
    run: Run
    summary: dict[str, Any]


def measure(
    name: str,
    customers: Sequence[Customer],
    scripts: Sequence[Sequence[Step]],
    concurrency: int,
    pids: Mapping[str, int | None],
    fake: BenchFake | None = None,
    pace_s: float = 0.0,
) -> Measured:
    calls_before = len(fake.calls) if fake else 0
    # This process too: the simulated customers (and the fake Bot API, for ours) share
    # the machine with the system under test.
    pids = {**pids, "driver": os.getpid()}
    before = {k: cpu_s(p) for k, p in pids.items()}
    run = run_load(name, customers, scripts, concurrency, pace_s=pace_s)
    summary = summarize(run)
    if pace_s:
        summary["pace_s"] = pace_s
    ok = max(len(run.ok_turns), 1)
    summary["cpu_ms_per_turn"] = {
        k: round((cpu_s(p) - before[k]) * 1000 / ok, 1) for k, p in pids.items()
    }
    if fake is not None:
        calls = [c for c in fake.calls[calls_before:] if c.method != "getUpdates"]
        made = Counter(c.method for c in calls)
        summary["bot_api_calls_per_turn"] = {m: round(n / ok, 2) for m, n in made.most_common()}
        sends = [c for c in calls if sends_message(c.method)]
        paid = sum(c.paid for c in sends)
        if paid:
            summary["paid_share"] = round(paid / len(sends), 3)
    diverged = sum(getattr(c, "diverged", 0) for c in customers)
    if diverged:
        summary["buttons_not_offered"] = diverged
    log(
        f"{name}: c={concurrency} {summary['ok_turns']}/{summary['turns']} turns in "
        f"{summary['wall_s']} s = {summary['throughput_rps']} replies/s, p50 "
        f"{summary['p50_ms']} p95 {summary['p95_ms']} p99 {summary['p99_ms']} ms, "
        f"cpu/turn {summary['cpu_ms_per_turn']}"
        + (f", errors {summary['error_samples']}" if summary["errors"] else "")
    )
    return Measured(run, summary)


def measure_paced(
    name: str, system: Ours | Stock, first_id: int, concurrency: int, fake: BenchFake | None
) -> Measured:
    """Customers at Telegram's per-chat pace (CHAT_PACE_S), one per slot."""
    scripts = [standard(i) for i in range(concurrency)]
    customers = system.customers(first_id, concurrency)
    return measure(f"{name} c={concurrency} paced", customers, scripts, concurrency,
                   system.pids, fake, pace_s=CHAT_PACE_S)  # fmt: skip


def measure_paid_overflow(
    workdir: Path,
    postgres: bool,
    rtt_s: float,
    book: CountBook,
    first_id: int,
    levels: Sequence[int],
) -> dict[str, Any]:
    """Our stack again with paid overflow on (`telegram_paid_overflow`): messages over
    Telegram's free ~30/s go out at once as paid broadcasts, so the stack's own speed is
    what limits it. It gets a database of the main stack's kind, of its own."""
    workdir.mkdir()
    pg = procs.create_pg_database() if postgres else None
    paid = Ours(workdir, pg or f"sqlite:///{workdir / 'data' / 'earshot.db'}", rtt_s, True)
    paid.book = book  # the reply counts learned in the warm-up
    try:
        paid.start()
        run_load("warm-paid", paid.customers(first_id, 1), [standard(0)], 1)
        first_id += 1
        out: dict[str, Any] = {}
        for concurrency in levels:
            n = customers_at(concurrency)
            scripts = [standard(i) for i in range(n)]
            name = f"ours c={concurrency} paid overflow"
            customers = paid.customers(first_id, n)
            first_id += n
            out[f"c{concurrency}"] = measure(
                name, customers, scripts, concurrency, paid.pids, paid.fake
            ).summary
        return out
    finally:
        paid.stop()
        if pg:
            procs.drop_pg_database(pg)


def warm_up(ours: Ours | None, stock: Stock | None, n_variants: int) -> None:
    """First requests load TensorFlow graphs; the Telegram driver also learns how many
    messages each kind of turn gets (quiet-period detection, see CountBook)."""
    jobs: list[Callable[[], Any]] = []
    if ours is not None:
        o = ours

        def ours_job() -> None:
            run_load("warm-ours", o.customers(900_000, 1), [standard(0)], 1)
            extra = o.customers(900_001, n_variants - 1)  # the other opening questions
            run_load("warm-ours-q", extra, [standard(i + 1)[:1] for i in range(len(extra))], 1)

        jobs.append(ours_job)
    if stock is not None:
        s = stock
        jobs.append(lambda: run_load("warm-stock", s.customers(900_000, 1), [standard(0)], 1))
    with ThreadPoolExecutor(len(jobs) or 1) as pool:
        list(pool.map(lambda job: job(), jobs))


def long_summary(m: Measured, turns: int) -> dict[str, Any]:
    series = by_position(m.run.turns)
    return {
        "turns": turns,
        "ok_turns": m.summary["ok_turns"],
        "turn1_ms": median_of(series, 1, 10),
        "turn300_ms": median_of(series, turns - 9, turns),
        "latency_ms": {str(k): v for k, v in sorted(series.items())},
        "cpu_ms_per_turn": m.summary["cpu_ms_per_turn"],
        "errors": m.summary["errors"],
    }


def our_training_time(workdir: Path, force: bool, allowed: bool = True) -> dict[str, Any] | None:
    """Seconds a fresh training of our model takes (cached per training-input hash)."""
    spec = importlib.util.spec_from_file_location("earshot_train", ROOT / "scripts" / "train.py")
    assert spec and spec.loader
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    digest = train.fingerprint()
    if TRAIN_TIME.exists() and not force:
        cached = json.loads(TRAIN_TIME.read_text())
        if cached.get("fingerprint") == digest:
            return dict(cached)
    if not allowed:
        return None
    log("timing a fresh training of our model (same command as scripts/train.py, empty cache)")
    out = workdir / "train-out"
    cmd = train.command(str(out), "timed")
    env = {
        **train.environment(),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "RASA_CACHE_DIRECTORY": str(workdir / "train-cache"),
    }
    load = [round(x, 2) for x in os.getloadavg()]
    start = time.monotonic()
    with open(workdir / "train.log", "ab") as f:
        result = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
    seconds = round(time.monotonic() - start, 1)
    if result.returncode != 0:
        log(f"training failed; see {workdir / 'train.log'}")
        return None
    record = {
        "fingerprint": digest,
        "train_s": seconds,
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load_at_start": load,
    }
    TRAIN_TIME.write_text(json.dumps(record, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    return record


# --------------------------------------------------------------------------- profile


def profile_ours(ours: Ours, workdir: Path, customers: int, first_id: int) -> dict[str, Any]:
    names = {"rasa": RASA, "actions": ACTIONS, "bot": BOT}
    spies = {
        name: procs.start_profile(pid, workdir / f"profile-{name}.raw")
        for name, pid in ours.pids.items()
        if pid
    }
    if not any(spies.values()):
        return {"error": "py-spy is not installed (pip install py-spy into .venv)"}
    time.sleep(1.0)  # py-spy attaches
    m = measure(
        "profile-ours",
        ours.customers(first_id, customers),
        [standard(i) for i in range(customers)],
        customers,
        ours.pids,
    )
    for spy in spies.values():
        procs.stop_profile(spy)
    out: dict[str, Any] = {"run": m.summary, "processes": {}}
    for name, spy in spies.items():
        raw = workdir / f"profile-{name}.raw"
        if spy is not None and raw.exists():
            out["processes"][name] = summarise(raw, names[name])
            shutil.copy(raw, REPORTS / f"bench-profile-{name}.txt")
    return out


# --------------------------------------------------------------------------- scale-out


REF = re.compile(r"\b[A-Z]{2}-[2-9A-HJ-NP-Z]{4}\b")


def _norm(texts: Sequence[str]) -> list[str]:
    return [REF.sub("<ref>", t) for t in texts]


@dataclass
class Stored:
    """What the tracker store kept of one conversation, compared with what was sent."""

    problems: list[str]
    burst_issue: str | None
    failed_but_stored: bool  # answered with an error, yet the turn was taken


def check_tracker(base_url: str, customer: HttpCustomer, burst: Sequence[str]) -> Stored:
    """A conversation as stored: its sequential turns (missing, out of order, a reply
    split from its message), a turn answered with an error, and the simultaneous pair."""
    resp = httpx.get(
        f"{base_url}/conversations/{customer.sender}/tracker",
        params={"include_events": "ALL"},
        headers=TOKEN_HEADERS,
        timeout=60,
    )
    resp.raise_for_status()
    turns: list[tuple[str, list[str]]] = []
    for event in resp.json().get("events", []):
        if event.get("event") == "user":
            turns.append((str(event.get("text")), []))
        elif event.get("event") == "bot" and turns:
            turns[-1][1].append(str(event.get("text") or ""))
    who = customer.sender[:8]
    problems = []
    sent = [text for text, _ in customer.history]
    if [text for text, _ in turns[: len(sent)]] != sent:
        problems.append(f"{who}: user turns stored out of order or missing")
    for (text, got), (_, kept) in zip(customer.history, turns, strict=False):
        if got != kept:
            problems.append(f"{who}: replies to {text!r} differ from the tracker")
    tail = turns[len(sent) :]
    failed_but_stored = bool(customer.failed and tail and tail[0][0] == customer.failed)
    if failed_but_stored:
        tail = tail[1:]
    burst_issue = None
    if sorted(t for t, _ in tail) != sorted(burst):
        burst_issue = f"{who}: sent {list(burst)} at once, stored {[t for t, _ in tail]}"
    elif any(not replies for _, replies in tail):
        burst_issue = f"{who}: the simultaneous messages' turns interleaved"
    return Stored(problems, burst_issue, failed_but_stored)


def scale_out(workdir: Path, customers: int, first_id: int) -> dict[str, Any]:
    """1 vs 2 Rasa servers (each with its action server) on one PostgreSQL tracker store
    and the Redis lock store, driven over our `earshot` channel."""
    if not procs.pg_available():
        return {"skipped": "PostgreSQL is not running on 127.0.0.1:5432"}
    if not procs.redis_available():
        return {"skipped": "Redis is not running on 127.0.0.1:6379"}
    workdir.mkdir(parents=True, exist_ok=True)
    pg = procs.create_pg_database()
    parts: list[Part] = []
    client = httpx.Client(
        timeout=120, limits=httpx.Limits(max_connections=100), headers=TOKEN_HEADERS
    )
    try:
        migrate(pg)
        env = base_env(workdir, pg)
        settings = load_settings(
            database_url=pg, redis_url=REDIS_URL, data_dir=workdir / "data", rasa_token=RASA_TOKEN
        )
        urls, bases, rasa_pids = [], [], []
        for i in (0, 1):
            action_port, port = free_port(), free_port()
            endpoints = write_endpoints(settings, workdir / f"endpoints-{i}.yml", action_port)
            parts.append(
                action_part(f"actions {i}", env, action_port, workdir / f"actions-{i}.log")
            )
            parts.append(
                rasa_part(
                    f"Rasa {i}",
                    env,
                    MODEL,
                    endpoints,
                    ROOT / "rasa_project" / "credentials.yml",
                    port,
                    workdir / f"rasa-{i}.log",
                    api=True,
                )
            )
            bases.append(f"http://127.0.0.1:{port}")
            urls.append(f"http://127.0.0.1:{port}/webhooks/earshot/webhook")
        for part in parts:
            part.start()
        procs.wait_healthy(parts, timeout=900)
        rasa_pids = [p.proc.pid for p in parts if p.name.startswith("Rasa") and p.proc]
        buttons = domain_buttons(ROOT / "rasa_project" / "domain")
        for i, url in enumerate(urls):  # warm up both servers
            run_load(
                "warm", direct_customers(client, [url], 800_000 + i, 1, buttons), [standard(0)], 1
            )
        pids = {f"rasa{i}": pid for i, pid in enumerate(rasa_pids)}
        scripts = [standard(i) for i in range(customers)]
        one_c = direct_customers(client, urls[:1], first_id, customers, buttons)
        one = measure("1 server", one_c, scripts, customers, pids)
        two_c = direct_customers(client, urls, first_id + 10_000, customers, buttons)
        two = measure("2 servers", two_c, scripts, customers, pids)

        # Two messages from one customer to both servers at the same moment: the lock
        # store must serialise them (each answered, neither turn split by the other).
        burst = ("thanks", "thank you")
        for c in two_c:
            barrier = threading.Barrier(2)

            def send(text: str, url: str, cust: HttpCustomer = c, b: Any = barrier) -> int:
                b.wait()
                return cust.post(text, url)[0]

            with ThreadPoolExecutor(2) as pool:
                statuses = list(pool.map(send, burst, urls))
            if statuses != [200, 200]:
                log(f"burst answered {statuses}")
        problems: list[str] = []
        burst_issues: list[str] = []
        failed_but_stored = 0
        for c in two_c:
            stored = check_tracker(bases[0], c, burst)
            problems += stored.problems
            burst_issues += [stored.burst_issue] if stored.burst_issue else []
            failed_but_stored += stored.failed_but_stored
        by_turn_one = {(t.customer, t.index): _norm(t.texts) for t in one.run.ok_turns}
        mismatched = sum(
            1
            for t in two.run.ok_turns
            if by_turn_one.get((t.customer, t.index)) not in (None, _norm(t.texts))
        )
        return {
            "one_server": one.summary,
            "two_servers": two.summary,
            "speedup": ratio(two.summary["throughput_rps"], one.summary["throughput_rps"]),
            "error_answers": {
                "one_server": one.summary["errors"],
                "two_servers": two.summary["errors"],
            },
            # A customer whose turn failed stops there, like a person told to try later.
            "turns_not_run": sum(len(s) for s in scripts) - len(two.run.turns),
            "error_answers_whose_turn_was_stored": failed_but_stored,
            "replies_differing_from_one_server": mismatched,
            "tracker_problems": problems[:10],
            "tracker_problem_count": len(problems),
            "burst_pairs": len(two_c),
            "burst_pairs_broken": len(burst_issues),
            "burst_samples": burst_issues[:5],
            "rasa_rss_mb": [procs.peak_rss_mb(p) for p in rasa_pids],
            # Why a turn was answered 503, as the Rasa servers logged it.
            "error_log": failure_lines(workdir.glob("rasa-*.log"))
            if one.summary["errors"] or two.summary["errors"]
            else [],
        }
    finally:
        for part in reversed(parts):
            part.stop()
        client.close()
        procs.drop_pg_database(pg)


FAILURE = re.compile(r"failed|unavailable|could not process|Traceback|Error:", re.IGNORECASE)


def failure_lines(logs: Iterable[Path], limit: int = 10) -> list[str]:
    """The log lines that say why a turn failed (not index races or deprecations)."""
    out = []
    for path in sorted(logs):
        for line in path.read_text(errors="replace").splitlines():
            if FAILURE.search(line) and "Warning" not in line and "could not create" not in line:
                out.append(f"{path.name}: {line.strip()[:300]}")
    return out[:limit]


# --------------------------------------------------------------------------- reports


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def findings(result: dict[str, Any]) -> list[str]:
    """What the numbers say, computed from them (so reruns keep the text true)."""
    out = []
    ours = result["by_concurrency"]["ours"][-1]
    rasa_cpu = ours["cpu_ms_per_turn"].get("rasa")
    prof = (result.get("profile") or {}).get("processes", {}).get("rasa", {})
    share = next((c["share"] for c in prof.get("categories", []) if "jsonschema" in c["name"]), 0.0)
    if share >= 0.2 and rasa_cpu:
        out.append(
            f"**Rasa spends {share * 100:.0f}% of its CPU (~{share * rasa_cpu:.0f} of "
            f"{rasa_cpu} ms per turn) validating custom action responses**: "
            "`RemoteAction._validate_action_result` calls `jsonschema.validate()`, which "
            "checks Rasa's large events schema against the meta-schema and builds a new "
            "validator on every call. A validator built once gives the same result."
        )
    calls = ours.get("bot_api_calls_per_turn") or {}
    sent = sum(v for k, v in calls.items() if sends_message(k))
    paid = (result.get("paid_overflow") or {}).get(f"c{ours['concurrency']}")
    rate = result["bot_messages_per_second"]
    if rate and sent and ours["throughput_rps"] >= 0.8 * rate / sent:
        detail = ", ".join(f"{k} {v}" for k, v in calls.items())
        out.append(
            f"**Telegram's message limit caps throughput at ~{rate / sent:.0f} "
            f"replies/s** (measured {ours['throughput_rps']} at c={ours['concurrency']}): "
            f"each turn sends {sent:.2f} messages (Bot API calls per turn: {detail}) and "
            f"one bot may send about {rate:g} messages/s in all for free, which the "
            "bot's rate limiter enforces; more Rasa capacity cannot raise this. "
            "Paid overflow (`telegram_paid_overflow`) can"
            + (
                f": {paid['throughput_rps']} replies/s in the run with it on, "
                f"{paid.get('paid_share', 0) * 100:.0f}% of messages paid."
                if paid
                else "."
            )
        )
    lc = result["long_conversation"]
    long_cpu = lc["ours"]["cpu_ms_per_turn"].get("rasa")
    drift = ratio(lc["ours"]["turn300_ms"], lc["ours"]["turn1_ms"])
    if long_cpu and rasa_cpu and drift and drift > TARGETS["turn300_vs_turn1"]:
        out.append(
            f"**Long conversations cost more per turn** (turn {lc['ours']['turns']} "
            f"{drift}x turn 1): over {lc['ours']['turns']} turns Rasa used {long_cpu} ms "
            f"CPU per turn on average (vs {rasa_cpu} ms in 12-turn conversations), the "
            f"action server {lc['ours']['cpu_ms_per_turn'].get('actions')} ms (vs "
            f"{ours['cpu_ms_per_turn'].get('actions')})."
        )
    sc = result.get("scale") or {}
    if sc.get("error_answers_whose_turn_was_stored"):
        out.append(
            f"**{sc['error_answers_whose_turn_was_stored']} turns were answered 503 although "
            "Rasa had taken and stored them** (two servers, c=50): the `earshot` channel "
            "checks the action server's /health again after every turn, and under load "
            "that check fails (2 s timeout). The bot would keep such a message and replay "
            "it, so the customer's turn would be taken twice."
        )
    if sc.get("burst_pairs_broken"):
        out.append(
            f"**Simultaneous messages of one customer on two Rasa servers lose turns** "
            f"({sc['burst_pairs_broken']} of {sc['burst_pairs']} pairs): see above. The bot "
            "sends campaign asks and status notifications (`trigger_intent`) outside the "
            "chat lock, so with several Rasa servers (docker-compose runs two) such a "
            "request can race the customer's own message."
        )
    return out


def _v(x: Any) -> str:
    return "–" if x is None else str(x)


def write_markdown(result: dict[str, Any], path: Path) -> None:
    o, s = result["ours"], result["stock"]
    lines = [
        "# `make bench`: Earshot vs stock Rasa 3.6",
        "",
        f"Run {result['finished_at']} on {result['machine']}. Took "
        f"{result['duration_s']:.0f} s. The machine is shared, so absolute numbers move "
        "with its load; the comparisons (ours vs stock, 1 vs 2 servers) come from the "
        "same run, with the systems' runs alternating.",
        "",
        "- **Ours**: the whole product: the PTB bot polling a local fake Telegram Bot API, "
        f"Rasa (our config), the action server, {result['database']}. Latency of a reply "
        "= from the moment the fake hands the update to the bot until the bot's first "
        "message for it arrives at the fake"
        + (
            f" (each Bot API call delayed by a simulated {result['telegram_rtt_ms']:.0f} ms "
            "round trip)."
            if result.get("telegram_rtt_ms")
            else " (loopback: Telegram's network round trips are not included)."
        ),
        "- **Stock**: Rasa 3.6's default config (`rasa init`: DIET and ResponseSelector "
        "100 epochs, FallbackClassifier 0.3, Memoization, Rule, UnexpecTED and TED "
        "policies) trained on the same domain and data, `rasa run` with the REST channel "
        "and the in-memory tracker store, our action server. There is no Telegram front "
        "end, so it is driven over HTTP; latency = POST to response. Button presses send "
        "the button's payload as the message.",
        "- Each customer: a service question, 👍, *Not now* to the feedback question, "
        "then `/feedback`, product, *Complaint*, a description, *Skip*, importance, "
        "consent, *Confirm*, thanks (12 turns). Customers do not pause between turns, "
        "except in the *paced* runs, where each sends at most one message per second "
        "(Telegram asks bots not to send more than one message per second in a chat, and "
        "no one types faster). Throughput = turns answered / wall time; *steady* = turns/s "
        "while every customer of the run was mid-conversation (no ramp-up or drain).",
        "",
        "## Targets",
        "",
        "| target | ours | |",
        "|---|---|---|",
    ]
    for t in result["targets"]:
        limit = f" ({t['limit']})" if t.get("limit") else ""
        lines.append(f"| {t['target']} | {_v(t['value'])} | {verdict(t['met'])}{limit} |")
    lines += [
        "",
        "## Ours vs stock",
        "",
        "| | ours | stock | ours/stock |",
        "|---|---|---|---|",
    ]
    for key, label in (
        ("throughput_rps", "replies/s at c=50"),
        ("p50_ms", "p50 ms at c=50"),
        ("p95_ms", "p95 ms at c=50"),
        ("p99_ms", "p99 ms at c=50"),
        ("turn1_ms", "median ms, turns 1-10"),
        ("turn300_ms", "median ms, turns 291-300"),
        ("rasa_rss_mb", "Rasa peak RSS, MB"),
    ):
        lines.append(
            f"| {label} | {_v(o.get(key))} | {_v(s.get(key))} | "
            f"{_v(ratio(o.get(key), s.get(key)))} |"
        )
    lines += [
        "",
        "### By concurrency",
        "",
        "| system | customers at once | turns | errors | replies/s | steady replies/s | "
        "p50 ms | p95 ms | p99 ms | p50 typed / pressed | CPU ms per turn |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for system in ("ours", "stock"):
        paced = (result.get("paced") or {}).get(system)
        paid = list((result.get("paid_overflow") or {}).values()) if system == "ours" else []
        for r in result["by_concurrency"][system] + [x for x in (paced, *paid) if x]:
            cpu = ", ".join(f"{k} {v}" for k, v in r["cpu_ms_per_turn"].items())
            kinds = r.get("p50_ms_by_kind", {})
            pace = f", paced {r['pace_s']:g} s" if r.get("pace_s") else ""
            if r in paid:
                pace = f", paid overflow ({r.get('paid_share', 0) * 100:.0f}% paid)"
            lines.append(
                f"| {system} | {r['concurrency']}{pace} | {r['turns']} | {r['errors']} | "
                f"{_v(r['throughput_rps'])} | {_v(r.get('steady_rps'))} | "
                f"{_v(r['p50_ms'])} | {_v(r['p95_ms'])} | "
                f"{_v(r['p99_ms'])} | {_v(kinds.get('say'))} / {_v(kinds.get('press'))} | "
                f"{cpu} |"
            )
    direct = result.get("ours_direct_c1")
    if direct:
        lines += [
            "",
            f"Our Rasa alone (POST to the `earshot` channel, no bot, c=1): p50 "
            f"{direct['p50_ms']} ms, p95 {direct['p95_ms']} ms, vs p50 "
            f"{result['by_concurrency']['ours'][0]['p50_ms']} ms through Telegram: the "
            "difference is the bot, the Bot API round trips and the polling hop.",
        ]
    notes = []
    if s.get("buttons_not_offered"):
        notes.append(
            f"stock did not offer the pressed button {s['buttons_not_offered']} times over "
            "the runs (its ResponseSelector stores its result under `default`, so our "
            '"did that help?" action sees no topic); the domain\'s payload was sent anyway, '
            "so both systems got the same messages"
        )
    if result.get("drift"):
        notes.append(
            f"{result['drift']} bot messages arrived after their turn was counted complete"
        )
    if notes:
        lines += ["", "Notes: " + "; ".join(notes) + "."]
    lc = result["long_conversation"]
    lines += [
        "",
        "## Conversation length",
        "",
        f"One customer, {lc['ours']['turns']} turns (FAQ questions over all 25 topics, "
        "👍/👎 votes, thanks), no other load.",
        "",
        "| system | median turns 1-10 | median turns 291-300 | ratio |",
        "|---|---|---|---|",
    ]
    for system in ("ours", "stock"):
        r = lc[system]
        lines.append(
            f"| {system} | {_v(r['turn1_ms'])} ms | {_v(r['turn300_ms'])} ms | "
            f"{_v(ratio(r['turn300_ms'], r['turn1_ms']))} |"
        )
    lines += ["", "![latency vs concurrency and turn number](bench.png)", ""]
    sc = result.get("scale") or {}
    lines += ["## One vs two Rasa servers", ""]
    if "skipped" in sc or not sc:
        lines.append(f"Skipped: {sc.get('skipped', 'not run')}.")
    else:
        one, two = sc["one_server"], sc["two_servers"]
        lines += [
            "Our Rasa servers (each with its own action server) sharing one PostgreSQL "
            "tracker store and the Redis lock store, driven over our `earshot` channel; "
            "with two, each customer's requests alternate between the servers.",
            "",
            "| servers | customers at once | replies/s | p50 ms | p95 ms | errors |",
            "|---|---|---|---|---|---|",
            f"| 1 | {one['concurrency']} | {one['throughput_rps']} | {one['p50_ms']} | "
            f"{one['p95_ms']} | {one['errors']} |",
            f"| 2 | {two['concurrency']} | {two['throughput_rps']} | {two['p50_ms']} | "
            f"{two['p95_ms']} | {two['errors']} |",
            "",
            f"Speed-up {sc['speedup']}× (on {result['machine_cores']} cores). With each "
            "customer waiting for a reply before the next message (as our bot does: one "
            "message per chat at a time): replies differing from the one-server run "
            f"{sc['replies_differing_from_one_server']}, conversations stored out of order "
            f"or interleaved {sc['tracker_problem_count']}. Error answers (HTTP 503): "
            f"{sc['error_answers']['one_server']} with one server, "
            f"{sc['error_answers']['two_servers']} with two; of the latter, "
            f"{sc['error_answers_whose_turn_was_stored']} were for turns Rasa had taken "
            "and stored (the bot would keep such a message and replay it: a duplicate "
            "turn)."
            + (
                " The Rasa servers logged: "
                + "; ".join(f"`{line}`" for line in sc.get("error_log", []))
                if sc.get("error_log")
                else ""
            ),
            "",
            "Two messages of one customer sent to both servers at the same moment "
            f"({sc['burst_pairs']} customers): **{sc['burst_pairs_broken']} of "
            f"{sc['burst_pairs']} pairs lost a turn or interleaved.** Rasa 3.6's "
            "`RedisLockStore` issues tickets with an unatomic read-modify-write, so two "
            "servers can both take the lock (RasaHQ/rasa#9213; the fix, "
            "`ConcurrentRedisLockStore`, was reverted from open source in "
            "RasaHQ/rasa#11428); the SQL tracker store then saves only the events beyond "
            "the count already stored, dropping one turn. Our bot sends a chat's own "
            "messages one at a time, but not its campaign asks and status notifications "
            "(see Findings).",
        ]
        extra = sc["tracker_problems"] + sc["burst_samples"]
        if extra:
            lines += ["", *[f"- {p}" for p in extra]]
    prof = result.get("profile") or {}
    lines += ["", "## Where the time goes (ours, concurrency 10)", ""]
    if "processes" in prof:
        lines.append(
            "CPU per turn (from /proc, without the profiler, concurrency 50): "
            + ", ".join(
                f"{k} {v} ms"
                for k, v in result["by_concurrency"]["ours"][-1]["cpu_ms_per_turn"].items()
            )
            + ". py-spy samples of each process (CPU samples, not waiting), by cause:"
        )
        for name, data in prof["processes"].items():
            lines += ["", f"**{name}** ({data['samples']} samples)", ""]
            lines += [f"- {c['share'] * 100:.0f}% {c['name']}" for c in data["categories"]]
            if data["our_functions"]:
                lines.append(
                    "- our code (inclusive): "
                    + ", ".join(
                        f"`{f['function']}` {f['share'] * 100:.0f}%" for f in data["our_functions"]
                    )
                )
        lines += ["", "Raw collapsed stacks: `reports/bench-profile-*.txt`."]
    else:
        lines.append(f"Not profiled: {prof.get('error', 'skipped')}.")
    if result.get("findings"):
        lines += ["", "## Findings", "", *[f"- {f}" for f in result["findings"]]]
    tr = result.get("training") or {}
    lines += [
        "",
        "## Training",
        "",
        f"Ours: {_v(tr.get('ours_s'))} s (fresh, empty Rasa cache; measured "
        f"{_v(tr.get('ours_measured_at'))}, load {_v(tr.get('ours_load'))}). Stock: "
        f"{_v(tr.get('stock_s'))} s (cached at `{tr.get('stock_model')}`).",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def plot(json_path: Path, png: Path) -> None:
    python = ROOT / ".venv-rasa" / "bin" / "python"
    result = subprocess.run(
        [str(python), str(ROOT / "bench" / "plot.py"), str(json_path), str(png)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        log(f"plot failed: {result.stderr[-500:]}")


# --------------------------------------------------------------------------- main


def customers_at(concurrency: int) -> int:
    """Customers per level: 3 one after another at c=1, else one per slot."""
    return 3 if concurrency == 1 else concurrency


@contextlib.contextmanager
def ours_alone(
    rtt_ms: float, prefix: str, paid_overflow: bool = False, whatsapp: bool = False
) -> Iterator[Ours]:
    """Our stack alone on SQLite, started and warmed up; stopped and removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    (workdir / "ours").mkdir()
    ours = Ours(workdir / "ours", f"sqlite:///{workdir / 'ours' / 'data' / 'earshot.db'}",
                rtt_s=rtt_ms / 1000, paid_overflow=paid_overflow, whatsapp=whatsapp)  # fmt: skip
    try:
        ours.start()
        warm_up(ours, None, n_variants=5)
        if whatsapp:  # and the WhatsApp driver learns its message counts
            run_load("warm-wa", ours.wa_customers(900_000, 1), [standard(0)], 1)
        yield ours
    finally:
        ours.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def long_only(rtt_ms: float, turns: int = 300) -> int:
    """Our stack alone, one customer's long conversation: a quick check of latency drift."""
    with ours_alone(rtt_ms, "earshot-bench-long-") as ours:
        m = measure("long ours", ours.customers(1_000_000, 1), [long(turns)], 1, ours.pids)
        summary = long_summary(m, turns)
        summary.pop("latency_ms")
        log(json.dumps(summary))
    return 0


def ours_only(rtt_ms: float, paid_overflow: bool, levels: Sequence[int] = (1, 10, 50)) -> int:
    """Our stack alone through the Telegram path at each concurrency: a quick check of
    throughput and latency without stock Rasa (whose training takes most of an hour)."""
    keys = ("concurrency", "throughput_rps", "steady_rps", "p50_ms", "p95_ms", "p99_ms",
            "cpu_ms_per_turn", "bot_api_calls_per_turn", "paid_share")  # fmt: skip
    with ours_alone(rtt_ms, "earshot-bench-ours-", paid_overflow) as ours:
        next_id = 1_000_000
        for c in levels:
            n = customers_at(c)
            scripts = [standard(i) for i in range(n)]
            m = measure(f"ours c={c}", ours.customers(next_id, n), scripts, c, ours.pids, ours.fake)
            log(json.dumps({k: m.summary.get(k) for k in keys}))
            next_id += 10_000
        m = measure_paced("ours", ours, next_id, 10, ours.fake)
        log(json.dumps({k: m.summary.get(k) for k in keys}))
        log(f"Rasa peak RSS {procs.peak_rss_mb(ours.pids['rasa'])} MB")
    return 0


def wa_throughput(per_second: float, messages: int) -> dict[str, Any]:
    """Our sender alone against a fake number that refuses (130429) more than
    `per_second` a second: the rate reached, and how many sends it refused or we retried."""
    import asyncio

    from whatsapp.api import CloudApi
    from whatsapp.render import Out

    with BenchWaFake(max_per_second=per_second) as fake:
        fake.open_window("31600000000")

        async def burst() -> float:
            api = CloudApi(
                phone_number_id=fake.phone_number_id,
                token=fake.token,
                base_url=fake.base_url,
                per_second=per_second,
            )
            out = Out("text", "A status update about your feedback")
            start = time.monotonic()
            await asyncio.gather(*(api.send("31600000000", out) for _ in range(messages)))
            wall = time.monotonic() - start
            await api.aclose()
            return wall

        wall = asyncio.run(burst())
        refused = len(fake.refused)
    return {
        "limit_per_s": per_second,
        "messages": messages,
        "wall_s": round(wall, 2),
        "rate_per_s": round(messages / wall, 1),
        "refused_130429": refused,
    }


def whatsapp_vs_telegram(
    rtt_ms: float,
    levels: Sequence[int],
    channels: Sequence[str] = ("telegram", "whatsapp"),
    write: bool = True,
) -> int:
    """Our stack with both channels: the same conversations through Telegram and through
    WhatsApp at each concurrency; CPU per turn of each channel's process (gateway and
    adapter), errors, latency; then the sender against the per-number limit. Writes
    reports/bench-whatsapp.md (and .json)."""
    rows: list[dict[str, Any]] = []
    keys = ("concurrency", "turns", "ok_turns", "errors", "error_samples", "throughput_rps",
            "p50_ms", "p95_ms", "cpu_ms_per_turn")  # fmt: skip
    with ours_alone(rtt_ms, "earshot-bench-wa-", whatsapp=True) as ours:
        next_id = 1_000_000
        for c in levels:
            n = customers_at(c)
            for channel in channels:
                make = ours.customers if channel == "telegram" else ours.wa_customers
                scripts = [standard(i) for i in range(n)]
                m = measure(f"{channel} c={c}", make(next_id, n), scripts, c, ours.pids)
                rows.append({"channel": channel, **{k: m.summary.get(k) for k in keys}})
                next_id += 10_000
        assert ours.wa is not None
        refused = dict(Counter(err["error"]["code"] for _, err in ours.wa.refused))
        problems = failure_lines((ours.workdir / "data" / "logs").glob("*.log"), limit=20)
        log(f"refused by the fake Cloud API: {refused}; log lines: {problems}")
    if not write:
        return 0
    limit = Settings.model_fields["whatsapp_messages_per_second"].default
    throughput = wa_throughput(limit, int(limit * 5))
    log(json.dumps(throughput))
    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": procs.describe_machine(procs.machine()),
        "runs": rows,
        "throughput": throughput,
        "refused": refused,
        "failure_lines": problems,
    }
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "bench-whatsapp.json").write_text(json.dumps(result, indent=1) + "\n")
    write_whatsapp_markdown(result, REPORTS / "bench-whatsapp.md")
    log(f"wrote {REPORTS / 'bench-whatsapp.md'}")
    return 0


def write_whatsapp_markdown(result: dict[str, Any], path: Path) -> None:
    """The WhatsApp report: each channel's process CPU per turn side by side."""
    lines = [
        "# WhatsApp next to Telegram (generated by `scripts/bench.py --ours-only --whatsapp`)",
        "",
        f"{result['when']}, {result['machine']}. One stack (`earshot run`: Rasa, action "
        "server, Telegram bot and WhatsApp webhook, SQLite); the same scripted conversations "
        "(a service question, 👍, then a complaint through the whole feedback form, 12 "
        "turns) through the fake Bot API and through the fake WhatsApp Cloud API, customers "
        "answering at once. *Channel CPU* is the channel process's CPU per turn: the Telegram "
        "bot, or the WhatsApp webhook, each the gateway plus its adapter.",
        "",
        "| channel | c | turns | errors | replies/s | p50 ms | p95 ms | channel CPU ms/turn "
        "| Rasa | actions |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["runs"]:
        cpu = r["cpu_ms_per_turn"] or {}
        own = cpu.get("bot") if r["channel"] == "telegram" else cpu.get("whatsapp")
        lines.append(
            f"| {r['channel']} | {r['concurrency']} | {r['turns']} | {r['errors']} | "
            f"{r['throughput_rps']} | {r['p50_ms']} | {r['p95_ms']} | {own} | "
            f"{cpu.get('rasa')} | {cpu.get('actions')} |"
        )
    ratios = []
    runs = result["runs"]
    for tg in (r for r in runs if r["channel"] == "telegram"):
        wa = next(
            r for r in runs if r["channel"] == "whatsapp" and r["concurrency"] == tg["concurrency"]
        )
        t_cpu, w_cpu = tg["cpu_ms_per_turn"].get("bot"), wa["cpu_ms_per_turn"].get("whatsapp")
        if t_cpu and w_cpu:
            ratios.append(f"c={tg['concurrency']}: {w_cpu / t_cpu:.2f}")
    t = result["throughput"]
    problems = result.get("failure_lines") or []
    lines += [
        "",
        f"Sends the fake Cloud API refused during the runs: {result.get('refused') or 'none'}. "
        f"Failure lines in the stack's logs: {len(problems)}"
        + ("".join(f"\n    {p}" for p in problems) if problems else "."),
    ]
    lines += [
        "",
        f"WhatsApp's channel CPU per turn over Telegram's: {', '.join(ratios)} "
        "(the target is within 10%, i.e. at most 1.10).",
        "",
        "## Sending against the per-number limit",
        "",
        f"{t['messages']} messages sent at once through our sender (pywa, `aiolimiter` at "
        f"{t['limit_per_s']:.0f}/s) to a fake number that refuses more than "
        f"{t['limit_per_s']:.0f} a second with 130429: {t['rate_per_s']} messages/s over "
        f"{t['wall_s']} s, {t['refused_130429']} refused (retried with backoff).",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def profile_only(rtt_ms: float, customers: int = 10) -> int:
    """Our stack alone at concurrency 10 under py-spy: where each process spends its CPU
    (raw stacks in reports/bench-profile-*.txt), printed; no report written."""
    with ours_alone(rtt_ms, "earshot-bench-profile-") as ours:
        result = profile_ours(ours, ours.workdir, customers, 1_000_000)
        log(json.dumps(result, indent=1))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--db",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="our database (postgresql: a temporary one on 127.0.0.1:5432)",
    )
    parser.add_argument(
        "--train",
        action="store_true",
        help="time a fresh training of our model even if one was timed",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="few customers and turns: checks the harness, numbers mean little",
    )
    parser.add_argument("--no-scale", action="store_true", help="skip 1 vs 2 Rasa servers")
    parser.add_argument(
        "--no-paid-overflow", action="store_true",
        help="skip the run of our stack with paid overflow on",
    )  # fmt: skip
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument(
        "--telegram-rtt-ms",
        type=float,
        default=0.0,
        help="simulate the Bot API's network round trip (e.g. 60)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--long-only",
        action="store_true",
        help="only our long conversation (turns 1-10 vs 291-300), printed; no report written",
    )
    parser.add_argument(
        "--ours-only",
        action="store_true",
        help="only our stack at c=1, 10, 50, printed; no stock Rasa, no report written",
    )
    parser.add_argument(
        "--whatsapp",
        action="store_true",
        help="with --ours-only: Telegram and WhatsApp side by side at c=1, 10, 50; writes "
        "reports/bench-whatsapp.md",
    )
    parser.add_argument(
        "--paid-overflow",
        action="store_true",
        help="with --ours-only: our stack with paid overflow on",
    )
    parser.add_argument(
        "--profile-only",
        action="store_true",
        help="only a py-spy profile of our stack at c=10, printed; no report written",
    )
    args = parser.parse_args(argv)
    if args.profile_only:
        return profile_only(args.telegram_rtt_ms)
    if args.long_only:
        return long_only(args.telegram_rtt_ms)
    if args.ours_only and args.whatsapp:
        return whatsapp_vs_telegram(args.telegram_rtt_ms, (1, 10, 50))
    if args.ours_only:
        return ours_only(args.telegram_rtt_ms, args.paid_overflow)

    levels = (1, 4, 8) if args.quick else (1, 10, 50)
    long_turns = 40 if args.quick else 300
    started = time.monotonic()
    info = procs.machine()
    log(f"machine: {procs.describe_machine(info)}")
    workdir = Path(tempfile.mkdtemp(prefix="earshot-bench-"))
    REPORTS.mkdir(exist_ok=True)
    pg_url: str | None = None
    ours: Ours | None = None
    stock: Stock | None = None
    result: dict[str, Any] = {}
    try:
        stock_path, stock_train_s, trained = stock_model(
            workdir, workdir / "stock-train.log", epochs=3 if args.quick else None
        )
        log(
            f"stock model {stock_path.name} ({'trained' if trained else 'cached'}, "
            f"{stock_train_s} s training)"
        )
        train = our_training_time(workdir, args.train, allowed=args.train or not args.quick)
        if args.db == "postgresql":
            if not procs.pg_available():
                raise SystemExit("--db postgresql: no PostgreSQL on 127.0.0.1:5432")
            pg_url = procs.create_pg_database()
        db_url = pg_url or f"sqlite:///{workdir / 'ours' / 'data' / 'earshot.db'}"
        (workdir / "ours").mkdir()
        ours = Ours(workdir / "ours", db_url, rtt_s=args.telegram_rtt_ms / 1000)
        stock = Stock(workdir / "stock", stock_path)
        log("starting our stack (earshot run) and stock Rasa side by side")
        stock.start()
        ours.start()
        procs.wait_healthy(stock.parts, timeout=900)
        log(f"up; pids ours {ours.pids}, stock {stock.pids}")
        warm_up(ours, stock, n_variants=5)
        log(f"learned reply counts: {ours.book.counts}")

        by_c: dict[str, list[dict[str, Any]]] = {"ours": [], "stock": []}
        next_id = 1_000_000
        direct: dict[str, Any] | None = None
        for c in levels:
            n = customers_at(c)
            scripts = [standard(i) for i in range(n)]
            m = measure(f"ours c={c}", ours.customers(next_id, n), scripts, c, ours.pids, ours.fake)
            by_c["ours"].append(m.summary)
            m = measure(f"stock c={c}", stock.customers(next_id, n), scripts, c, stock.pids)
            by_c["stock"].append(m.summary)
            next_id += 10_000
            if c == 1:  # our Rasa without the bot: how much the Telegram path adds
                dc = direct_customers(stock.client, [ours.rasa_url], next_id, n, stock.buttons)
                direct = measure("ours direct c=1", dc, scripts, 1, ours.pids).summary
                next_id += 10_000

        # Customers at Telegram's per-chat pace, at the concurrency the latency target names.
        paced = {
            "ours": measure_paced("ours", ours, next_id, levels[1], ours.fake).summary,
            "stock": measure_paced("stock", stock, next_id, levels[1], None).summary,
        }
        next_id += 10_000

        long_ours = measure(
            "long ours", ours.customers(next_id, 1), [long(long_turns)], 1, ours.pids
        )
        long_stock = measure(
            "long stock", stock.customers(next_id, 1), [long(long_turns)], 1, stock.pids
        )
        next_id += 10_000
        paid_overflow: dict[str, Any] | None = None
        if ours.message_rate and not args.no_paid_overflow:
            log("our stack again, with paid overflow over Telegram's free message limit")
            paid_overflow = measure_paid_overflow(
                workdir / "ours-paid",
                bool(pg_url),
                args.telegram_rtt_ms / 1000,
                ours.book,
                next_id,
                (levels[1], levels[-1]),
            )
            next_id += 10_000
        rss = {
            "ours": procs.peak_rss_mb(ours.pids["rasa"]),
            "stock": procs.peak_rss_mb(stock.pids["rasa"]),
        }
        drift = ours.book.drift
        stock_diverged = sum(r.get("buttons_not_offered", 0) for r in by_c["stock"])
        message_rate = ours.message_rate

        profile: dict[str, Any] = {"error": "skipped (--no-profile)"}
        if not args.no_profile:
            stock.stop()  # an idle neighbour, but keep the profile's machine quiet
            profile = profile_ours(ours, workdir, levels[1], next_id)
            next_id += 10_000
        ours.stop()
        stock.stop()
        ours = stock = None

        scale: dict[str, Any] = {"skipped": "--no-scale"}
        if not args.no_scale:
            log("one vs two Rasa servers (PostgreSQL tracker store, Redis lock store)")
            scale = scale_out(workdir / "scale", levels[-1], next_id)

        load_end = [round(x, 2) for x in os.getloadavg()]
        top = levels[-1]

        def headline(system: str, lc: dict[str, Any]) -> dict[str, Any]:
            last = by_c[system][-1]
            return {
                "throughput_rps": last["throughput_rps"],
                "p50_ms": last["p50_ms"],
                "p95_ms": last["p95_ms"],
                "p99_ms": last["p99_ms"],
                "turn1_ms": lc["turn1_ms"],
                "turn300_ms": lc["turn300_ms"],
                "rasa_rss_mb": rss[system],
                "errors": sum(r["errors"] for r in by_c[system]),
            }

        lc = {
            "ours": long_summary(long_ours, long_turns),
            "stock": long_summary(long_stock, long_turns),
        }
        result = {
            "ours": headline("ours", lc["ours"]),
            "stock": {**headline("stock", lc["stock"]), "buttons_not_offered": stock_diverged},
            "concurrency": top,
            "machine": procs.describe_machine(info, load_end),
            "machine_cores": info["cores"],
            "load_average": {"start": info["load"], "end": load_end},
            "database": "PostgreSQL" if pg_url else "SQLite",
            "telegram_rtt_ms": args.telegram_rtt_ms,
            "bot_messages_per_second": message_rate,
            "by_concurrency": by_c,
            "p95_ms_at_c10": {
                "ours": by_c["ours"][1]["p95_ms"],
                "stock": by_c["stock"][1]["p95_ms"],
                "concurrency": levels[1],
                "ours_paced": paced["ours"]["p95_ms"],
                "stock_paced": paced["stock"]["p95_ms"],
                "pace_s": CHAT_PACE_S,
            },
            "paced": paced,
            "paid_overflow": paid_overflow,
            "ours_direct_c1": direct,
            "long_conversation": lc,
            "scale": scale,
            "profile": profile,
            "training": {
                "ours_s": train["train_s"] if train else None,
                "ours_measured_at": train["measured_at"] if train else None,
                "ours_load": train["load_at_start"] if train else None,
                "stock_s": round(stock_train_s, 1) if stock_train_s else None,
                "stock_model": str(stock_path.relative_to(ROOT)),
            },
            "drift": drift,
            "quick": args.quick,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - started, 1),
        }
        result["targets"] = targets(result)
        result["findings"] = findings(result)
        json_path = REPORTS / "bench.json"
        json_path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
        write_markdown(result, REPORTS / "bench.md")
        plot(json_path, REPORTS / "bench.png")
        log(f"wrote {json_path.relative_to(ROOT)}, reports/bench.md, reports/bench.png")
        for t in result["targets"]:
            log(f"{t['target']}: {t['value']} -> {verdict(t['met']).strip('*')}")
        return 0
    finally:
        for system in (ours, stock):
            if system is not None:
                system.stop()
        if pg_url:
            procs.drop_pg_database(pg_url)
        if args.keep:
            log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
