"""Deep links that open a DM with us, prefilled to start the feedback flow.

`https://twitter.com/messages/compose?recipient_id=<our id>&text=...` opens a DM to the
account with the text typed in (X's own "Message" links). The prefilled text ends in the
code in brackets ("Feedback Lumen Bulb [fb-bulb]"), which xdm/inbound.py turns into
`/start fb-bulb`, as Telegram's `t.me/<bot>?start=fb-bulb` does. The customer sees and
sends a readable sentence; the code survives edits before it.
"""

from __future__ import annotations

from urllib.parse import urlencode

from earshot.gateway.texts import DEEP_LINK
from earshot.outreach.links import LinkError, deep_link_code
from earshot.settings import Settings

__all__ = ["LinkError", "deep_link_code", "language_of_prefill", "prefilled_text", "x_link"]

COMPOSE = "https://twitter.com/messages/compose"
PREFILL = {
    "en": {"product": "Feedback {name}", "campaign": "Feedback"},
    "nl": {"product": "Feedback over {name}", "campaign": "Feedback geven"},
}


def language_of_prefill(text: str) -> str | None:
    """The language a deep link's prefilled text was written in (X tells no language):
    the one whose wording matches longest ("Feedback over ..." is Dutch, "Feedback ..."
    English)."""
    head = DEEP_LINK.sub("", " ".join(text.split())).strip().lower()
    best, best_len = None, -1
    for language, texts in PREFILL.items():
        campaign = texts["campaign"].lower()
        prefix = texts["product"].split("{name}")[0].lower()  # "feedback over "
        if head == campaign and len(campaign) > best_len:
            best, best_len = language, len(campaign)
        elif head.startswith(prefix) and len(head) > len(prefix) and len(prefix) > best_len:
            best, best_len = language, len(prefix)
    return best


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
