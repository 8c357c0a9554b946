"""The one client of Rasa's `earshot` channel, shared by every channel's adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

TOKEN_HEADER = "X-Earshot-Token"  # noqa: S105 - a header name


class RasaUnavailable(Exception):
    """Rasa did not answer (down, restarting, timed out, or failed the turn)."""


class RasaClient:
    """Posts a customer's message to Rasa and returns the messages Rasa answered with.

    `pooled` keeps one connection pool (long-running processes on one event loop: the
    bot); unpooled opens a client per call (the web chat, whose test client runs each
    request on an event loop of its own, where a pool would be tied to the first loop).
    """

    def __init__(
        self,
        base_url: str,
        timeout: float = 20.0,
        token: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        pooled: bool = True,
    ) -> None:
        # Rasa's channel and API check the shared secret in this header (never ?token=).
        self._headers = {TOKEN_HEADER: token} if token else {}
        self._base = base_url.rstrip("/")
        self._url = self._base + "/webhooks/earshot/webhook"
        self._timeout = httpx.Timeout(timeout, connect=3.0)
        self.transport = transport
        self._pooled = pooled
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self._timeout,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            headers=self._headers,
            transport=self.transport,
        )

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[httpx.AsyncClient]:
        if not self._pooled:
            async with self._client() as client:
                yield client
            return
        if self._http is None:  # one pooled client: connection reuse saves a handshake
            self._http = self._client()
        yield self._http

    async def _post(self, url: str, body: dict[str, Any]) -> Any:
        async with self._session() as http:
            try:
                resp = await http.post(url, json=body)
            except httpx.HTTPError as exc:
                raise RasaUnavailable(str(exc) or type(exc).__name__) from exc
        if resp.status_code >= 400:
            # 5xx: down or a failed custom action; 4xx: a wrong token or route. Either way
            # the message is kept, not lost, and answered once Rasa is right again.
            raise RasaUnavailable(f"Rasa answered {resp.status_code}")
        try:
            return resp.json()
        except ValueError as exc:
            raise RasaUnavailable("Rasa answered with something other than JSON") from exc

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """One customer message; Rasa's answer messages."""
        data = await self._post(
            self._url, {"sender": sender, "message": text, "metadata": metadata}
        )
        return data if isinstance(data, list) else []

    async def trigger_intent(
        self, sender: str, intent: str, entities: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Trigger an intent in a conversation (proactive messages); returns its messages."""
        url = f"{self._base}/conversations/{sender}/trigger_intent"
        data = await self._post(url, {"name": intent, "entities": entities})
        messages = data.get("messages") if isinstance(data, dict) else None
        return messages if isinstance(messages, list) else []

    async def healthy(self) -> bool:
        async with self._session() as http:
            try:
                resp = await http.get(self._base + "/", timeout=2.0)
            except httpx.HTTPError:
                return False
        return resp.status_code == 200

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
