"""Read WhatsApp's webhook payloads: customer messages (as the gateway's `Incoming`) and
delivery statuses. Pure functions: the webhook stores, the processor acts.

A payload is split into one entry per message or status, each minimised to what Earshot
uses (typed text redacted, locations and contact cards reduced to their kind), so what
waits on disk holds no more personal data than needed and erasure finds it by key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from earshot.gateway.model import Incoming
from earshot.privacy.redaction import redact

CHANNEL = "whatsapp"
# "Feedback Lumen Bulb [fb-bulb]": the prefilled text of a wa.me deep link (see
# earshot/outreach/links.py); it starts the feedback flow as `/start fb-bulb` on Telegram.
DEEP_LINK = re.compile(r"\[((?:fb|c)-[a-z0-9_-]{1,64})\]\s*$", re.IGNORECASE)
# Whole messages that stop feedback asks (the /stop of Telegram), English and Dutch.
STOP_WORDS = frozenset(
    {"stop", "stoppen", "afmelden", "uitschrijven", "unsubscribe", "stop asking", "niet meer"}
)
# WhatsApp has no command menu: these typed phrases are the /deletemydata command.
ERASE_PHRASES = frozenset(
    {"delete my data", "verwijder mijn gegevens", "wis mijn gegevens", "deletemydata"}
)
# Not messages to answer: an emoji reaction to one of ours, a number change notice.
IGNORED = frozenset({"reaction", "system", "ephemeral"})
MEDIA_KINDS = {
    "image": "photo",
    "sticker": "sticker",
    "video": "video",
    "document": "document",
    "location": "location",
    "contacts": "contact",
}


@dataclass(frozen=True)
class Status:
    """A delivery status of a message we sent: sent, delivered, read or failed."""

    message_id: str
    status: str
    error_code: int | None = None


def _minimal(message: dict[str, Any]) -> dict[str, Any]:
    """What Earshot needs of one message, its typed text redacted."""
    kind = str(message.get("type") or "unknown")
    out: dict[str, Any] = {
        "id": message.get("id"),
        "from": message.get("from"),
        "timestamp": message.get("timestamp"),
        "type": kind,
    }
    if kind == "text":
        out["text"] = redact(str((message.get("text") or {}).get("body") or ""))
    elif kind == "interactive":
        inter = message.get("interactive") or {}
        chosen = inter.get("button_reply") or inter.get("list_reply") or {}
        out["button"] = str(chosen.get("id") or "")
    elif kind == "button":  # a template's quick reply
        out["text"] = redact(str((message.get("button") or {}).get("text") or ""))
    elif kind in ("audio", "image", "sticker", "video", "document"):
        media = message.get(kind) or {}
        out["media_id"] = media.get("id")
        out["voice"] = bool(media.get("voice")) if kind == "audio" else None
    return out


def split(payload: Any, key_of: Callable[[str], str]) -> Iterator[dict[str, Any]]:
    """Spool entries of a webhook payload: {"customer_key", "message"|"status", "name"}."""
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        raise ValueError("not a WhatsApp Business Account webhook")
    for entry in payload.get("entry") or []:
        for change in entry.get("changes") or []:
            value = change.get("value") or {}
            names = {
                str(c.get("wa_id")): str((c.get("profile") or {}).get("name") or "")
                for c in value.get("contacts") or []
                if isinstance(c, dict)
            }
            for message in value.get("messages") or []:
                if not isinstance(message, dict) or not message.get("from"):
                    continue
                if message.get("type") in IGNORED:
                    continue
                wa_id = str(message["from"])
                yield {
                    "customer_key": key_of(wa_id),
                    "message": _minimal(message),
                    "name": names.get(wa_id) or None,
                }
            for status in value.get("statuses") or []:
                if not isinstance(status, dict) or not status.get("id"):
                    continue
                errors = status.get("errors") or []
                code = errors[0].get("code") if errors and isinstance(errors[0], dict) else None
                recipient = str(status.get("recipient_id") or "")
                yield {
                    "customer_key": key_of(recipient) if recipient else None,
                    "status": {
                        "id": str(status["id"]),
                        "status": str(status.get("status") or ""),
                        "error_code": int(code) if code is not None else None,
                    },
                }


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


def incoming(entry: dict[str, Any]) -> Incoming:
    """The gateway's `Incoming` for a stored message entry."""
    m = entry["message"]
    wa_id = str(m["from"])
    base = Incoming(
        channel=CHANNEL,
        user_id=wa_id,
        chat_id=wa_id,
        message_id=str(m.get("id") or "") or None,
        display_name=entry.get("name"),
    )
    kind = m.get("type")
    if kind in ("text", "button"):
        return replace(base, text=typed(str(m.get("text") or "")))
    if kind == "interactive" and m.get("button"):
        return replace(base, button=str(m["button"]))
    if kind == "audio":
        media = "voice" if m.get("voice") else "audio"
        return replace(base, media=media, media_id=m.get("media_id"))
    return replace(base, media=MEDIA_KINDS.get(str(kind), "other"), media_id=m.get("media_id"))


def status(entry: dict[str, Any]) -> Status:
    s = entry["status"]
    return Status(str(s["id"]), str(s["status"]), s.get("error_code"))
