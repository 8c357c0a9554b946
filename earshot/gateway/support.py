"""Handoffs to the support team: the transcript posted to the team's Telegram chat.

The Telegram adapter posts through its own bot (bot/app.py); channels without a Telegram
bot of their own (web chat, terminal, WhatsApp, ...) use `BotApiSupportDesk`, which posts
to the same `support_chat_id` over the Bot API's HTTP interface (base URL configurable, so
tests point it at the local fake).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import replace

import httpx

from earshot.gateway.model import Handoff, SupportDesk
from earshot.settings import Settings

log = logging.getLogger("earshot.gateway.support")

CHANNEL_NAMES = {
    "telegram": "Telegram",
    "web": "the web chat",
    "terminal": "the terminal chat",
    "whatsapp": "WhatsApp",
    "messenger": "Messenger",
    "instagram": "Instagram",
    "x": "X (Twitter)",
}
CHUNK = 3500  # leaves room for the header within Telegram's 4096


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def handoff_messages(handoff: Handoff, *, who_html: str | None = None) -> list[str]:
    """The handoff as Telegram HTML messages: a header, then the transcript in chunks."""
    who = who_html or escape(handoff.display_name or "A customer")
    where = CHANNEL_NAMES.get(handoff.channel, handoff.channel)
    header = f"🙋 {who} asked to talk to a person"
    if handoff.channel != "telegram":
        header += f" on {escape(where)} (customer {handoff.customer_key[:8]})"
    if handoff.topic:
        header += f" (topic: {escape(handoff.topic)})"
    parts = _chunks(escape(handoff.transcript or "")) or [""]
    return [f"{header}\n\n{parts[0]}", *parts[1:]]


def _chunks(escaped: str) -> list[str]:
    """Escaped text in chunks of at most CHUNK characters, cut at a line where one is near
    and never inside an HTML entity."""
    out = []
    while len(escaped) > CHUNK:
        cut = escaped.rfind("\n", CHUNK // 2, CHUNK) + 1 or CHUNK
        amp = escaped.rfind("&", cut - 6, cut)
        if amp >= 0 and ";" not in escaped[amp:cut]:
            cut = amp
        out.append(escaped[:cut])
        escaped = escaped[cut:]
    return [*out, escaped] if escaped else out


class BotApiSupportDesk:
    """Posts handoffs to the support chat through the Telegram Bot API over HTTP."""

    def __init__(
        self,
        base_url: str,
        token: str,
        support_chat_id: int | str | None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._url = f"{base_url.rstrip('/')}{token}/sendMessage"
        self._chat = support_chat_id
        self._transport = transport
        self._timeout = timeout

    async def hand_off(self, handoff: Handoff) -> bool:
        chat = handoff.support_chat_id or self._chat
        if not chat:
            log.error("a handoff arrived but no support chat is configured")
            return False
        async with httpx.AsyncClient(transport=self._transport, timeout=self._timeout) as http:
            for text in handoff_messages(handoff):
                body = {"chat_id": chat, "text": text, "parse_mode": "HTML"}
                try:
                    resp = await http.post(self._url, json=body)
                except httpx.HTTPError:
                    log.exception("could not post a handoff to the support chat")
                    return False
                if resp.status_code != 200:
                    log.error("the support chat refused a handoff: %s", resp.status_code)
                    return False
        return True


def support_desk(settings: Settings) -> BotApiSupportDesk | None:
    """The support desk of a process without a Telegram bot of its own (web chat, terminal,
    WhatsApp, ...): the Bot API with TELEGRAM_BOT_TOKEN, if that and support_chat_id are set."""
    token = settings.telegram_bot_token
    if token is None or not token.get_secret_value() or settings.support_chat_id is None:
        return None
    return BotApiSupportDesk(
        settings.telegram_api_base_url, token.get_secret_value(), settings.support_chat_id
    )


class AddressedSupportDesk:
    """Handoffs go to the support team's Telegram chat, as from every channel, with how a
    colleague reaches the customer on this channel after their name (`address(handoff)`):
    the customer is told a colleague gets back to them there."""

    def __init__(self, desk: SupportDesk, address: Callable[[Handoff], str]) -> None:
        self.desk, self.address = desk, address

    async def hand_off(self, handoff: Handoff) -> bool:
        name = handoff.display_name or "A customer"
        who = f"{name} ({self.address(handoff)})"
        return await self.desk.hand_off(replace(handoff, display_name=who))


def addressed_support_desk(
    settings: Settings, address: Callable[[Handoff], str]
) -> AddressedSupportDesk | None:
    """`support_desk(settings)` (if configured), saying how to reach the customer."""
    desk = support_desk(settings)
    return AddressedSupportDesk(desk, address) if desk is not None else None
