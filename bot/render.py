"""Telegram's text rules: HTML escaping and splitting at 4096 characters (the gateway's
replies are plain text; this is how the Telegram adapter shows them)."""

from __future__ import annotations

import html

TELEGRAM_TEXT_LIMIT = 4096


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
