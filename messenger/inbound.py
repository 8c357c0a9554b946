"""Read the Messenger Platform's webhook payloads (object "page" for Messenger,
"instagram" for Instagram direct messages): customer messages, quick replies, postbacks,
m.me/ig.me referrals (as the gateway's `Incoming`) and delivery/read receipts. Pure
functions: the webhook stores, the processor acts.

A payload is split into one entry per event, minimised to what Earshot uses (typed text
redacted, attachments reduced to their kind), so what waits on disk holds no more
personal data than needed and erasure finds it by key. Echoes of our own messages are
dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from earshot.gateway.model import Incoming
from earshot.gateway.texts import start_command, typed
from earshot.privacy.redaction import redact

PLATFORMS = {"page": "messenger", "instagram": "instagram"}
# The Get Started button's payload (set in the Page's Messenger profile).
GET_STARTED = "GET_STARTED"
MEDIA_KINDS = {
    "image": "photo",
    "audio": "voice",
    "video": "video",
    "file": "document",
    "sticker": "sticker",
    "location": "location",
    "ig_reel": "video",
    "reel": "video",
    "share": "other",
    "story_mention": "other",
}

KeyOf = Callable[[str, str], str]  # (platform, sender id) -> customer key


def _attachment_kind(message: dict[str, Any]) -> str:
    """The gateway's media kind of a message's first attachment."""
    if message.get("sticker_id"):
        return "sticker"
    first = (message.get("attachments") or [{}])[0]
    kind = str(first.get("type") or "other") if isinstance(first, dict) else "other"
    return MEDIA_KINDS.get(kind, "other")


def _event(platform: str, ev: dict[str, Any]) -> dict[str, Any] | None:
    """The minimal entry of one `messaging` event, or None for what Earshot ignores."""
    sender = str((ev.get("sender") or {}).get("id") or "")
    stamp = str(ev.get("timestamp") or "")
    if "message" in ev:
        m = ev["message"] or {}
        if m.get("is_echo") or not sender:
            return None
        out: dict[str, Any] = {"id": m.get("mid"), "from": sender}
        quick = (m.get("quick_reply") or {}).get("payload")
        if quick:
            out["button"] = str(quick)
        elif m.get("attachments") or m.get("sticker_id"):
            out["media"] = _attachment_kind(m)
        else:
            out["text"] = redact(str(m.get("text") or ""))
        return {"message": out}
    if "postback" in ev:
        pb = ev["postback"] or {}
        mid = pb.get("mid") or f"postback-{sender}-{stamp}"
        ref = (pb.get("referral") or {}).get("ref")
        payload = str(pb.get("payload") or "")
        if ref or payload == GET_STARTED:  # a new thread from a deep link or Get Started
            return {"message": {"id": mid, "from": sender, "text": start_command(ref)}}
        return {"message": {"id": mid, "from": sender, "button": payload}}
    if "referral" in ev:  # an m.me/ig.me link opened on an existing thread
        ref = (ev["referral"] or {}).get("ref")
        mid = f"referral-{sender}-{stamp}"
        return {"message": {"id": mid, "from": sender, "text": start_command(ref)}}
    if "delivery" in ev:
        d = ev["delivery"] or {}
        mids = list(d.get("mids") or [])
        return {"status": {"status": "delivered", "mids": mids, "watermark": d.get("watermark")}}
    if "read" in ev:
        r = ev["read"] or {}
        mids = [r["mid"]] if r.get("mid") else []  # Instagram names the message read
        return {"status": {"status": "read", "mids": mids, "watermark": r.get("watermark")}}
    return None


def split(payload: Any, key_of: KeyOf, platforms: frozenset[str]) -> Iterator[dict[str, Any]]:
    """Spool entries of a webhook payload: {"platform", "customer_key", "message"|"status"}."""
    if not isinstance(payload, dict):
        raise ValueError("not a Messenger Platform webhook")
    platform = PLATFORMS.get(str(payload.get("object")))
    if platform is None or platform not in platforms:
        raise ValueError(f"webhook object {payload.get('object')!r} is not handled here")
    for entry in payload.get("entry") or []:
        for ev in entry.get("messaging") or []:
            if not isinstance(ev, dict):
                continue
            item = _event(platform, ev)
            sender = str((ev.get("sender") or {}).get("id") or "")
            if item is None or not sender:
                continue
            # Receipts come from the customer's side too: the sender is the customer.
            yield {"platform": platform, "customer_key": key_of(platform, sender), **item}


def incoming(entry: dict[str, Any]) -> Incoming:
    """The gateway's `Incoming` for a stored message entry."""
    m = entry["message"]
    sender = str(m["from"])
    base = Incoming(
        channel=str(entry["platform"]),
        user_id=sender,
        chat_id=sender,
        message_id=str(m.get("id") or "") or None,
    )
    if m.get("button"):
        return replace(base, button=str(m["button"]))
    if m.get("media"):
        return replace(base, media=str(m["media"]))
    return replace(base, text=typed(str(m.get("text") or "")))
