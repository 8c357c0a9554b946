"""Signatures of outgoing webhooks and checks of incoming ones (GitHub, Jira).

Outgoing: `X-Earshot-Signature: t=<unix seconds>,v1=<hex>` where hex is
HMAC-SHA256(secret, f"{t}.{body}") over the exact bytes of the body. A receiver
recomputes it with its copy of the secret, compares in constant time, and refuses
timestamps further than its replay window (5 minutes by default) from its clock, so a
captured request cannot be replayed later. Each attempt is signed afresh.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Earshot-Signature"
REPLAY_WINDOW_S = 300


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The X-Earshot-Signature value for `body` at `timestamp` (now by default)."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    window_s: int = REPLAY_WINDOW_S,
    now: float | None = None,
) -> bool:
    """True when `header` signs `body` with `secret` within the replay window.

    What a receiver does (any language): split the header on "," into t= and v1= parts,
    recompute the HMAC over "t." + raw body, compare in constant time, check |now - t|.
    """
    if not header:
        return False
    parts: dict[str, list[str]] = {}
    for piece in header.split(","):
        name, _, value = piece.strip().partition("=")
        parts.setdefault(name, []).append(value)
    try:
        t = int(parts.get("t", [""])[0])
    except ValueError:
        return False
    now = time.time() if now is None else now
    if abs(now - t) > window_s:
        return False
    expected = sign(secret, body, timestamp=t).split("v1=", 1)[1]
    # Any v1 may match: lets a sender sign with an old and a new secret while rotating.
    return any(hmac.compare_digest(expected, v) for v in parts.get("v1", []))


def hub_signature(secret: str, body: bytes) -> str:
    """GitHub's X-Hub-Signature-256 and Jira's X-Hub-Signature: "sha256=<hex>"."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def hub_signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of a "sha256=<hex>" signature of the raw body."""
    if not header or not secret:
        return False
    return hmac.compare_digest(hub_signature(secret, body), header.strip())
