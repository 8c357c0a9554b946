"""Streaming the CLI's export() to the browser without holding the file in memory.

export() writes to a binary stream in a worker thread; a bounded queue carries chunks
to the response, so a slow download slows the export down instead of filling memory,
and a closed connection stops it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from typing import Any, BinaryIO, cast

import anyio.to_thread
from sqlalchemy.orm import Session

from earshot.insights.export import ExportFilter, Format, export

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
STALL_TIMEOUT = 300.0
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "jsonl": "application/x-ndjson; charset=utf-8",
}
_END = object()


class Cancelled(Exception):
    """The download was abandoned; the export stops at its next write."""


class _Pipe:
    """A write-only, non-seekable binary stream feeding a bounded queue of chunks."""

    def __init__(self, maxsize: int = 8) -> None:
        self.queue: queue.Queue[Any] = queue.Queue(maxsize)
        self.cancelled = threading.Event()
        self._buf = bytearray()

    # The file-like surface export()'s writers use (csv's TextIOWrapper, zipfile, write).
    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return False

    def tell(self) -> int:
        raise OSError("not seekable")  # zipfile then writes a streaming archive

    def write(self, data: Any) -> int:
        self._buf += data
        while len(self._buf) >= CHUNK:  # even chunks, however the writer batches
            self._put(bytes(self._buf[:CHUNK]))
            del self._buf[:CHUNK]
        return len(data)

    def flush(self) -> None:
        pass  # chunks go out when full or at the end; an early flush would only add calls

    def finish(self) -> None:
        if self._buf:
            self._put(bytes(self._buf))
            self._buf.clear()

    def _put(self, item: Any) -> None:
        # Give up when nobody reads for a long time (a response that never started
        # streaming), so the thread and its database connection are not held forever.
        deadline = time.monotonic() + STALL_TIMEOUT
        while True:
            if self.cancelled.is_set() or time.monotonic() > deadline:
                raise Cancelled
            try:
                self.queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def end(self, error: BaseException | None = None) -> None:
        try:
            self._put(error if error is not None else _END)
        except Cancelled:
            pass

    def get(self) -> Any:
        return self.queue.get()


def filename(fmt: str, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"earshot-feedback-{now:%Y%m%d-%H%M}.{fmt}"


async def stream_export(
    session_factory: Callable[[], Session], *, fmt: Format, filters: ExportFilter
) -> AsyncIterator[bytes]:
    """Run export() in a thread and yield its bytes; raises before the first chunk if it fails.

    The first chunk is awaited before this returns, so an export that fails at once
    (a database error) can still be answered with an error page instead of a cut file.
    """
    pipe = _Pipe()

    def produce() -> None:
        try:
            with session_factory() as session:
                try:
                    export(session, fmt=fmt, out=cast(BinaryIO, pipe), filters=filters)
                    pipe.finish()
                finally:
                    session.rollback()  # read only
        except Cancelled:
            log.info("export download abandoned")
            return
        except Exception as exc:
            log.exception("export failed")
            pipe.end(exc)
            return
        pipe.end()

    thread = threading.Thread(target=produce, name="earshot-export", daemon=True)
    thread.start()
    first = await anyio.to_thread.run_sync(pipe.get)
    if isinstance(first, BaseException):
        raise first

    async def chunks() -> AsyncIterator[bytes]:
        item = first
        try:
            while item is not _END:
                if isinstance(item, BaseException):
                    # Headers are out: all we can do is stop, leaving an incomplete file
                    # the client sees as a failed download (no final chunk).
                    raise item
                yield item
                item = await anyio.to_thread.run_sync(pipe.get)
        finally:
            pipe.cancelled.set()

    return chunks()
