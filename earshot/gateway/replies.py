"""Rasa's messages as the gateway's replies: one model for every channel.

Consecutive texts of one turn become one message (paragraphs), the buttons riding on the
last (after any links): one notification instead of several, and one send against a
channel's rate limit instead of two. A photo, or a text after buttons that wait for an
answer, starts a new message. Custom messages carry a handoff for the support team.

Buttons come out with the *payload* in `ref` (links with `url`); the gateway swaps each
payload for a stored reference (`buttons.store`) before a channel sees them.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from earshot import i18n
from earshot.gateway.model import Button, Reply

MAX_BUTTONS = 12
MAX_TITLE = 80
_LINK = ("https://", "http://")
_TAG = re.compile(r"</?[a-z]+>")


@dataclass
class Parsed:
    """A turn's replies (button payloads still in `ref`) and the handoffs it asked for."""

    replies: list[Reply] = field(default_factory=list)
    handoffs: list[dict[str, Any]] = field(default_factory=list)


def _buttons(raw: Any) -> list[Button]:
    buttons = []
    for b in (raw if isinstance(raw, list) else [])[:MAX_BUTTONS]:
        if not isinstance(b, dict) or not b.get("title"):
            continue
        title = str(b["title"])[:MAX_TITLE]
        target = str(b.get("payload") or b.get("url") or "")
        if target.startswith(_LINK):
            buttons.append(Button(title, url=target))
        elif target:
            buttons.append(Button(title, ref=target))
    return buttons


def parse(messages: Any, *, merge: bool = True) -> Parsed:
    """Map Rasa's collected messages ({text, buttons, image, custom}) to replies; without
    `merge`, one reply per message (the web chat shows each as a bubble of its own)."""
    out = Parsed()
    merged: list[tuple[str, list[Button], str | None]] = []
    for msg in messages if isinstance(messages, list) else []:
        if not isinstance(msg, dict):
            continue
        custom = msg.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get("handoff"), dict):
            out.handoffs.append(custom["handoff"])
        text = str(msg.get("text") or "")
        buttons = _buttons(msg.get("buttons"))
        image = msg.get("image")
        image = str(image) if isinstance(image, str) and image.startswith(_LINK) else None
        if not (text.strip() or buttons or image):
            continue
        if merge and merged and not image:
            prev_text, prev_buttons, prev_image = merged[-1]
            # Links wait for no answer, so a message with links stays open too.
            if prev_text.strip() and not prev_image and all(b.is_link for b in prev_buttons):
                joined = f"{prev_text}\n\n{text}" if text.strip() else prev_text
                merged[-1] = (joined, prev_buttons + buttons, None)
                continue
        merged.append((text, buttons, image))
    out.replies = [Reply(text=t, buttons=tuple(b), image=i) for t, b, i in merged]
    return out


def plain(text: str) -> str:
    """An i18n text written for Telegram's HTML, as plain text (channels format it)."""
    return html.unescape(_TAG.sub("", text))


def say(key: str, language: str, *buttons: Button) -> Reply:
    """One of Earshot's own texts (earshot/i18n.py) as a reply."""
    return Reply(text=plain(i18n.text(key, language)), buttons=tuple(buttons))
