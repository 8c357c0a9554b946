"""Deep links that open a DM with us, prefilled to start the feedback flow.

`https://twitter.com/messages/compose?recipient_id=<our id>&text=...` opens a DM to the
account with the text typed in (X's own "Message" links). The prefilled text ends in the
code in brackets ("Feedback Lumen Bulb [fb-bulb]"), which xdm/inbound.py turns into
`/start fb-bulb`, as Telegram's `t.me/<bot>?start=fb-bulb` does. The customer sees and
sends a readable sentence; the code survives edits before it.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from earshot.settings import Settings

COMPOSE = "https://twitter.com/messages/compose"
DEEP_CODE = re.compile(r"\[(?:fb|c)-[a-z0-9_-]{1,64}\]\s*$", re.IGNORECASE)
PREFILL = {
    "en": {"product": "Feedback {name}", "campaign": "Feedback"},
    "nl": {"product": "Feedback over {name}", "campaign": "Feedback geven"},
}


def language_of_prefill(text: str) -> str | None:
    """The language a deep link's prefilled text was written in (X tells no language):
    the one whose wording matches longest ("Feedback over ..." is Dutch, "Feedback ..."
    English)."""
    head = DEEP_CODE.sub("", " ".join(text.split())).strip().lower()
    best, best_len = None, -1
    for language, texts in PREFILL.items():
        campaign = texts["campaign"].lower()
        prefix = texts["product"].split("{name}")[0].lower()  # "feedback over "
        if head == campaign and len(campaign) > best_len:
            best, best_len = language, len(campaign)
        elif head.startswith(prefix) and len(head) > len(prefix) and len(prefix) > best_len:
            best, best_len = language, len(prefix)
    return best


class LinkError(ValueError):
    """Unknown product or campaign, or no X user id configured."""


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
    head = (
        texts["product"].format(name=settings.product_name(arg) or arg)
        if kind == "fb"
        else texts["campaign"]
    )
    return f"{head} [{code}]"


def x_link(
    settings: Settings,
    *,
    product: str | None = None,
    campaign: str | None = None,
    language: str | None = None,
) -> str:
    """The compose link for a product or campaign."""
    if not settings.x_user_id:
        raise LinkError("set X_USER_ID (the numeric id of the account customers write to)")
    code = deep_link_code(settings, product=product, campaign=campaign)
    text = prefilled_text(settings, code, language or settings.default_language)
    return f"{COMPOSE}?{urlencode({'recipient_id': settings.x_user_id, 'text': text})}"
