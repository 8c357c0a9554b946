"""A small threaded HTTP server the fakes (webhook receiver, Slack, GitHub, Jira, the
WhatsApp, Messenger and X APIs) are built on: keep-alive with Nagle off (else ~40 ms per
response), each request handed to the fake's `handle`."""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar

Reply = tuple[int, dict[str, str], bytes]
_F = TypeVar("_F", bound="FakeHTTP")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


def json_reply(status: int, doc: Any, headers: dict[str, str] | None = None) -> Reply:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(doc).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeHTTP) -> None:
        self.fake = fake
        self.request_queue_size = fake.backlog  # read when the socket starts listening
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            return  # clients dropping keep-alive connections is normal
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
        )
        fake: FakeHTTP = self.server.fake  # type: ignore[attr-defined]
        try:
            status, headers, out = fake.handle(req)
        except Exception as exc:  # a bug in a fake shows up as a 500 with the reason
            status, headers, out = 500, {"Content-Type": "text/plain"}, repr(exc).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeHTTP:
    """Base of the fakes: `start()`/`stop()` (or `with`), `url`, `handle(request)`."""

    backlog = 5  # connections waiting to be accepted (more for fakes of busy senders)
    thread_name: str | None = None

    def __init__(self) -> None:
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def handle(self, request: Request) -> Reply:
        raise NotImplementedError

    def start(self: _F) -> _F:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=self.thread_name,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self: _F) -> _F:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"
