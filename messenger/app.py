"""The Messenger process: the webhook server, the gateway behind it, and the background
work (kept messages, campaign asks, status notices) for Messenger (and Instagram)
customers. One Page access token sends to both: Instagram direct messages reach the
professional account connected to the Page through the same Send API."""

from __future__ import annotations

import logging

from earshot.gateway.model import Handoff, Incoming
from earshot.gateway.service import Gateway
from earshot.gateway.support import addressed_support_desk
from earshot.settings import Settings
from earshot.webhooks.app import WebhookApp
from messenger.api import SendApi
from messenger.channel import MessengerChannel
from messenger.webhook import Processor, build_webhook_app, webhook_spool

log = logging.getLogger("earshot.messenger")
# Where a colleague answers: the Page's inbox in Meta Business Suite holds Messenger and
# Instagram conversations alike (the Page-scoped id is no address a person can use).
PAGE_INBOX = "https://business.facebook.com/latest/inbox/all"


def page_inbox(_: Handoff) -> str:
    """Where a colleague answers: the customer was told one gets back to them in the chat."""
    return f"answer in the Page's inbox: {PAGE_INBOX}"


def build(settings: Settings, *, gateway: Gateway | None = None) -> WebhookApp:
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
    gw = gateway or Gateway(settings, support=addressed_support_desk(settings, page_inbox))

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
    return WebhookApp(settings, gw, list(channels.values()), processor, asgi, api)


async def serve(settings: Settings) -> None:
    """Run until stopped (earshot.webhooks.serve)."""
    await build(settings).serve(
        host=settings.messenger_webhook_listen, port=settings.messenger_webhook_port
    )
