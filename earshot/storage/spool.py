"""A durable local spool for when the database is down: one JSON file per entry,
written atomically, drained in order once the database is back."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


class Spool:
    """Append-only folder of JSON entries; `drain` hands them over oldest first."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def put(self, entry: dict[str, Any]) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
        tmp = self.folder / f".{name}.tmp"
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(entry, fh)
            fh.flush()
            os.fsync(fh.fileno())
        path = self.folder / name
        os.replace(tmp, path)  # atomic: a reader never sees half an entry
        return path

    def entries(self) -> Iterator[tuple[Path, dict[str, Any]]]:
        if not self.folder.exists():
            return
        for path in sorted(self.folder.glob("*.json")):
            try:
                yield path, json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue

    def drain(self, handle: Callable[[dict[str, Any]], None]) -> int:
        """Hand each entry to `handle`; an entry is removed only after it succeeded."""
        done = 0
        for path, entry in self.entries():
            handle(entry)  # raises (e.g. database still down): stop, keep the rest
            path.unlink(missing_ok=True)
            done += 1
        return done

    def remove_where(self, matches: Callable[[dict[str, Any]], bool]) -> int:
        """Delete the entries `matches` picks (erasure on request); returns how many."""
        removed = 0
        for path, entry in self.entries():
            if matches(entry):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def __len__(self) -> int:
        return len(list(self.folder.glob("*.json"))) if self.folder.exists() else 0
