"""Store a customer's three sessions through IndexedSQLTrackerStore the way Rasa does
(a save after every turn), read them back, and print what came back as JSON.
Runs in the Rasa venv: `python tracker_store_check.py DB_URL` (sqlite:/// or postgresql://).
"""

import asyncio
import json
import sys
from urllib.parse import urlsplit

import sqlalchemy as sa
from addons.tracker_store import INDEXES, IndexedSQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

SQLITE_INDEXES = "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='events'"
SQLITE_PLAN = (
    "EXPLAIN QUERY PLAN SELECT max(timestamp) FROM events"
    " WHERE sender_id='x' AND type_name='session_started'"
)
PG_INDEXES = "SELECT indexname FROM pg_indexes WHERE tablename='events'"


async def main(url: str) -> dict:
    store = IndexedSQLTrackerStore(**store_kwargs(url))
    IndexedSQLTrackerStore(**store_kwargs(url))  # a second start: the indexes exist, no error
    connects = []
    sa.event.listen(store.engine, "connect", lambda *_: connects.append(1))
    tracker = DialogueStateTracker("customer-1", [])
    other = DialogueStateTracker("customer-2", [])
    t = 1000.0
    for session in range(3):
        tracker.update(ActionExecuted("action_session_start", timestamp=t))
        tracker.update(SessionStarted(timestamp=t + 0.001))
        t += 0.01
        for turn in range(20):
            t += 1
            tracker.update(UserUttered(f"s{session} question {turn}", timestamp=t))
            tracker.update(ActionExecuted("utter_answer", timestamp=t + 0.1))
            tracker.update(BotUttered(f"s{session} answer {turn}", timestamp=t + 0.2))
            tracker.update(ActionExecuted("action_listen", timestamp=t + 0.3))
            other.update(UserUttered(f"noise {turn}", timestamp=t + 0.5))
            await store.save(tracker)
            await store.save(other)
            tracker = await store.retrieve("customer-1") or tracker  # as the processor does
    current = await store.retrieve("customer-1")
    full = await store.retrieve_full_tracker("customer-1")
    texts = [e.text for e in current.events if isinstance(e, UserUttered)]
    with store.engine.connect() as conn:
        if store.engine.dialect.name == "sqlite":
            names = [r[0] for r in conn.execute(sa.text(SQLITE_INDEXES))]
            plan = " | ".join(str(r[-1]) for r in conn.execute(sa.text(SQLITE_PLAN)))
            synchronous = conn.execute(sa.text("PRAGMA synchronous")).scalar()
        else:
            names = [r[0] for r in conn.execute(sa.text(PG_INDEXES))]
            plan, synchronous = "", None
        rows = conn.execute(sa.text("SELECT sender_id, count(*) FROM events GROUP BY sender_id"))
        rows = [tuple(r) for r in rows]
    return {
        "current_texts": texts,
        "full_user_events": sum(isinstance(e, UserUttered) for e in full.events),
        "stored_rows": dict(list(rows)),
        "indexes": sorted(n for n in names if n in INDEXES),
        "max_plan": plan,
        "synchronous": synchronous,
        "connects": len(connects),
    }


def store_kwargs(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"domain": Domain.empty(), "dialect": "sqlite", "db": url.split("///", 1)[1]}
    u = urlsplit(url)
    return {
        "domain": Domain.empty(),
        "dialect": "postgresql",
        "host": u.hostname,
        "port": u.port,
        "db": u.path.lstrip("/"),
        "username": u.username or "postgres",
        "password": u.password,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1]))))
