"""Rasa 3.6's SQL tracker store, with the indexes its per-turn queries need.

Every turn Rasa loads the current session ("events since the latest session_started")
and, when saving, counts those events again. Its `events` table has an index on
`sender_id` only, so both queries read every event the customer ever had, and a long
relationship made every turn slower (measured: 15 ms per query at 3,000 events on
SQLite, 1 ms with these indexes; `make bench`, long conversation). The indexes are
created when the store starts (IF NOT EXISTS, on SQLite and PostgreSQL alike), so an
existing database gets them too.

On SQLite, commits use `synchronous=NORMAL` as Earshot's own tables do (earshot/storage/
db.py): in WAL mode that survives a crash of any process and costs one fsync per
checkpoint instead of one per turn.

endpoints.yml: `tracker_store: {type: channels.tracker_store.IndexedSQLTrackerStore, ...}`
(written by `earshot.supervise.write_endpoints`).
"""

import logging
from typing import Any

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore

logger = logging.getLogger(__name__)

# name -> columns; the first serves max(timestamp) of session_started, the second the
# "since the session started" range of the load and of the count before a save.
INDEXES = {
    "ix_events_sender_type_time": ("sender_id", "type_name", "timestamp"),
    "ix_events_sender_time": ("sender_id", "timestamp"),
}


class IndexedSQLTrackerStore(SQLTrackerStore):
    """`SQLTrackerStore` whose session queries use an index instead of a scan."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._create_indexes()

    def _create_indexes(self) -> None:
        for name, columns in INDEXES.items():
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        sa.text(
                            f"CREATE INDEX IF NOT EXISTS {name} ON events ({', '.join(columns)})"
                        )
                    )
            except sa.exc.DBAPIError as exc:
                # Several servers starting at once may race on PostgreSQL; one wins.
                logger.warning("could not create index %s: %s", name, exc)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()
