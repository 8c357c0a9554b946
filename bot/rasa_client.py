"""A small async client for Rasa's `earshot` channel, shared by the bot and terminal chat."""

from __future__ import annotations

from typing import Any

import httpx

TOKEN_HEADER = "X-Earshot-Token"  # noqa: S105 - a header name


class RasaUnavailable(Exception):
    """Rasa did not answer (down, restarting, or timed out)."""


class RasaClient:
    """Posts a customer's message to Rasa and returns the messages Rasa answered with."""

    def __init__(self, base_url: str, timeout: float = 20.0, token: str | None = None) -> None:
        self._token = token
        # Rasa's channel and API check the shared secret in this header (never ?token=).
        headers = {TOKEN_HEADER: token} if token else {}
        self._url = base_url.rstrip("/") + "/webhooks/earshot/webhook"
        self._base = base_url.rstrip("/")
        # One pooled client: connection reuse saves a TCP handshake per turn.
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=3.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            headers=headers,
        )

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        body = {"sender": sender, "message": text, "metadata": metadata}
        try:
            resp = await self._http.post(self._url, json=body)
        except httpx.HTTPError as exc:
            raise RasaUnavailable(str(exc) or type(exc).__name__) from exc
        if resp.status_code >= 500:
            raise RasaUnavailable(f"Rasa answered {resp.status_code}")
        resp.raise_for_status()
        data = resp.json()
        return data if isinstance(data, list) else []

    async def trigger_intent(
        self, sender: str, intent: str, entities: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Trigger an intent in a conversation (proactive messages); returns its messages."""
        url = f"{self._base}/conversations/{sender}/trigger_intent"
        try:
            resp = await self._http.post(url, json={"name": intent, "entities": entities})
        except httpx.HTTPError as exc:
            raise RasaUnavailable(str(exc) or type(exc).__name__) from exc
        if resp.status_code >= 500:
            raise RasaUnavailable(f"Rasa answered {resp.status_code}")
        resp.raise_for_status()
        messages = resp.json().get("messages") or []
        return messages if isinstance(messages, list) else []

    async def healthy(self) -> bool:
        try:
            resp = await self._http.get(self._base + "/", timeout=2.0)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    async def aclose(self) -> None:
        await self._http.aclose()
