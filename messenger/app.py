"""The Messenger process: the webhook server, the gateway behind it, and the background
work (kept messages, campaign asks, status notices) for Messenger (and Instagram)
customers. One Page access token sends to both: Instagram direct messages reach the
professional account connected to the Page through the same Send API."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from starlette.applications import Starlette

from earshot.gateway import support
from earshot.gateway.model import Handoff, Incoming, SupportDesk
from earshot.gateway.service import Gateway
from earshot.settings import Settings
from earshot.webhooks.serve import serve_webhook
from messenger.api import SendApi
from messenger.channel import MessengerChannel
from messenger.webhook import Processor, build_webhook_app, webhook_spool

log = logging.getLogger("earshot.messenger")


@dataclass
class MessengerApp:
    """Everything the Messenger process runs, wired once (the composition root)."""

    settings: Settings
    gateway: Gateway
    channels: dict[str, MessengerChannel]
    processor: Processor
    asgi: Starlette
    api: SendApi

    async def aclose(self) -> None:
        await self.processor.drain()
        await self.api.aclose()
        await self.gateway.aclose()


# Where a colleague answers: the Page's inbox in Meta Business Suite holds Messenger and
# Instagram conversations alike (the Page-scoped id is no address a person can use).
PAGE_INBOX = "https://business.facebook.com/latest/inbox/all"


class MessengerSupportDesk:
    """Handoffs go to the support team's Telegram chat, as from every channel, saying where
    to answer: the customer was told a colleague gets back to them in the same chat."""

    def __init__(self, desk: SupportDesk) -> None:
        self.desk = desk

    async def hand_off(self, handoff: Handoff) -> bool:
        name = handoff.display_name or "A customer"
        who = f"{name} (answer in the Page's inbox: {PAGE_INBOX})"
        return await self.desk.hand_off(replace(handoff, display_name=who))


def support_desk(settings: Settings) -> MessengerSupportDesk | None:
    """The support team's Telegram chat, reached over the Bot API (if configured)."""
    desk = support.support_desk(settings)
    return MessengerSupportDesk(desk) if desk is not None else None


def build(settings: Settings, *, gateway: Gateway | None = None) -> MessengerApp:
    """Wire the adapter: Send API, channels, gateway, webhook processor, ASGI app."""
    assert settings.messenger_page_access_token, "MESSENGER_PAGE_ACCESS_TOKEN is required"
    assert settings.messenger_app_secret, "MESSENGER_APP_SECRET is required"
    api = SendApi(
        token=settings.messenger_page_access_token.get_secret_value(),
        base_url=settings.messenger_api_base_url,
        api_version=settings.messenger_api_version,
    )
    platforms = ("messenger", "instagram") if settings.instagram_enabled else ("messenger",)
    channels = {p: MessengerChannel(settings, api, p) for p in platforms}
    gw = gateway or Gateway(settings, support=support_desk(settings))

    async def handle(message: Incoming) -> None:
        await gw.handle(message, channels[message.channel])

    processor = Processor(
        handle, settings.db_url, webhook_spool(settings), customer_lock=gw.customer_lock
    )
    verify = settings.messenger_verify_token
    asgi = build_webhook_app(
        path=settings.messenger_webhook_path,
        app_secret=settings.messenger_app_secret.get_secret_value(),
        verify_token=verify.get_secret_value() if verify else "",
        processor=processor,
        key_of=lambda platform, sender: channels[platform].key(sender),
        platforms=frozenset(platforms),
    )
    return MessengerApp(settings, gw, channels, processor, asgi, api)


async def serve(settings: Settings) -> None:
    """Run until stopped (earshot.webhooks.serve)."""
    app = build(settings)
    await serve_webhook(
        app.asgi,
        host=settings.messenger_webhook_listen,
        port=settings.messenger_webhook_port,
        processor=app.processor,
        gateway=app.gateway,
        channels=app.channels.values(),
        aclose=app.aclose,
    )
