"""Turn Rasa's response messages into what Telegram shows: escaped text, chunks, keyboards."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

TELEGRAM_TEXT_LIMIT = 4096


@dataclass
class Button:
    title: str
    payload: str

    @property
    def is_url(self) -> bool:
        return self.payload.startswith(("https://", "http://"))


@dataclass
class Reply:
    """One message to send: HTML text chunks, an optional photo, and buttons for the last chunk."""

    chunks: list[str] = field(default_factory=list)
    image: str | None = None
    buttons: list[Button] = field(default_factory=list)


def escape(text: str) -> str:
    """Escape for Telegram's HTML parse mode (only &, < and > are special there)."""
    return html.escape(text, quote=False)


def split_escaped(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Escape `text` and split it into chunks that each fit Telegram's limit after escaping.

    Splits prefer paragraph, then line, then word boundaries, and never cut an HTML entity.
    """
    chunks: list[str] = []
    rest = text
    while rest:
        if len(escape(rest)) <= limit:
            chunks.append(escape(rest))
            break
        # Largest prefix whose escaped form fits.
        lo, hi = 1, len(rest)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if len(escape(rest[:mid])) <= limit:
                lo = mid
            else:
                hi = mid - 1
        cut = lo
        for sep in ("\n\n", "\n", " "):
            pos = rest.rfind(sep, 0, cut)
            if pos > cut // 2:
                cut = pos + len(sep)
                break
        chunks.append(escape(rest[:cut].rstrip()) or escape(rest[:cut]))
        rest = rest[cut:].lstrip("\n") if rest[cut:].strip() else ""
    return [c for c in chunks if c.strip()] or ([escape(text)] if text.strip() else [])


def to_replies(messages: list[dict[str, Any]]) -> list[Reply]:
    """Map Rasa's collected messages ({text, buttons, image, custom}) to replies.

    Consecutive texts of one turn become one message (paragraphs), the buttons riding on
    the last (after any links): one notification instead of several, and one send
    against the bot's 30 messages/s instead of two. A photo, or a text after buttons
    that wait for an answer, starts a new message.
    """
    merged: list[tuple[str, list[Button], str | None]] = []
    for msg in messages:
        text = str(msg.get("text") or "")
        buttons = [
            Button(title=str(b.get("title", "")), payload=str(b.get("payload", "")))
            for b in msg.get("buttons") or []
            if isinstance(b, dict) and b.get("title")
        ]
        image = str(msg["image"]) if msg.get("image") else None
        if not (text.strip() or buttons or image):
            continue
        if merged and not image:
            prev_text, prev_buttons, prev_image = merged[-1]
            # Links wait for no answer, so a message with links stays open too.
            if prev_text.strip() and not prev_image and all(b.is_url for b in prev_buttons):
                joined = f"{prev_text}\n\n{text}" if text.strip() else prev_text
                merged[-1] = (joined, prev_buttons + buttons, None)
                continue
        merged.append((text, buttons, image))
    return [
        Reply(chunks=split_escaped(text) if text else [], image=image, buttons=buttons)
        for text, buttons, image in merged
    ]
