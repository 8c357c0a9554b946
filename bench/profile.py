"""Summarise py-spy's collapsed stacks: where each process spends its CPU.

Samples of threads that only wait (an idle thread-pool worker, an event loop blocked
in select or inside uvloop's C loop) are dropped first. Each remaining sample gets one
category: a "cause" category if any frame of the stack matches it (checked in the
order listed), so work is charged to what asked for it (a SQL query made by the
tracker store is tracker store; TensorFlow called by DIET is NLU); otherwise the
first "place" category met walking from the innermost frame outwards.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Category:
    name: str
    patterns: tuple[str, ...]
    cause: bool = False  # match anywhere in the stack, before any place category


IDLE_LEAVES = (
    "concurrent/futures/thread.py:_worker",
    "sanic/server/runners.py:serve",
    "selectors.py:select",
    "threading.py:wait",
    "queue.py:get",
)

RASA = [
    Category("custom action response validation (jsonschema)",
             ("jsonschema/", "pyrsistent/", "referencing/"), cause=True),
    Category("tracker store (SQL, event (de)serialisation)",
             ("rasa/core/tracker_store.py", "sqlalchemy/"), cause=True),
    Category("lock store", ("rasa/core/lock_store.py", "redis/"), cause=True),
    Category("NLU: tokenizer, featurizers, DIET, ResponseSelector",
             ("rasa/nlu/",), cause=True),
    Category("policies", ("rasa/core/policies/", "rasa/core/featurizers/"), cause=True),
    Category("custom action calls (aiohttp client)",
             ("aiohttp/client", "aiohttp/connector", "rasa/utils/endpoints.py"), cause=True),
    Category("tracker and events in memory", ("rasa/shared/core/",)),
    Category("graph runner, processor, agent", ("rasa/engine/", "rasa/core/", "rasa/")),
    Category("HTTP server (sanic) and JSON", ("sanic/", "httptools", "uvloop", "json/")),
    Category("logging", ("logging/",)),
    Category("asyncio event loop", ("asyncio/",)),
]  # fmt: skip

ACTIONS = [
    Category("database (SQLAlchemy, driver)", ("sqlalchemy/", "sqlite3/", "psycopg/"),
             cause=True),
    Category("classification (sentiment, similarity)",
             ("earshot/classify/", "vaderSentiment/", "sklearn/"), cause=True),
    Category("earshot core", ("earshot/",)),
    Category("actions code", ("actions/",)),
    Category("rasa_sdk (executor, tracker)", ("rasa_sdk/",)),
    Category("HTTP server (sanic) and JSON", ("sanic/", "httptools", "uvloop", "json/")),
    Category("logging", ("logging/",)),
    Category("asyncio event loop", ("asyncio/",)),
]  # fmt: skip

BOT = [
    Category("database (SQLAlchemy, driver)", ("sqlalchemy/", "sqlite3/", "psycopg/"),
             cause=True),
    Category("Rasa client (httpx)", ("bot/rasa_client.py",), cause=True),
    Category("HTTP client (httpx, httpcore, anyio)",
             ("httpx/", "httpcore/", "anyio/", "h11/")),
    Category("rate limiter", ("_aioratelimiter.py", "aiolimiter/")),
    Category("PTB: parsing updates, building requests, dispatch", ("telegram/",)),
    Category("bot and earshot code", ("bot/", "earshot/")),
    Category("logging", ("logging/",)),
    Category("asyncio event loop, thread hand-offs", ("asyncio/", "threading.py")),
]  # fmt: skip

OURS = ("earshot/", "bot/", "actions/", "addons/")


def read_samples(path: Path) -> list[tuple[list[str], int]]:
    samples = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            samples.append((stack.split(";"), int(count)))
    return samples


def _frame_key(frame: str) -> str:
    # "func (pkg/mod.py:123)" -> "pkg/mod.py:func", so patterns can name a function.
    name, _, where = frame.partition(" (")
    return where.rsplit(":", 1)[0] + ":" + name


def categorise(keys: list[str], categories: list[Category]) -> str:
    for cat in categories:
        if cat.cause and any(p in k for k in keys for p in cat.patterns):
            return cat.name
    for key in reversed(keys):
        for cat in categories:
            if not cat.cause and any(p in key for p in cat.patterns):
                return cat.name
    return "other (interpreter, imports)"


def summarise(path: Path, categories: list[Category], top: int = 8) -> dict[str, object]:
    shares: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    idle = 0
    for frames, count in read_samples(path):
        keys = [_frame_key(f) for f in frames]
        if any(keys[-1].endswith(leaf) for leaf in IDLE_LEAVES):
            idle += count
            continue
        shares[categorise(keys, categories)] += count
        for key in dict.fromkeys(k for k in keys[1:] if k.startswith(OURS)):
            if "__main__" not in key:
                ours[key] += count  # inclusive: once per sample even if recursive
    total = sum(shares.values())
    if not total:
        return {"samples": 0, "idle_samples": idle, "categories": [], "our_functions": []}
    return {
        "samples": total,
        "idle_samples": idle,
        "categories": [{"name": n, "share": round(c / total, 3)} for n, c in shares.most_common()],
        "our_functions": [
            {"function": n, "share": round(c / total, 3)} for n, c in ours.most_common(top)
        ],
    }
