"""Webhook mode: a small Starlette server that checks Telegram's secret header in
constant time, limits body size, and hands updates to the PTB application."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from telegram import Update
from telegram.error import NetworkError, RetryAfter
from telegram.ext import Application

from earshot.settings import Settings

log = logging.getLogger("earshot.bot.webhook")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
MAX_BODY_BYTES = 1 << 20  # Telegram's updates are a few KB; anything this big is not one.


def build_webhook_app(
    application: Application[Any, Any, Any, Any, Any, Any], secret: str, path: str
) -> Starlette:
    """The ASGI app: POST `path` takes updates, GET /healthz says the bot is up."""

    async def telegram(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            log.warning("webhook request with a missing or wrong secret token rejected")
            return Response(status_code=403)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return Response(status_code=413)
        try:
            update = Update.de_json(json.loads(body), application.bot)
        except (ValueError, TypeError, KeyError):
            return Response(status_code=400)
        if update is not None:
            await application.update_queue.put(update)
        return Response()

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/" + path.lstrip("/"), telegram, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ]
    )


async def _set_webhook(
    application: Application[Any, Any, Any, Any, Any, Any], settings: Settings, secret: str
) -> None:
    assert settings.telegram_webhook_url
    delay = 1.0
    while True:  # a transient failure at start-up must not exit the bot
        try:
            await application.bot.set_webhook(
                url=settings.telegram_webhook_url,
                secret_token=secret,
                allowed_updates=Update.ALL_TYPES,
            )
            return
        except RetryAfter as exc:
            await asyncio.sleep(float(exc.retry_after if isinstance(exc.retry_after, int) else 1))
        except NetworkError:
            log.warning("setWebhook failed; retrying in %.0fs", delay, exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)


async def serve(application: Application[Any, Any, Any, Any, Any, Any], settings: Settings) -> None:
    """Run the bot in webhook mode until the server is stopped (SIGINT/SIGTERM)."""
    from urllib.parse import urlsplit

    assert settings.telegram_webhook_url and settings.telegram_webhook_secret
    secret = settings.telegram_webhook_secret.get_secret_value()
    path = urlsplit(settings.telegram_webhook_url).path or "/"
    server = uvicorn.Server(
        uvicorn.Config(
            build_webhook_app(application, secret, path),
            host=settings.telegram_webhook_listen,
            port=settings.telegram_webhook_port,
            log_level="warning",
            limit_concurrency=256,
        )
    )
    async with application:  # initialize() and shutdown(); the hooks are ours to call
        if application.post_init:
            await application.post_init(application)
        await _set_webhook(application, settings, secret)
        await application.start()
        try:
            await server.serve()
        finally:
            await application.stop()
            if application.post_shutdown:
                await application.post_shutdown(application)
