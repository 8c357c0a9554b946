"""Sending through the WhatsApp Cloud API with pywa: the per-number rate limit, retries on
rate-limit errors, and no retry on permanent ones.

pywa fixes the Graph API root at https://graph.facebook.com; when WHATSAPP_API_BASE_URL
points elsewhere (the local fake in tests and the benchmark) a transport mounted on that
root forwards its requests there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from aiolimiter import AsyncLimiter
from pywa.errors import WhatsAppError
from pywa.types.templates import TemplateLanguage
from pywa_async import WhatsApp
from pywa_async.types import Button, Section, SectionList, SectionRow, URLButton

from whatsapp.render import Out

log = logging.getLogger("earshot.whatsapp.api")
GRAPH_ROOT = "https://graph.facebook.com"
# Rate limits: pair rate (131056), throughput (130429), API calls (80007), plain HTTP 429.
RATE_LIMITED = frozenset({130429, 131056, 80007, 429, 4})
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0)


class SendFailed(Exception):
    """WhatsApp refused a message for good (or kept refusing it): reported, not retried."""

    def __init__(self, code: int, message: str, *, permanent: bool) -> None:
        super().__init__(f"({code}) {message}")
        self.code, self.permanent = code, permanent


class _Forward(httpx.AsyncBaseTransport):
    """Send requests addressed to graph.facebook.com to `base` instead."""

    def __init__(self, base: str) -> None:
        self._base = httpx.URL(base)
        self._inner = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(
            scheme=self._base.scheme, host=self._base.host, port=self._base.port
        )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def http_client(base_url: str, timeout: float = 15.0) -> httpx.AsyncClient:
    """The pooled client pywa sends with; forwards to `base_url` unless it is Meta's own."""
    base = base_url.rstrip("/")
    mounts = {} if base == GRAPH_ROOT else {GRAPH_ROOT: _Forward(base)}
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=3.0),
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        mounts=mounts,
    )


class CloudApi:
    """One business number's sender: at most `per_second` messages a second."""

    def __init__(
        self,
        *,
        phone_number_id: str,
        token: str,
        base_url: str = GRAPH_ROOT,
        api_version: str = "23.0",
        per_second: float = 80.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = http_client(base_url)
        self.client = WhatsApp(
            phone_id=phone_number_id, token=token, session=self._http, api_version=api_version
        )
        # Evenly paced, no burst: a full bucket's burst on top of the steady rate would
        # put up to twice the limit into one second, and WhatsApp refuses that (130429).
        self._limiter = AsyncLimiter(1, 1.0 / per_second) if per_second > 0 else None
        self._sleep = sleep

    async def send(self, to: str, out: Out) -> str:
        """Send one message; returns WhatsApp's message id (wamid)."""
        for attempt, delay in enumerate((*RETRY_DELAYS, None)):
            if self._limiter is not None:
                await self._limiter.acquire()
            try:
                return await self._send_once(to, out)
            except WhatsAppError as exc:
                if exc.code not in RATE_LIMITED:
                    raise SendFailed(exc.code, exc.message, permanent=True) from None
                if delay is None:
                    raise SendFailed(exc.code, exc.message, permanent=False) from None
                log.info("rate limited (%s); retry %d in %.2fs", exc.code, attempt + 1, delay)
            except httpx.TransportError as exc:
                # The message may have gone out; a rare duplicate beats a loss.
                if delay is None:
                    raise SendFailed(0, type(exc).__name__, permanent=False) from None
                log.warning("WhatsApp unreachable (%s); retrying", type(exc).__name__)
            await self._sleep(delay)
        raise AssertionError("unreachable")

    async def _send_once(self, to: str, out: Out) -> str:
        wa = self.client
        sent: Any
        if out.kind == "text":
            sent = await wa.send_message(to=to, text=out.text)
        elif out.kind == "buttons":
            buttons = [Button(title=r.title, callback_data=r.id) for r in out.rows]
            sent = await wa.send_message(to=to, text=out.text, buttons=buttons)
        elif out.kind == "list":
            rows = [
                SectionRow(title=r.title, callback_data=r.id, description=r.description)
                for r in out.rows
            ]
            section = Section(title=str(out.title or "")[:24], rows=rows)
            sent = await wa.send_message(
                to=to,
                text=out.text,
                buttons=SectionList(button_title=str(out.title), sections=[section]),
            )
        elif out.kind == "cta_url":
            sent = await wa.send_message(
                to=to, text=out.text, buttons=URLButton(title=str(out.title), url=str(out.url))
            )
        elif out.kind == "image":
            sent = await wa.send_image(to=to, image=str(out.url))
        elif out.kind == "template":
            sent = await wa.send_template(
                to=to, name=str(out.title), language=TemplateLanguage(str(out.language))
            )
        else:
            raise ValueError(f"unknown message kind {out.kind!r}")
        return str(sent.id)

    async def aclose(self) -> None:
        await self._http.aclose()
