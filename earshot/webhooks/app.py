"""What a channel's webhook process runs, wired once by its adapter (the composition
root): the gateway, the channels it answers through, the sender they share, the processor
of the webhooks and the ASGI app that takes them in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from earshot.gateway.model import Channel
from earshot.gateway.service import Gateway
from earshot.settings import Settings
from earshot.webhooks.serve import serve_webhook


class Processes(Protocol):
    async def replay(self) -> int: ...

    async def drain(self) -> None: ...


class Closes(Protocol):
    async def aclose(self) -> None: ...


@dataclass
class WebhookApp:
    settings: Settings
    gateway: Gateway
    channels: Sequence[Channel]
    processor: Processes
    asgi: Any  # the adapter's ASGI app (Starlette)
    api: Closes  # the channels' sender

    async def aclose(self) -> None:
        await self.processor.drain()
        await self.api.aclose()
        await self.gateway.aclose()

    async def serve(self, *, host: str, port: int) -> None:
        """Run until stopped (earshot.webhooks.serve)."""
        await serve_webhook(
            self.asgi,
            host=host,
            port=port,
            processor=self.processor,
            gateway=self.gateway,
            channels=self.channels,
            aclose=self.aclose,
        )
