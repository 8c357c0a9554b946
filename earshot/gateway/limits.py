"""Per-customer inbound limit (issue 19, floods), for every channel.

One sender must not use up a channel's shared sending rate (Telegram: about 30 messages/s
for all chats; WhatsApp: per business number) or its paid messages: past `limit` messages
a minute a customer gets one polite notice, then silence until the minute has passed.
Other customers lose nothing.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Hashable
from enum import Enum


class Verdict(Enum):
    OK = "ok"  # within the limit: answer it
    NOTICE = "notice"  # first one over the limit: say so once
    DROP = "drop"  # over the limit and already told: stay silent


class InboundLimit:
    """At most `limit` messages per `window` seconds per customer (sliding window)."""

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = 100_000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._hits: OrderedDict[Hashable, deque[float]] = OrderedDict()
        self._told: set[Hashable] = set()

    def hit(self, key: Hashable, now: float | None = None) -> Verdict:
        """Count a message of `key`; messages over the limit are not counted."""
        if self.limit <= 0:
            return Verdict.OK
        now = time.monotonic() if now is None else now
        hits = self._hits.pop(key, None) or deque()
        self._hits[key] = hits  # most recently seen last, so the oldest go first below
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(self._hits) > self.max_keys:
            old, _ = self._hits.popitem(last=False)
            self._told.discard(old)
        if len(hits) < self.limit:
            hits.append(now)
            self._told.discard(key)
            return Verdict.OK
        if key in self._told:
            return Verdict.DROP
        self._told.add(key)
        return Verdict.NOTICE
