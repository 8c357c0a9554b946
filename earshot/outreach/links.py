"""Deep links that open a chat and start the feedback flow for a product or a campaign.

Telegram carries a start parameter (`t.me/<bot>?start=fb-bulb`). WhatsApp has none: a
`wa.me/<number>?text=...` link fills in the customer's first message instead, so the
prefilled text ends in the same code in brackets ("Feedback Lumen Bulb [fb-bulb]"), which
the WhatsApp adapter turns into `/start fb-bulb` (whatsapp/inbound.py). The customer sees
and sends a readable sentence; the code survives edits before it. Messenger and Instagram
carry the code itself: `m.me/<page>?ref=fb-bulb` and `ig.me/m/<account>?ref=fb-bulb` (the
adapter gets it in a referral or Get Started postback, messenger/inbound.py).
"""

from __future__ import annotations

from urllib.parse import quote

from earshot.settings import Settings

PREFILL = {
    "en": {"product": "Feedback {name}", "campaign": "Feedback"},
    "nl": {"product": "Feedback over {name}", "campaign": "Feedback"},
}


class LinkError(ValueError):
    """Unknown product or campaign, or the channel's account not configured."""


def deep_link_code(settings: Settings, *, product: str | None, campaign: str | None) -> str:
    """`fb-<product>` or `c-<campaign>`, checked against config.yml."""
    if product:
        if settings.product_name(product) is None:
            raise LinkError(f"no product '{product}' in config.yml")
        return f"fb-{product}"
    if campaign:
        if not any(c.id == campaign for c in settings.campaigns):
            raise LinkError(f"no campaign '{campaign}' in config.yml")
        return f"c-{campaign}"
    raise LinkError("name a product or a campaign")


def prefilled_text(settings: Settings, code: str, language: str) -> str:
    """The first message the link types for the customer, ending in [code]."""
    texts = PREFILL.get(language, PREFILL["en"])
    kind, _, arg = code.partition("-")
    if kind == "fb":
        head = texts["product"].format(name=settings.product_name(arg) or arg)
    else:
        head = texts["campaign"]
    return f"{head} [{code}]"


def whatsapp_link(
    settings: Settings,
    *,
    product: str | None = None,
    campaign: str | None = None,
    language: str | None = None,
) -> str:
    """https://wa.me/<number>?text=... for a product or campaign."""
    number = settings.whatsapp.number
    if not number:
        raise LinkError("set whatsapp.number in config.yml (the business number, digits only)")
    code = deep_link_code(settings, product=product, campaign=campaign)
    text = prefilled_text(settings, code, language or settings.default_language)
    return f"https://wa.me/{number}?text={quote(text, safe='')}"


def messenger_link(
    settings: Settings, *, product: str | None = None, campaign: str | None = None
) -> str:
    """https://m.me/<page>?ref=fb-<product> (or c-<campaign>)."""
    page = settings.messenger.page
    if not page:
        raise LinkError("set messenger.page in config.yml (the Page's username)")
    code = deep_link_code(settings, product=product, campaign=campaign)
    return f"https://m.me/{page}?ref={quote(code, safe='')}"


def instagram_link(
    settings: Settings, *, product: str | None = None, campaign: str | None = None
) -> str:
    """https://ig.me/m/<account>?ref=fb-<product> (or c-<campaign>)."""
    name = settings.messenger.instagram_username
    if not name:
        raise LinkError("set messenger.instagram_username in config.yml")
    code = deep_link_code(settings, product=product, campaign=campaign)
    return f"https://ig.me/m/{name}?ref={quote(code, safe='')}"


def deep_link(
    settings: Settings,
    channel: str,
    *,
    product: str | None = None,
    campaign: str | None = None,
    language: str | None = None,
) -> str:
    """The link that starts the feedback flow on `channel` (whatsapp, messenger, instagram)."""
    if channel == "whatsapp":
        return whatsapp_link(settings, product=product, campaign=campaign, language=language)
    if channel == "messenger":
        return messenger_link(settings, product=product, campaign=campaign)
    if channel == "instagram":
        return instagram_link(settings, product=product, campaign=campaign)
    raise LinkError(f"no deep links for channel '{channel}'")
