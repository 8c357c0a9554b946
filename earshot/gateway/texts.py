"""Text helpers for channels with neither a command menu nor HTML (WhatsApp, Messenger,
Instagram, X): typed words that stand for commands, deep-link codes in a first message, and
splitting long texts at the channel's limit."""

from __future__ import annotations

import html
import re

# "Feedback Lumen Bulb [fb-bulb]": the prefilled text of a wa.me or X compose deep link
# (earshot/outreach/links.py); it starts the feedback flow as `/start fb-bulb`
# on Telegram.
DEEP_LINK = re.compile(r"\[((?:fb|c)-[a-z0-9_-]{1,64})\]\s*$", re.IGNORECASE)
# A bare deep-link code, as an m.me/ig.me `ref` carries it.
DEEP_LINK_CODE = re.compile(r"^(?:fb|c)-[a-z0-9_-]{1,64}$", re.IGNORECASE)
# Whole messages that stop feedback asks (the /stop of Telegram), English and Dutch.
STOP_WORDS = frozenset(
    {"stop", "stoppen", "afmelden", "uitschrijven", "unsubscribe", "stop asking", "niet meer"}
)
# No command menu: these typed phrases are the /deletemydata command.
ERASE_PHRASES = frozenset(
    {"delete my data", "verwijder mijn gegevens", "wis mijn gegevens", "deletemydata"}
)
_TAG = re.compile(r"</?[a-z]+>")


def typed(text: str) -> str:
    """A typed message as the gateway should read it: a deep link's start, STOP, erasure."""
    plain = " ".join(text.split())
    word = plain.lower().strip(".!?")
    if word in STOP_WORDS:
        return "/stop"
    if word in ERASE_PHRASES:
        return "/deletemydata"
    found = DEEP_LINK.search(plain)
    if found:
        return f"/start {found.group(1).lower()}"
    return plain


def start_command(ref: str | None) -> str:
    """`/start <code>` for a deep link's ref (fb-<product>, c-<campaign>), else `/start`."""
    ref = (ref or "").strip()
    return f"/start {ref.lower()}" if DEEP_LINK_CODE.match(ref) else "/start"


def plain(text: str) -> str:
    """Texts written for Telegram's HTML as plain text (for channels without markup)."""
    if "<" not in text and "&" not in text:
        return text
    return html.unescape(_TAG.sub("", text))


def shorten(title: str, limit: int) -> str:
    """One line of at most `limit` characters, cut with an ellipsis."""
    title = " ".join(title.split())
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


def split_text(text: str, limit: int) -> list[str]:
    """Split at paragraph, line or word boundaries into chunks of at most `limit` chars."""
    chunks: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = limit
        for sep in ("\n\n", "\n", " "):
            pos = rest.rfind(sep, 0, limit)
            if pos > limit // 2:
                cut = pos
                break
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        chunks.append(rest)
    return chunks
