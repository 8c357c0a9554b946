"""The X Account Activity webhook: the CRC challenge, signed POSTs, and processing.

As X documents it ("Securing webhooks",
developer.x.com/en/docs/x-api/enterprise/account-activity-api/guides/securing-webhooks, and
docs.x.com/x-api/webhooks/introduction): a GET with `crc_token` is answered with JSON
`{"response_token": "sha256=" + base64(HMAC-SHA256(consumer secret, crc_token))}` (at
registration, then about hourly; a webhook that fails it stops getting events); every POST
carries `x-twitter-webhooks-signature`, "sha256=" + base64(HMAC-SHA256(consumer secret,
raw body)), compared in constant time here (403 otherwise).

X gets its 200 only once the payload's DMs are on disk (one spool entry each, typed text
redacted); they are processed after that, so a crash or a stop loses nothing: what is left
in the spool is processed at the next start. A redelivered event is answered once (the
gateway de-duplicates by the DM event id, durably).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from earshot.settings import Settings
from earshot.storage.spool import Spool
from earshot.webhooks.graph import SpoolProcessor, spooling_webhook_app
from xdm import inbound

log = logging.getLogger("earshot.xdm.webhook")
SIGNATURE_HEADER = "x-twitter-webhooks-signature"
MAX_BODY_BYTES = 1 << 20  # DM events are small; a megabyte is plenty


def sign(consumer_secret: str, message: bytes) -> str:
    """X's "sha256=<base64 HMAC-SHA256>" of `message` keyed with the consumer secret."""
    digest = hmac.new(consumer_secret.encode(), message, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def crc_response(consumer_secret: str, crc_token: str) -> dict[str, str]:
    """The answer to X's challenge-response check."""
    return {"response_token": sign(consumer_secret, crc_token.encode())}


def valid_signature(consumer_secret: str, body: bytes, header: str) -> bool:
    """True when `header` is X's signature of `body` (constant-time compare)."""
    return hmac.compare_digest(header.encode(), sign(consumer_secret, body).encode())


def webhook_spool(settings: Settings) -> Spool:
    """DMs answered with 200 but not processed yet."""
    return Spool(settings.data_dir / "spool" / "x")


class Processor(SpoolProcessor):
    """Hands stored DMs to the gateway, one at a time per customer, in the order X sent
    them (the spool, ordering, retries and replay are the Graph webhooks' own)."""

    name = "X"

    async def process(self, entry: dict[str, Any]) -> None:
        await self.handle(inbound.incoming(entry))


def build_webhook_app(
    *,
    path: str,
    consumer_secret: str,
    our_user_id: str,
    processor: Processor,
    key_of: Callable[[str], str],
) -> Starlette:
    """The ASGI app: GET (CRC) and POST (events) on `path`, GET /healthz."""

    async def crc(request: Request) -> Response:
        token = request.query_params.get("crc_token", "")
        if not token:
            return Response(status_code=400)
        return JSONResponse(crc_response(consumer_secret, token))

    return spooling_webhook_app(
        path=path,
        handshake=crc,
        signed=lambda body, headers: valid_signature(
            consumer_secret, body, headers.get(SIGNATURE_HEADER, "")
        ),
        max_body=MAX_BODY_BYTES,
        processor=processor,
        split=lambda payload: inbound.split(payload, our_user_id=our_user_id, key_of=key_of),
        logger=log,
    )
