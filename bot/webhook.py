"""Webhook mode: a small Starlette server that checks Telegram's secret header in
constant time, limits body size, and hands updates to the PTB application.

Telegram gets its 200 only once the update is on disk (a local spool, typed personal
details redacted): an update whose processing a crash or a stop cut short is processed
again at the next start, so nothing Telegram delivered is lost.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from telegram import Update
from telegram.error import NetworkError, RetryAfter
from telegram.ext import Application

from earshot.conversations import queries as conversations
from earshot.privacy.identity import user_key
from earshot.privacy.redaction import redact
from earshot.settings import Settings
from earshot.storage.db import session_scope
from earshot.storage.spool import Spool

log = logging.getLogger("earshot.bot.webhook")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
MAX_BODY_BYTES = 1 << 20  # Telegram's updates are a few KB; anything this big is not one.


def _redacted(value: Any) -> Any:
    """The update as stored and processed: customers' texts and captions redacted."""
    if isinstance(value, dict):
        return {
            k: redact(v) if k in ("text", "caption") and isinstance(v, str) else _redacted(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def update_spool(settings: Settings) -> Spool:
    """Updates answered with 200 but not processed yet (webhook mode)."""
    return Spool(settings.data_dir / "spool" / "updates")


async def _process(
    application: Application[Any, Any, Any, Any, Any, Any], update: Update, path: Path
) -> None:
    """Process one stored update; its file goes only once processing finished (handler
    errors included: they are answered and logged). Cancelled at shutdown: it stays."""
    await application.update_processor.process_update(update, application.process_update(update))
    await asyncio.to_thread(path.unlink, missing_ok=True)


def build_webhook_app(
    application: Application[Any, Any, Any, Any, Any, Any],
    secret: str,
    path: str,
    spool: Spool,
    key_of: Callable[[int], str],
) -> Starlette:
    """The ASGI app: POST `path` takes updates, GET /healthz says the bot is up.

    `key_of` turns a Telegram user id into the customer key the spool entry is filed
    under, so erasure finds it.
    """

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
            data = _redacted(json.loads(body))
            update = Update.de_json(data, application.bot)
        except (ValueError, TypeError, KeyError, AttributeError):
            return Response(status_code=400)
        if update is not None:
            user = update.effective_user
            entry = {"customer_key": key_of(user.id) if user else None, "update": data}
            stored = await asyncio.to_thread(spool.put, entry)  # fsynced before the 200
            application.create_task(_process(application, update, stored), update=update)
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


def _release_claim(db_url: str, update_id: int, bot_id: int) -> None:
    with session_scope(db_url) as session:
        conversations.release_update(session, update_id=update_id, bot_id=bot_id)


async def replay_stored_updates(
    application: Application[Any, Any, Any, Any, Any, Any], spool: Spool, db_url: str
) -> int:
    """Process again, oldest first, the updates a crash or stop left unprocessed.

    One may have been claimed (deduplicated) before the crash; the claim is released so
    it is processed: a rare second answer is accepted over a lost message.
    """
    count = 0
    for path, entry in spool.entries():
        data = entry.get("update")
        update = Update.de_json(data, application.bot) if isinstance(data, dict) else None
        if update is None:
            path.unlink(missing_ok=True)
            continue
        await asyncio.to_thread(_release_claim, db_url, update.update_id, application.bot.id)
        application.create_task(_process(application, update, path), update=update)
        count += 1
    if count:
        log.info("replaying %d update(s) stored before the last stop", count)
    return count


async def serve(application: Application[Any, Any, Any, Any, Any, Any], settings: Settings) -> None:
    """Run the bot in webhook mode until the server is stopped (SIGINT/SIGTERM).

    A stop lets updates in progress finish (PTB awaits its tasks in `stop()`); give the
    process a grace period longer than Rasa's timeout (docker-compose.yml does).
    """
    from urllib.parse import urlsplit

    assert settings.telegram_webhook_url and settings.telegram_webhook_secret
    secret = settings.telegram_webhook_secret.get_secret_value()
    path = urlsplit(settings.telegram_webhook_url).path or "/"
    spool = update_spool(settings)
    earshot_secret = settings.earshot_secret.get_secret_value()
    server = uvicorn.Server(
        uvicorn.Config(
            build_webhook_app(
                application,
                secret,
                path,
                spool,
                lambda uid: user_key(earshot_secret, "telegram", uid),
            ),
            host=settings.telegram_webhook_listen,
            port=settings.telegram_webhook_port,
            log_level="warning",
            limit_concurrency=256,
        )
    )
    async with application:  # initialize() and shutdown(); the hooks are ours to call
        if application.post_init:
            await application.post_init(application)
        await application.start()
        # Before new updates are taken in: what was stored first is answered first.
        await replay_stored_updates(application, spool, settings.db_url)
        await _set_webhook(application, settings, secret)
        try:
            await server.serve()
        finally:
            await application.stop()
            if application.post_shutdown:
                await application.post_shutdown(application)
