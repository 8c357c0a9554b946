"""Rasa input channel for Earshot's own front ends (Telegram bot, terminal, web chat).

Unlike Rasa's REST channel it
- passes request metadata on, so actions see the channel, language and chat type;
- answers 503 instead of a silent empty 200 when the turn cannot be processed (the
  action server is down, or the tracker store fails), so the front end can keep the
  message and replay it later instead of losing it.
Replies come back in the HTTP response, as with the REST channel. Building the channel
installs Earshot's replacements of Rasa internals (addons/patches.py).
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import sqlalchemy
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from addons.patches import (
    POOL_KEEPALIVE_S,
    TURN,
    Turn,
    close_pooled_sessions,
    install_patches,
    token_ok,
    unauthorized,
)

logger = logging.getLogger(__name__)

HEALTH_TTL_S = 0.5


class EarshotInput(RestInput):
    """POST /webhooks/earshot/webhook {"sender", "message", "metadata"}."""

    def __init__(self) -> None:
        self._healthy_until = 0.0
        self._session: aiohttp.ClientSession | None = None
        install_patches()

    @classmethod
    def name(cls) -> str:
        return "earshot"

    def get_metadata(self, request: Request) -> dict[str, Any] | None:
        body = request.json or {}
        metadata = body.get("metadata")
        return metadata if isinstance(metadata, dict) else None

    async def _actions_healthy(self, request: Request) -> bool:
        """Check the action server before taking a turn that may need it (cached 1 s)."""
        now = time.monotonic()
        if now < self._healthy_until:
            return True
        endpoint = getattr(request.app.ctx.agent, "action_endpoint", None)
        url = getattr(endpoint, "url", None)
        if not url:
            return True
        health = url.rsplit("/webhook", 1)[0] + "/health"
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=2),
                connector=aiohttp.TCPConnector(keepalive_timeout=POOL_KEEPALIVE_S),
            )
        problem = ""
        for _ in range(2):  # once more on a fresh connection if a kept-alive one was closing
            try:
                async with self._session.get(health) as resp:
                    if resp.status == 200:
                        self._healthy_until = now + HEALTH_TTL_S
                        return True
                    problem = f"answered {resp.status}"
                    break
            except aiohttp.ServerDisconnectedError as exc:
                problem = repr(exc)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                problem = repr(exc)
                break
        logger.warning("action server health check failed (%s) at %s", problem, health)
        return False

    @staticmethod
    def _tracker_store_healthy(request: Request) -> bool:
        """Rasa's FailSafeTrackerStore turns a database error into an empty conversation;
        check the database first so a turn is never taken without its history."""
        store = getattr(request.app.ctx.agent, "tracker_store", None)
        engine = getattr(getattr(store, "_tracker_store", store), "engine", None)
        if engine is None:
            return True
        try:
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text("SELECT 1"))
        except Exception:
            logger.warning("tracker store unavailable; asking the front end to keep the message")
            return False
        return True

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("earshot_webhook", __name__)

        @bp.listener("after_server_stop")
        async def close_pools(*_: Any) -> None:
            await close_pooled_sessions()

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not token_ok(request.headers):
                return unauthorized()
            sender_id = await self._extract_sender(request)
            text = self._extract_message(request)
            if not sender_id or text is None:
                return response.json({"error": "sender and message are required"}, status=400)
            if not await self._actions_healthy(request):
                return response.json({"error": "action server unavailable"}, status=503)
            if not self._tracker_store_healthy(request):
                return response.json({"error": "tracker store unavailable"}, status=503)
            collector = CollectingOutputChannel()
            turn = Turn()
            token = TURN.set(turn)
            try:
                await on_new_message(
                    UserMessage(
                        text,
                        collector,
                        sender_id,
                        input_channel=self.name(),
                        metadata=self.get_metadata(request),
                    )
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("could not process a message from the earshot channel")
                return response.json({"error": "message not processed"}, status=503)
            finally:
                TURN.reset(token)
            if turn.failed_actions:
                # Rasa swallows a failed custom action; the turn is incomplete, so let the
                # front end keep the message and replay it when the action server is back.
                self._healthy_until = 0.0
                logger.warning("custom action(s) failed: %s", ", ".join(turn.failed_actions))
                return response.json({"error": "action server unavailable"}, status=503)
            return response.json(collector.messages)

        return bp
