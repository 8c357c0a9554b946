"""The WhatsApp webhook: Meta's verification handshake, signed POSTs, and processing.

GET answers the subscription handshake (hub.mode=subscribe, hub.verify_token,
hub.challenge). A POST must carry `X-Hub-Signature-256`, the HMAC-SHA256 of the raw body
with the app secret (compared in constant time; 403 otherwise). WhatsApp gets its 200
only once the payload's messages and statuses are on disk (one spool entry each, typed
text redacted); they are processed after that, so a crash or a stop loses nothing: what
is left in the spool is processed at the next start. Redeliveries are answered once
(the gateway de-duplicates by WhatsApp's message id, durably).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pywa.utils import webhook_updates_validator
from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from earshot.conversations import whatsapp as wa_queries
from earshot.gateway.model import Incoming
from earshot.settings import Settings
from earshot.storage.db import session_scope
from earshot.storage.spool import Spool
from whatsapp import inbound

log = logging.getLogger("earshot.whatsapp.webhook")
SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_BODY_BYTES = 3 << 20  # Meta's webhook payloads stay under 3 MB
RETRY_DELAYS = (1.0, 3.0)  # a failed entry is tried again after these pauses

Handle = Callable[[Incoming], Awaitable[Any]]


def webhook_spool(settings: Settings) -> Spool:
    """Messages and statuses answered with 200 but not processed yet."""
    return Spool(settings.data_dir / "spool" / "whatsapp")


class Processor:
    """Acts on stored entries: a message goes to the gateway (one at a time per customer,
    in the order WhatsApp sent them), a status onto the record of the message it is about."""

    def __init__(
        self,
        handle: Handle,
        db_url: str,
        spool: Spool,
        *,
        release: Callable[..., None] | None = None,
    ) -> None:
        self.handle, self.db_url, self.spool = handle, db_url, spool
        self._release = release  # forgets a claimed message id (replay after a crash)
        self._order: dict[str, asyncio.Lock] = {}
        self._holders: Counter[str] = Counter()
        self.tasks: set[asyncio.Task[None]] = set()

    def _db(self, fn: Callable[..., Any], /, **kwargs: Any) -> Awaitable[Any]:
        def run() -> Any:
            with session_scope(self.db_url) as session:
                return fn(session, **kwargs)

        return asyncio.to_thread(run)

    def start(self, entry: dict[str, Any], path: Path) -> None:
        """Process an entry in the background; its file goes once that finished."""
        key = str(entry.get("customer_key") or "")
        lock = self._order.setdefault(key, asyncio.Lock())
        self._holders[key] += 1
        task = asyncio.create_task(self._run(entry, path, key, lock))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, entry: dict[str, Any], path: Path, key: str, lock: asyncio.Lock) -> None:
        try:
            async with lock:  # taken in creation order: asyncio's locks are fair
                await self._process_retrying(entry)
                await asyncio.to_thread(path.unlink, missing_ok=True)
        finally:
            self._holders[key] -= 1
            if not self._holders[key]:  # nobody waits: forget the lock, the map stays small
                del self._holders[key]
                self._order.pop(key, None)

    async def _process_retrying(self, entry: dict[str, Any]) -> None:
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
                    log.exception("a WhatsApp webhook entry failed %d times; dropped", attempt + 1)
                    return
                log.warning("a WhatsApp webhook entry failed; retrying", exc_info=True)
            await self._release_claim(entry)
            await asyncio.sleep(delay)

    async def _release_claim(self, entry: dict[str, Any]) -> None:
        mid = (entry.get("message") or {}).get("id")
        if mid and self._release is not None:
            try:
                await self._db(self._release, message_id=str(mid))
            except DBAPIError:
                log.warning("database unavailable; a retried message may be skipped")

    async def process(self, entry: dict[str, Any]) -> None:
        if "status" in entry:
            st = inbound.status(entry)
            try:
                await self._db(
                    wa_queries.record_status,
                    message_id=st.message_id,
                    status=st.status,
                    error_code=st.error_code,
                )
            except DBAPIError:
                log.warning("database unavailable; a delivery status was not recorded")
            if st.status == "failed":
                log.info("WhatsApp could not deliver a message (code %s)", st.error_code)
            return
        if "message" not in entry:
            return
        msg = inbound.incoming(entry)
        if entry.get("customer_key"):
            try:  # the customer wrote: their 24-hour window opens (or stays open)
                await self._db(wa_queries.note_inbound, customer_key=entry["customer_key"])
            except DBAPIError:
                log.warning("database unavailable; the service window was not updated")
        await self.handle(msg)

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
            log.info("replaying %d WhatsApp entr(y/ies) stored before the last stop", count)
        return count

    async def drain(self) -> None:
        """Wait for the entries in progress (tests and shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)


def build_webhook_app(
    *,
    path: str,
    app_secret: str,
    verify_token: str,
    processor: Processor,
    key_of: Callable[[str], str],
) -> Starlette:
    """The ASGI app: GET/POST `path` for Meta, GET /healthz for the supervisor."""

    async def verify(request: Request) -> Response:
        q = request.query_params
        token = q.get("hub.verify_token", "")
        if q.get("hub.mode") == "subscribe" and hmac.compare_digest(
            token.encode(), verify_token.encode()
        ):
            return PlainTextResponse(q.get("hub.challenge", ""))
        log.warning("webhook verification with a wrong verify token refused")
        return Response(status_code=403)

    async def receive(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return Response(status_code=413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return Response(status_code=413)
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not signature.startswith("sha256=") or not webhook_updates_validator(
            app_secret, bytes(body), signature
        ):
            log.warning("webhook POST with a missing or wrong signature refused")
            return Response(status_code=403)
        try:
            entries = list(inbound.split(json.loads(body), key_of))
        except (ValueError, TypeError, AttributeError, KeyError):
            return Response(status_code=400)
        stored = []
        for entry in entries:  # fsynced before the 200: WhatsApp will not send it again
            stored.append((entry, await asyncio.to_thread(processor.spool.put, entry)))
        for entry, where in stored:
            processor.start(entry, where)
        return Response()

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok")

    route = "/" + path.lstrip("/")
    return Starlette(
        routes=[
            Route(route, verify, methods=["GET"]),
            Route(route, receive, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ]
    )
