"""Pseudonymous customer keys and feedback reference codes."""

from __future__ import annotations

import hashlib
import hmac
import secrets

# Crockford-style alphabet: no 0/O or 1/I/L to misread when a customer quotes a code.
_REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def user_key(secret: str, channel: str, user_id: str | int) -> str:
    """A keyed hash of a channel's user id: stable per customer, meaningless without the key."""
    msg = f"{channel}:{user_id}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()[:32]


def new_ref(prefix: str, length: int = 4) -> str:
    """A short, readable reference code such as LH-7K3Q."""
    return f"{prefix}-" + "".join(secrets.choice(_REF_ALPHABET) for _ in range(length))
