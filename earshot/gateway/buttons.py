"""The server-side button store: payloads stay with us, channels only ever see references.

A reference is "<id>:<index>" (short enough for Telegram's 64-byte callback_data), bound to
the customer it was shown to: a forged, expired or someone else's reference resolves to
None and is answered "that button has expired"; nobody can post an intent of their making.
"""

from __future__ import annotations

import json
from dataclasses import replace

from sqlalchemy.orm import Session

from earshot.conversations import queries as conversations
from earshot.gateway.model import Button, Reply

MAX_REF = 64


def store(session: Session, *, replies: list[Reply], customer_key: str) -> list[Reply]:
    """Keep the replies' payloads (one row per turn); returns the replies with references."""
    payloads = [b.ref or "" for r in replies for b in r.buttons if not b.is_link]
    if not payloads:
        return replies
    pid = conversations.store_payload(
        session, payload=json.dumps(payloads), customer_key=customer_key
    )
    index = iter(range(len(payloads)))
    return [
        replace(
            r,
            buttons=tuple(
                b if b.is_link else Button(b.title, ref=f"{pid}:{next(index)}") for b in r.buttons
            ),
        )
        for r in replies
    ]


def resolve(session: Session, *, ref: str, customer_key: str) -> str | None:
    """The payload behind a pressed button, or None when unknown, expired or not theirs."""
    pid, _, idx = ref.partition(":")
    if not pid or not idx.isdigit() or len(ref) > MAX_REF:
        return None
    stored = conversations.load_payload(session, pid=pid, customer_key=customer_key)
    if stored is None:
        return None
    try:
        return str(json.loads(stored)[int(idx)])
    except (ValueError, IndexError, TypeError):
        return None
