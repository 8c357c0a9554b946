"""The WhatsApp process: the webhook server, the gateway behind it, and the background
work (kept messages, campaign asks, status notices) for WhatsApp customers."""

from __future__ import annotations

import logging
from functools import partial

from earshot.conversations import queries as conversations
from earshot.gateway.model import Handoff, Incoming
from earshot.gateway.service import Gateway
from earshot.gateway.support import addressed_support_desk
from earshot.settings import Settings
from earshot.webhooks.app import WebhookApp
from whatsapp.api import CloudApi
from whatsapp.channel import WhatsAppChannel
from whatsapp.webhook import Processor, build_webhook_app, webhook_spool

log = logging.getLogger("earshot.whatsapp")


def wa_me(handoff: Handoff) -> str:
    """The customer's WhatsApp number and a wa.me link: how a colleague reaches them."""
    return f"+{handoff.chat_id}, https://wa.me/{handoff.chat_id}"


def build(settings: Settings, *, gateway: Gateway | None = None) -> WebhookApp:
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
    gw = gateway or Gateway(settings, support=addressed_support_desk(settings, wa_me))

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
    return WebhookApp(settings, gw, [channel], processor, asgi, api)


async def serve(settings: Settings) -> None:
    """Run until stopped (earshot.webhooks.serve)."""
    await build(settings).serve(
        host=settings.whatsapp_webhook_listen, port=settings.whatsapp_webhook_port
    )
