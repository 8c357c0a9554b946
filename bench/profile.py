"""Summarise py-spy's collapsed stacks: where each process spends its CPU.

Each sample is put in the first category (in the order listed) whose patterns match
any of its frames, so nested work lands where it is caused: a SQL query made by the
tracker store counts as tracker store, TensorFlow called by DIET counts as NLU.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

Categories = list[tuple[str, tuple[str, ...]]]

RASA: Categories = [
    ("tracker store (SQL read/write, event (de)serialisation)",
     ("rasa/core/tracker_store.py", "sqlalchemy/")),
    ("lock store", ("rasa/core/lock_store.py", "redis/")),
    ("NLU: tokenizer, featurizers, DIET, ResponseSelector",
     ("rasa/nlu/", "rasa/core/processor.py:parse_message")),
    ("policies: Memoization, Rule (TED, UnexpecTED in stock)",
     ("rasa/core/policies/", "rasa/core/featurizers/")),
    ("custom action calls (aiohttp client)", ("aiohttp/client", "aiohttp/connector")),
    ("tracker/events/domain in memory", ("rasa/shared/core/",)),
    ("graph runner, processor, agent", ("rasa/engine/", "rasa/core/")),
    ("HTTP server (sanic)", ("sanic/", "httptools", "uvloop", "aiohttp/")),
]  # fmt: skip

ACTIONS: Categories = [
    ("database (SQLAlchemy, driver)", ("sqlalchemy/", "sqlite3/", "psycopg/", "alembic/")),
    ("classification (sentiment, similarity)", ("earshot/classify/", "vaderSentiment/",
                                                "sklearn/")),
    ("earshot core", ("earshot/",)),
    ("actions code", ("actions/",)),
    ("rasa_sdk (executor, tracker)", ("rasa_sdk/",)),
    ("HTTP server (sanic)", ("sanic/", "httptools", "uvloop")),
]  # fmt: skip

BOT: Categories = [
    ("database (SQLAlchemy, driver)", ("sqlalchemy/", "sqlite3/", "psycopg/")),
    ("Rasa client (httpx)", ("bot/rasa_client.py",)),
    ("Bot API calls (PTB request, httpx)", ("telegram/request/", "telegram/_bot.py",
                                            "telegram/ext/_extbot.py", "httpx/", "httpcore/")),
    ("rate limiter", ("telegram/ext/_aioratelimiter.py", "aiolimiter/")),
    ("PTB update parsing and dispatch", ("telegram/",)),
    ("bot code", ("bot/", "earshot/")),
]  # fmt: skip

OURS = ("earshot/", "bot/", "actions/", "channels/")


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


def summarise(path: Path, categories: Categories, top: int = 6) -> dict[str, object]:
    samples = read_samples(path)
    total = sum(c for _, c in samples)
    shares: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    for frames, count in samples:
        keys = [_frame_key(f) for f in frames]
        label = next(
            (name for name, pats in categories if any(p in k for k in keys for p in pats)),
            "other (event loop, logging, interpreter)",
        )
        shares[label] += count
        for key in dict.fromkeys(k for k in keys if k.startswith(OURS)):
            ours[key] += count  # inclusive: once per sample even if recursive
    return {
        "samples": total,
        "categories": [
            {"name": name, "share": round(n / total, 3)} for name, n in shares.most_common()
        ]
        if total
        else [],
        "our_functions": [
            {"function": name, "share": round(n / total, 3)} for name, n in ours.most_common(top)
        ]
        if total
        else [],
    }
