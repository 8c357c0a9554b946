"""Meta's Graph API webhooks, for every channel that receives them (WhatsApp, Messenger,
Instagram): the verification handshake, signed POSTs, and spool-before-200 processing.

GET answers the subscription handshake (hub.mode=subscribe, hub.verify_token,
hub.challenge). A POST must carry `X-Hub-Signature-256`, the HMAC-SHA256 of the raw body
with the app secret (compared in constant time; 403 otherwise). Meta gets its 200 only
once the payload's entries (as the channel's `split` minimised them) are on disk; they are
processed after that, one at a time per customer in arrival order, so a crash or a stop
loses nothing: what is left in the spool is processed at the next start.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from earshot.gateway.model import Incoming
from earshot.storage.db import session_scope
from earshot.storage.spool import Spool

log = logging.getLogger("earshot.webhooks.graph")
SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_BODY_BYTES = 3 << 20  # Meta's webhook payloads stay under 3 MB
RETRY_DELAYS = (1.0, 3.0)  # a failed entry is tried again after these pauses

Entry = dict[str, Any]
Split = Callable[[Any], Iterable[Entry]]
Handle = Callable[[Incoming], Awaitable[Any]]


def signature_ok(app_secret: str, body: bytes, header: str) -> bool:
    """True when `header` is "sha256=" + the HMAC-SHA256 of `body` with the app secret."""
    if not app_secret or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header[7:].encode(), expected.encode())


class SpoolProcessor:
    """Acts on stored entries: one at a time per customer, in the order Meta sent them.
    Channels subclass it with `process` (and `release` if their entries differ); `handle`
    hands a message on to the gateway."""

    name = "graph"

    def __init__(
        self,
        handle: Handle,
        db_url: str,
        spool: Spool,
        *,
        release: Callable[..., None] | None = None,
    ) -> None:
        self.handle = handle
        self.db_url, self.spool = db_url, spool
        self._release = release  # forgets a claimed message id (replay after a crash)
        self._order: dict[str, asyncio.Lock] = {}
        self._holders: Counter[str] = Counter()
        self.tasks: set[asyncio.Task[None]] = set()

    async def process(self, entry: Entry) -> None:
        """Act on one stored entry (the channel's part)."""
        raise NotImplementedError

    async def release(self, entry: Entry) -> None:
        """Forget that the gateway claimed this entry's message (before a replay)."""
        mid = (entry.get("message") or {}).get("id")
        if mid and self._release is not None:
            await self._db(self._release, message_id=str(mid))

    def _db(self, fn: Callable[..., Any], /, **kwargs: Any) -> Awaitable[Any]:
        def run() -> Any:
            with session_scope(self.db_url) as session:
                return fn(session, **kwargs)

        return asyncio.to_thread(run)

    def start(self, entry: Entry, path: Path) -> None:
        """Process an entry in the background; its file goes once that finished."""
        key = str(entry.get("customer_key") or "")
        lock = self._order.setdefault(key, asyncio.Lock())
        self._holders[key] += 1
        task = asyncio.create_task(self._run(entry, path, key, lock))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, entry: Entry, path: Path, key: str, lock: asyncio.Lock) -> None:
        try:
            async with lock:  # taken in creation order: asyncio's locks are fair
                await self._process_retrying(entry)
                await asyncio.to_thread(path.unlink, missing_ok=True)
        finally:
            self._holders[key] -= 1
            if not self._holders[key]:  # nobody waits: forget the lock, the map stays small
                del self._holders[key]
                self._order.pop(key, None)

    async def _process_retrying(self, entry: Entry) -> None:
        """Process an entry; after a failure (a database busy under load, ...) release
        its claim and try again, then give up: a poison entry must not block the
        customer's next ones. A rare second answer is accepted over a lost message."""
        for attempt, delay in enumerate((*RETRY_DELAYS, None)):
            try:
                await self.process(entry)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                if delay is None:
                    log.exception(
                        "a %s webhook entry failed %d times; dropped", self.name, attempt + 1
                    )
                    return
                log.warning("a %s webhook entry failed; retrying", self.name, exc_info=True)
            await self._release_claim(entry)
            await asyncio.sleep(delay)

    async def _release_claim(self, entry: Entry) -> None:
        try:
            await self.release(entry)
        except DBAPIError:
            log.warning("database unavailable; a retried or replayed message may be skipped")

    async def replay(self) -> int:
        """Process, oldest first, what a crash or stop left in the spool. A message the
        gateway had claimed before the crash is released first, so it is answered: a rare
        second answer is accepted over a lost message."""
        count = 0
        for path, entry in self.spool.entries():
            await self._release_claim(entry)
            self.start(entry, path)
            count += 1
        if count:
            log.info("replaying %d %s entr(y/ies) stored before the last stop", count, self.name)
        return count

    async def drain(self) -> None:
        """Wait for the entries in progress (tests and shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)


def build_graph_webhook_app(
    *,
    path: str,
    app_secret: str,
    verify_token: str,
    processor: SpoolProcessor,
    split: Split,
) -> Starlette:
    """The ASGI app: GET/POST `path` for Meta, GET /healthz for the supervisor. `split`
    turns a verified payload into spool entries (ValueError etc. for a foreign one: 400)."""

    async def verify(request: Request) -> Response:
        q = request.query_params
        token = q.get("hub.verify_token", "")
        if (
            verify_token
            and q.get("hub.mode") == "subscribe"
            and hmac.compare_digest(token.encode(), verify_token.encode())
        ):
            return PlainTextResponse(q.get("hub.challenge", ""))
        log.warning("webhook verification with a wrong verify token refused")
        return Response(status_code=403)

    return spooling_webhook_app(
        path=path,
        handshake=verify,
        signed=lambda body, headers: signature_ok(
            app_secret, body, headers.get(SIGNATURE_HEADER, "")
        ),
        max_body=MAX_BODY_BYTES,
        processor=processor,
        split=split,
    )


def spooling_webhook_app(
    *,
    path: str,
    handshake: Callable[[Request], Awaitable[Response]],
    signed: Callable[[bytes, Headers], bool],
    max_body: int,
    processor: SpoolProcessor,
    split: Split,
    logger: logging.Logger = log,
) -> Starlette:
    """A webhook's ASGI app (Meta's, X's): GET `path` is the platform's `handshake`; a POST
    of at most `max_body` bytes that is `signed` is split into entries, each on disk before
    the 200 (the platform will not send it again), then processed; GET /healthz for the
    supervisor. 413 for a larger body, 403 unsigned, 400 for a payload `split` refuses."""

    async def receive(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body:
            return Response(status_code=413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body:
                return Response(status_code=413)
        if not signed(bytes(body), request.headers):
            logger.warning("webhook POST with a missing or wrong signature refused")
            return Response(status_code=403)
        try:
            entries = list(split(json.loads(body)))
        except (ValueError, TypeError, AttributeError, KeyError):
            return Response(status_code=400)
        stored = []
        for entry in entries:  # fsynced before the 200: the platform will not send it again
            stored.append((entry, await asyncio.to_thread(processor.spool.put, entry)))
        for entry, where in stored:
            processor.start(entry, where)
        return Response()

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok")

    route = "/" + path.lstrip("/")
    return Starlette(
        routes=[
            Route(route, handshake, methods=["GET"]),
            Route(route, receive, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ]
    )
