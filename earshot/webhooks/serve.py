"""Run a channel's webhook process: replay what the last run left, serve, send meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import uvicorn

from earshot.gateway import outreach
from earshot.gateway.model import Channel
from earshot.gateway.service import Gateway


class Replays(Protocol):
    async def replay(self) -> int: ...


async def serve_webhook(
    asgi: Any,
    *,
    host: str,
    port: int,
    processor: Replays,
    gateway: Gateway,
    channels: Iterable[Channel],
    aclose: Callable[[], Awaitable[None]],
) -> None:
    """Run until stopped (SIGINT/SIGTERM): first what the last run left in the spool,
    then new webhooks; the background loop sends campaign asks and notices meanwhile."""
    server = uvicorn.Server(
        uvicorn.Config(asgi, host=host, port=port, log_level="warning", limit_concurrency=512)
    )
    await processor.replay()
    worker = asyncio.create_task(outreach.run_forever(gateway, list(channels)))
    try:
        await server.serve()
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        await aclose()
