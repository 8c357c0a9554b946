"""The WhatsApp process: the webhook server, the gateway behind it, and the background
work (kept messages, campaign asks, status notices) for WhatsApp customers."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import partial

from starlette.applications import Starlette

from earshot.conversations import queries as conversations
from earshot.gateway import support
from earshot.gateway.model import Handoff, Incoming, SupportDesk
from earshot.gateway.service import Gateway
from earshot.settings import Settings
from earshot.webhooks.serve import serve_webhook
from whatsapp.api import CloudApi
from whatsapp.channel import WhatsAppChannel
from whatsapp.webhook import Processor, build_webhook_app, webhook_spool

log = logging.getLogger("earshot.whatsapp")


@dataclass
class WhatsAppApp:
    """Everything the WhatsApp process runs, wired once (the composition root)."""

    settings: Settings
    gateway: Gateway
    channel: WhatsAppChannel
    processor: Processor
    asgi: Starlette

    async def aclose(self) -> None:
        await self.processor.drain()
        await self.channel.api.aclose()
        await self.gateway.aclose()


class WhatsAppSupportDesk:
    """Handoffs go to the support team's Telegram chat, as from every channel, with the
    customer's WhatsApp number and a wa.me link: the customer is told a colleague gets
    back to them, and this is how the colleague reaches them."""

    def __init__(self, desk: SupportDesk) -> None:
        self.desk = desk

    async def hand_off(self, handoff: Handoff) -> bool:
        name = handoff.display_name or "A customer"
        who = f"{name} (+{handoff.chat_id}, https://wa.me/{handoff.chat_id})"
        return await self.desk.hand_off(replace(handoff, display_name=who))


def support_desk(settings: Settings) -> WhatsAppSupportDesk | None:
    """The support team's Telegram chat, reached over the Bot API (if configured)."""
    desk = support.support_desk(settings)
    return WhatsAppSupportDesk(desk) if desk is not None else None


def build(settings: Settings, *, gateway: Gateway | None = None) -> WhatsAppApp:
    """Wire the adapter: Cloud API sender, channel, gateway, webhook processor, ASGI app."""
    assert settings.whatsapp_access_token and settings.whatsapp_phone_number_id, (
        "WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID are required"
    )
    assert settings.whatsapp_app_secret, "WHATSAPP_APP_SECRET is required"
    api = CloudApi(
        phone_number_id=settings.whatsapp_phone_number_id,
        token=settings.whatsapp_access_token.get_secret_value(),
        base_url=settings.whatsapp_api_base_url,
        api_version=settings.whatsapp_api_version,
        per_second=settings.whatsapp_messages_per_second,
    )
    channel = WhatsAppChannel(settings, api)
    gw = gateway or Gateway(settings, support=support_desk(settings))

    async def handle(message: Incoming) -> None:
        await gw.handle(message, channel)

    processor = Processor(
        handle,
        settings.db_url,
        webhook_spool(settings),
        release=partial(conversations.release_message, channel=channel.name),
    )
    verify = settings.whatsapp_verify_token
    asgi = build_webhook_app(
        path=settings.whatsapp_webhook_path,
        app_secret=settings.whatsapp_app_secret.get_secret_value(),
        verify_token=verify.get_secret_value() if verify else "",
        processor=processor,
        key_of=channel.key,
    )
    return WhatsAppApp(settings, gw, channel, processor, asgi)


async def serve(settings: Settings) -> None:
    """Run until stopped (earshot.webhooks.serve)."""
    app = build(settings)
    await serve_webhook(
        app.asgi,
        host=settings.whatsapp_webhook_listen,
        port=settings.whatsapp_webhook_port,
        processor=app.processor,
        gateway=app.gateway,
        channels=[app.channel],
        aclose=app.aclose,
    )
