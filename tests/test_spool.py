"""The local spool keeps entries across a crash and hands them over in order, once."""

from __future__ import annotations

from pathlib import Path

import pytest

from earshot.storage.spool import Spool


def test_entries_survive_and_drain_in_order(tmp_path: Path) -> None:
    Spool(tmp_path).put({"n": 1})
    Spool(tmp_path).put({"n": 2})
    seen: list[int] = []
    assert Spool(tmp_path).drain(lambda e: seen.append(e["n"])) == 2
    assert seen == [1, 2] and len(Spool(tmp_path)) == 0


def test_a_failing_handler_keeps_the_entry(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put({"n": 1})

    def fail(_: dict) -> None:
        raise ConnectionError("database still down")

    with pytest.raises(ConnectionError):
        spool.drain(fail)
    assert len(spool) == 1
