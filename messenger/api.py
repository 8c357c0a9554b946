"""The Messenger Platform's Send API over plain httpx: POST /v{version}/me/messages with the
Page access token, retries on rate limits, no retry on permanent refusals.

No maintained Python client exists for the Messenger Platform (pymessenger and
fbmessenger stopped in 2016-2019; pywa is WhatsApp-only), and the Send API is one
endpoint, so a small httpx client it is. The Page access token goes in the Authorization
header (the Graph API accepts it there), so it never appears in a logged URL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

log = logging.getLogger("earshot.messenger.api")
GRAPH_ROOT = "https://graph.facebook.com"
# Rate limits: application (4), user (17), page (32), Messenger's own (613); HTTP 429.
RATE_LIMITED = frozenset({4, 17, 32, 613})
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0)
# Outside the standard messaging window: (code 10, subcode 2018278), (code 10, 2534022).
WINDOW_SUBCODES = frozenset({2018278, 2534022})


class SendFailed(Exception):
    """Meta refused a message for good (or kept refusing it): reported, not retried."""

    def __init__(
        self, code: int, message: str, *, subcode: int | None = None, permanent: bool = True
    ) -> None:
        super().__init__(f"({code}/{subcode}) {message}")
        self.code, self.subcode, self.permanent = code, subcode, permanent

    @property
    def window_closed(self) -> bool:
        """The customer's 24-hour window closed (or the tag is not allowed)."""
        return self.code == 10 and self.subcode in WINDOW_SUBCODES


class SendApi:
    """One Page's sender (Messenger, and Instagram through the Page's connected account)."""

    def __init__(
        self,
        *,
        token: str,
        base_url: str = GRAPH_ROOT,
        api_version: str = "23.0",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        timeout: float = 15.0,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/v{api_version.lstrip('v')}/me/messages"
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=3.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            headers={"Authorization": f"Bearer {token}"},
        )
        self._sleep = sleep

    async def send(
        self,
        recipient: str,
        message: dict[str, Any],
        *,
        messaging_type: str = "RESPONSE",
        tag: str | None = None,
    ) -> str:
        """Send one message; returns its message id (mid)."""
        body: dict[str, Any] = {
            "recipient": {"id": recipient},
            "messaging_type": messaging_type,
            "message": message,
        }
        if tag:
            body["tag"] = tag
        for attempt, delay in enumerate((*RETRY_DELAYS, None)):
            try:
                resp = await self._http.post(self.url, json=body)
            except httpx.TransportError as exc:
                # The message may have gone out; a rare duplicate beats a loss.
                if delay is None:
                    raise SendFailed(0, type(exc).__name__, permanent=False) from None
                log.warning("Messenger unreachable (%s); retrying", type(exc).__name__)
            else:
                if resp.status_code == 200:
                    return str(resp.json()["message_id"])
                code, subcode, text = _error(resp)
                retry = code in RATE_LIMITED or resp.status_code == 429 or resp.status_code >= 500
                if not retry:
                    raise SendFailed(code, text, subcode=subcode)
                if delay is None:
                    raise SendFailed(code, text, subcode=subcode, permanent=False)
                log.info("Messenger rate limited (%s); retry %d in %.2fs", code, attempt + 1, delay)
            await self._sleep(delay)
        raise AssertionError("unreachable")

    async def action(self, recipient: str, action: str = "typing_on") -> None:
        """A sender action ("typing_on", "mark_seen"): cosmetic, sent once, never retried."""
        body = {"recipient": {"id": recipient}, "sender_action": action}
        resp = await self._http.post(self.url, json=body)
        if resp.status_code != 200:
            code, subcode, text = _error(resp)
            raise SendFailed(code, text, subcode=subcode)

    async def aclose(self) -> None:
        await self._http.aclose()


def _error(resp: httpx.Response) -> tuple[int, int | None, str]:
    """(code, subcode, message) of a Graph API error response."""
    try:
        err = resp.json().get("error") or {}
    except ValueError:
        return resp.status_code, None, resp.text[:200]
    sub = err.get("error_subcode")
    return (
        int(err.get("code") or resp.status_code),
        int(sub) if sub else None,
        str(err.get("message")),
    )
