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
checkpoint instead of one per turn. Connections are pooled: SQLAlchemy 1.4 opens a new
SQLite connection for every session by default, and a turn opens three (load, save,
health check), each paying the connect and its pragmas (about 6% of Rasa's CPU per
turn in `make bench`'s profile). The session is read as its JSON column alone, not as
ORM objects of every column, and the count before a save is a plain `count(*)` rather
than a count over a subquery of every column: the same rows, the same order, the same
number.

endpoints.yml: `tracker_store: {type: addons.tracker_store.IndexedSQLTrackerStore, ...}`
(written by `earshot.cli.supervise.write_endpoints`).
"""

import itertools
import json
import logging
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.trackers import DialogueStateTracker

logger = logging.getLogger(__name__)

# name -> columns; the first serves max(timestamp) of session_started, the second the
# "since the session started" range of the load and of the count before a save.
INDEXES = {
    "ix_events_sender_type_time": ("sender_id", "type_name", "timestamp"),
    "ix_events_sender_time": ("sender_id", "timestamp"),
}


class IndexedSQLTrackerStore(SQLTrackerStore):
    """`SQLTrackerStore` whose session queries use an index instead of a scan."""

    engine: sa.engine.Engine  # set by SQLTrackerStore.__init__

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.engine.dialect.name == "sqlite":
            url = self.engine.url
            self.engine.dispose()
            # As SQLAlchemy 2.0 does for SQLite files: a pooled connection may be handed
            # to another thread than the one that opened it.
            self.engine = sa.create_engine(
                url,
                poolclass=sa.pool.QueuePool,
                pool_size=4,
                connect_args={"check_same_thread": False},
            )
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
        self._create_indexes()

    async def _retrieve(
        self, sender_id: str, fetch_events_from_all_sessions: bool
    ) -> DialogueStateTracker | None:
        with self.session_scope() as session:
            query = self._event_query(
                session, sender_id, fetch_events_from_all_sessions=fetch_events_from_all_sessions
            )
            events = [json.loads(data) for (data,) in query.with_entities(self.SQLEvent.data)]
        if self.domain and events:
            return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        return None

    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Iterator:
        query = self._event_query(session, tracker.sender_id, fetch_events_from_all_sessions=False)
        stored = query.with_entities(sa.func.count(self.SQLEvent.id)).order_by(None).scalar()
        return itertools.islice(tracker.events, stored or 0, len(tracker.events))

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
