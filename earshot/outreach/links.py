"""Deep links that open a chat and start the feedback flow for a product or a campaign.

Telegram carries a start parameter (`t.me/<bot>?start=fb-bulb`). WhatsApp has none: a
`wa.me/<number>?text=...` link fills in the customer's first message instead, so the
prefilled text ends in the same code in brackets ("Feedback Lumen Bulb [fb-bulb]"), which
the WhatsApp adapter turns into `/start fb-bulb` (whatsapp/inbound.py). The customer sees
and sends a readable sentence; the code survives edits before it. Messenger and Instagram
carry the code itself: `m.me/<page>?ref=fb-bulb` and `ig.me/m/<account>?ref=fb-bulb` (the
adapter gets it in a referral or Get Started postback, messenger/inbound.py). X has no
start parameter either: `twitter.com/messages/compose?recipient_id=<our id>&text=...` (X's
own "Message" links) types the text in a DM, as wa.me does (xdm/inbound.py). X tells no
language, so its Dutch prefills differ from the English ones (`language_of_prefill`).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode

from earshot.gateway.texts import DEEP_LINK
from earshot.settings import Settings

Prefills = Mapping[str, Mapping[str, str]]
PREFILL: Prefills = {
    "en": {"product": "Feedback {name}", "campaign": "Feedback"},
    "nl": {"product": "Feedback over {name}", "campaign": "Feedback"},
}
# X tells no language, so a campaign's Dutch prefill must not read as the English one.
X_PREFILL: Prefills = {**PREFILL, "nl": {**PREFILL["nl"], "campaign": "Feedback geven"}}
X_COMPOSE = "https://twitter.com/messages/compose"


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


def prefilled_text(
    settings: Settings, code: str, language: str, prefills: Prefills = PREFILL
) -> str:
    """The first message the link types for the customer, ending in [code]."""
    texts = prefills.get(language, prefills["en"])
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


def x_link(
    settings: Settings,
    *,
    product: str | None = None,
    campaign: str | None = None,
    language: str | None = None,
) -> str:
    """https://twitter.com/messages/compose?recipient_id=<our id>&text=... for a product or
    campaign."""
    if not settings.x_user_id:
        raise LinkError("set X_USER_ID (the numeric id of the account customers write to)")
    code = deep_link_code(settings, product=product, campaign=campaign)
    text = prefilled_text(settings, code, language or settings.default_language, X_PREFILL)
    return f"{X_COMPOSE}?{urlencode({'recipient_id': settings.x_user_id, 'text': text})}"


def language_of_prefill(text: str) -> str | None:
    """The language an X link's prefilled text was written in (X tells no language): the
    one whose wording matches longest ("Feedback over ..." is Dutch, "Feedback ..."
    English)."""
    head = DEEP_LINK.sub("", " ".join(text.split())).strip().lower()
    best, best_len = None, -1
    for language, texts in X_PREFILL.items():
        campaign = texts["campaign"].lower()
        prefix = texts["product"].split("{name}")[0].lower()  # "feedback over "
        if head == campaign and len(campaign) > best_len:
            best, best_len = language, len(campaign)
        elif head.startswith(prefix) and len(head) > len(prefix) and len(prefix) > best_len:
            best, best_len = language, len(prefix)
    return best


def deep_link(
    settings: Settings,
    channel: str,
    *,
    product: str | None = None,
    campaign: str | None = None,
    language: str | None = None,
) -> str:
    """The link that starts the feedback flow on `channel` (whatsapp, messenger, instagram,
    x)."""
    if channel == "whatsapp":
        return whatsapp_link(settings, product=product, campaign=campaign, language=language)
    if channel == "messenger":
        return messenger_link(settings, product=product, campaign=campaign)
    if channel == "instagram":
        return instagram_link(settings, product=product, campaign=campaign)
    if channel == "x":
        return x_link(settings, product=product, campaign=campaign, language=language)
    raise LinkError(f"no deep links for channel '{channel}'")
