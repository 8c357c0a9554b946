"""The once-per-group pointer (issue 19, groups); the per-customer inbound limit lives in
the gateway (earshot/gateway/limits.py) and is re-exported here."""

from __future__ import annotations

from collections import OrderedDict

from earshot.gateway.limits import InboundLimit, Verdict

__all__ = ["GroupPointers", "InboundLimit", "Verdict"]


class GroupPointers:
    """Groups already pointed to a private chat (bounded; in this bot process's memory)."""

    def __init__(self, max_groups: int = 100_000) -> None:
        self.max_groups = max_groups
        self._seen: OrderedDict[int, None] = OrderedDict()

    def first_time(self, chat_id: int) -> bool:
        """True the first time a group is seen: the one time the bot speaks there."""
        if chat_id in self._seen:
            return False
        self._seen[chat_id] = None
        if len(self._seen) > self.max_groups:
            self._seen.popitem(last=False)
        return True
