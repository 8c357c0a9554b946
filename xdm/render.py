"""Lay the gateway's replies out as X direct messages (pure functions, no I/O).

Sent with the v1.1 `POST direct_messages/events/new` (see xdm/api.py for why v1.1): a DM's
text holds up to 10,000 characters; its Quick Reply holds up to 20 options, each a label of
up to 36 characters (no URLs), an optional description of up to 72 (if one option has one,
all must) and metadata of up to 1,000 characters that X sends back when it is chosen
(developer.x.com/en/docs/direct-messages/quick-replies/api-reference/options). The metadata
carries the gateway's button reference. Links are written into the text with their address
(X turns them into cards); an image goes in as its URL, which X shows as a link card.
"""

from __future__ import annotations

from typing import Any

from earshot.gateway.model import Button, Reply
from earshot.gateway.texts import shorten, split_text

TEXT_LIMIT = 10_000
MAX_OPTIONS = 20
LABEL_LIMIT = 36
DESCRIPTION_LIMIT = 72
METADATA_LIMIT = 1000
MORE_CHOICES = {"en": "More choices:", "nl": "Meer keuzes:"}
CHOOSE = {"en": "Choose:", "nl": "Kies:"}

MessageData = dict[str, Any]


def options(choices: list[Button]) -> list[dict[str, str]]:
    """Quick Reply options for up to 20 choices; long titles go on in the description."""
    titles = [" ".join(b.title.split()) for b in choices]
    described = any(len(t) > LABEL_LIMIT for t in titles)
    out = []
    for button, title in zip(choices, titles, strict=True):
        option = {"label": shorten(title, LABEL_LIMIT), "metadata": str(button.ref)}
        if described:  # X: all options have a description, or none does
            option["description"] = shorten(title, DESCRIPTION_LIMIT)
        out.append(option)
    return out


def _with_links(text: str, links: list[Button], image: str | None) -> str:
    lines = [f"{b.title}: {b.url}" for b in links]
    if image:
        lines.insert(0, image)
    if not lines:
        return text
    return "\n".join([text, "", *lines]) if text.strip() else "\n".join(lines)


def layout(reply: Reply, language: str = "en") -> list[MessageData]:
    """The `message_data` objects that show one reply, in order."""
    choices = [b for b in reply.buttons if not b.is_link and b.ref]
    links = [b for b in reply.buttons if b.is_link]
    chunks = split_text(_with_links(reply.text, links, reply.image), TEXT_LIMIT)
    if not choices:
        return [{"text": c} for c in chunks]
    if not chunks:
        chunks = [CHOOSE.get(language, CHOOSE["en"])]
    out: list[MessageData] = [{"text": c} for c in chunks[:-1]]
    groups = [choices[i : i + MAX_OPTIONS] for i in range(0, len(choices), MAX_OPTIONS)]
    more = MORE_CHOICES.get(language, MORE_CHOICES["en"])
    for n, group in enumerate(groups):
        out.append(
            {
                "text": chunks[-1] if n == 0 else more,
                "quick_reply": {"type": "options", "options": options(group)},
            }
        )
    return out


def layout_all(replies: list[Reply], language: str = "en") -> list[MessageData]:
    """The messages for a turn's replies."""
    return [m for r in replies for m in layout(r, language)]
