"""What the WhatsApp and Messenger adapter tests share (both are Meta Graph API channels):
choices to lay out, senders that never really sleep, and the adapter's webhook app behind
an HTTP client that posts payloads signed as Meta signs them. (Their `no_config_file`
fixture is in conftest.py.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from earshot.gateway.model import Button
from testkit.whatsapp_api import signature


def choices(n: int, title: str = "Choice") -> tuple[Button, ...]:
    return tuple(Button(f"{title} {i}", ref=f"ref{i}") for i in range(n))


async def no_sleep(_: float) -> None:
    """A sender's sleep between retries, taking no time."""
    await asyncio.sleep(0)


@asynccontextmanager
async def adapter_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the adapter's ASGI app."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://adapter") as client:
        yield client


async def post_signed(
    client: httpx.AsyncClient, path: str, payload: dict[str, Any], signed: str, app_secret: str
) -> int:
    """POST a payload to the webhook at `path`; `signed` is "valid", "none" or "wrong"."""
    body = json.dumps(payload).encode()
    headers = {}
    if signed != "none":
        secret = app_secret if signed == "valid" else "wrong"
        headers["X-Hub-Signature-256"] = signature(secret, body)
    return (await client.post(path, content=body, headers=headers)).status_code
