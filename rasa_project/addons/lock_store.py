"""Rasa 3.6's Redis lock store, made safe for several Rasa servers.

Rasa's `RedisLockStore` changes a conversation's ticket lock with a separate read and
write (`issue_ticket`, `update_lock`, `finish_serving`, `cleanup`), so two servers taking
turns of the same conversation overwrite each other's tickets: both go ahead at once
(turns interleave or are lost), a waiting ticket vanishes (LockError, a 503), or an
emptied lock is re-saved and its waiter never gets a turn (RasaHQ/rasa#9213; the upstream
fix #11256 was reverted in #11428). Here each change is one Redis transaction
(WATCH/MULTI/EXEC, retried on conflict), and an empty lock is deleted.

endpoints.yml: `lock_store: {type: addons.lock_store.AtomicRedisLockStore, url: ...}`
(written by `earshot.cli.supervise.write_endpoints` when REDIS_URL is set).
"""

import json
from collections.abc import Callable
from typing import Any

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore

Change = Callable[[TicketLock | None], tuple[TicketLock | None, Any]]


class AtomicRedisLockStore(RedisLockStore):
    """A `RedisLockStore` whose every read-modify-write of a lock is atomic."""

    def __init__(self, endpoint_config: Any = None, **kwargs: Any) -> None:
        if endpoint_config is not None:  # how Rasa builds a lock store named by module path
            kwargs = {"host": endpoint_config.url, **endpoint_config.kwargs}
        super().__init__(**kwargs)

    def _atomic(self, conversation_id: str, change: Change) -> Any:
        key = self.key_prefix + conversation_id
        with self.red.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    lock = TicketLock.from_dict(json.loads(raw)) if raw else None
                    lock, result = change(lock)
                    pipe.multi()
                    if lock is None or not lock.tickets:
                        pipe.delete(key)
                    else:
                        pipe.set(key, lock.dumps())
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue  # another server changed the lock meanwhile: redo on its state

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def change(lock: TicketLock | None) -> tuple[TicketLock | None, Any]:
            lock = lock or self.create_lock(conversation_id)
            return lock, lock.issue_ticket(lock_lifetime)

        try:
            return int(self._atomic(conversation_id, change))
        except Exception as e:
            raise LockError(f"Error while acquiring lock. Error:\n{e}") from e

    def update_lock(self, conversation_id: str) -> None:
        def change(lock: TicketLock | None) -> tuple[TicketLock | None, Any]:
            if lock:
                lock.remove_expired_tickets()
            return lock, None

        self._atomic(conversation_id, change)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        def change(lock: TicketLock | None) -> tuple[TicketLock | None, Any]:
            if lock:
                lock.remove_ticket_for(ticket_number)
            return lock, None

        self._atomic(conversation_id, change)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        self.finish_serving(conversation_id, ticket_number)  # deletes the lock when empty
