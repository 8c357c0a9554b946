"""Sending X direct messages: v1.1 `POST direct_messages/events/new`, signed with OAuth 1.0a.

Why v1.1: buttons matter (service votes, the feedback form, erasure choices), and only the
v1.1 endpoint takes a Quick Reply; X API v2's `POST /2/dm_conversations/with/:participant_id
/messages` takes `text` and one media attachment, nothing else
(developer.x.com/en/docs/x-api/direct-messages/manage/api-reference/post-dm_conversations-
with-participant_id-messages). v1.1 endpoints want OAuth 1.0a user context ("Requires
authentication? Yes (user context only)"), so requests are signed with the app's consumer
key and secret and the account's access token and secret (oauthlib; a JSON body is not part
of the signature, as X expects).

Errors come in X's shape, `{"errors": [{"code": 349, "message": "..."}]}`. A 429 (code 88,
rate limit exceeded) is retried once the window resets (`x-rate-limit-reset`, epoch
seconds), unless that is further off than `max_wait_s`; 5xx and network errors are retried
with a short backoff; everything else (349 "You cannot send messages to this user", 150,
401, 400s of the payload) is permanent and raised at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from oauthlib.oauth1 import Client as OAuth1

log = logging.getLogger("earshot.xdm.api")
DEFAULT_BASE_URL = "https://api.x.com"
SEND_PATH = "/1.1/direct_messages/events/new.json"
RETRY_DELAYS = (1.0, 2.0, 4.0)  # server errors and network failures
RATE_LIMIT_RETRIES = 3


class SendFailed(Exception):
    """X refused a message for good (or kept refusing it): reported, not retried."""

    def __init__(self, code: int, message: str, *, status: int, permanent: bool) -> None:
        super().__init__(f"({code}) {message}")
        self.code, self.status, self.permanent = code, status, permanent


def _error(resp: httpx.Response) -> tuple[int, str]:
    """X's first error code and message (the HTTP status when the body has none)."""
    try:
        errors = resp.json().get("errors") or []
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        return int(first.get("code") or resp.status_code), str(first.get("message") or "")
    except (ValueError, AttributeError, TypeError):
        return resp.status_code, resp.text[:200]


class DmApi:
    """One X account's DM sender."""

    def __init__(
        self,
        *,
        consumer_key: str,
        consumer_secret: str,
        access_token: str,
        access_token_secret: str,
        base_url: str = DEFAULT_BASE_URL,
        max_wait_s: float = 900.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._oauth = OAuth1(
            consumer_key,
            client_secret=consumer_secret,
            resource_owner_key=access_token,
            resource_owner_secret=access_token_secret,
        )
        self.url = base_url.rstrip("/") + SEND_PATH
        self.max_wait_s = max_wait_s
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(15.0, connect=3.0),
            transport=transport,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )
        self._sleep, self._clock = sleep, clock

    def _headers(self) -> dict[str, str]:
        # A fresh nonce and timestamp each attempt; the JSON body is not signed.
        _, headers, _ = self._oauth.sign(self.url, "POST")
        return {**headers, "Content-Type": "application/json"}

    async def send(self, recipient_id: str, message_data: dict[str, Any]) -> str:
        """Send one DM; returns X's event id."""
        body = {
            "event": {
                "type": "message_create",
                "message_create": {
                    "target": {"recipient_id": recipient_id},
                    "message_data": message_data,
                },
            }
        }
        limited = failed = 0
        while True:
            try:
                resp = await self._http.post(self.url, json=body, headers=self._headers())
            except httpx.TransportError as exc:
                # The message may have gone out; a rare duplicate beats a loss.
                if failed >= len(RETRY_DELAYS):
                    raise SendFailed(0, type(exc).__name__, status=0, permanent=False) from None
                log.warning("X unreachable (%s); retrying", type(exc).__name__)
                await self._sleep(RETRY_DELAYS[failed])
                failed += 1
                continue
            if resp.status_code == 200:
                return str(resp.json()["event"]["id"])
            code, message = _error(resp)
            if resp.status_code == 429:
                wait = self._reset_wait(resp)
                if limited >= RATE_LIMIT_RETRIES or wait > self.max_wait_s:
                    raise SendFailed(code, message, status=429, permanent=False)
                log.info("X rate limit (%s); retrying in %.0fs", code, wait)
                await self._sleep(wait)
                limited += 1
                continue
            if resp.status_code >= 500 and failed < len(RETRY_DELAYS):
                log.warning("X answered %s; retrying", resp.status_code)
                await self._sleep(RETRY_DELAYS[failed])
                failed += 1
                continue
            raise SendFailed(code, message, status=resp.status_code, permanent=True)

    def _reset_wait(self, resp: httpx.Response) -> float:
        """Seconds until the rate-limit window resets (at least 1, 60 if X does not say)."""
        reset = resp.headers.get("x-rate-limit-reset", "")
        try:
            return max(1.0, float(reset) - self._clock())
        except ValueError:
            return 60.0

    async def aclose(self) -> None:
        await self._http.aclose()
