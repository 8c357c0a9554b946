"""Read X's Account Activity webhook payloads: customer DMs as the gateway's `Incoming`.

Pure functions: the webhook stores, the processor acts. A payload is split into one entry
per `message_create` event written *to* us (our own sends come back as events too, with
our user id as sender: skipped), minimised to what Earshot uses, typed text redacted, so
what waits on disk holds no more personal data than needed and erasure finds it by key.
Typing indicators and read receipts (`direct_message_indicate_typing_events`,
`direct_message_mark_read_events`) and every other activity are ignored.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from earshot.gateway.model import Incoming

# Typed commands (STOP words, erasure phrases) and deep-link codes are every text channel's.
from earshot.gateway.texts import DEEP_LINK, typed
from earshot.outreach.links import language_of_prefill
from earshot.privacy.redaction import redact

log = logging.getLogger("earshot.xdm.inbound")
CHANNEL = "x"
MEDIA_KINDS = {"photo": "photo", "animated_gif": "animation", "video": "video"}


def _minimal(event: dict[str, Any]) -> dict[str, Any] | None:
    """What Earshot needs of one DM event, its typed text redacted; None if not a DM."""
    if event.get("type") != "message_create" or not event.get("id"):
        return None
    create = event.get("message_create") or {}
    data = create.get("message_data") or {}
    sender = str(create.get("sender_id") or "")
    if not sender:
        return None
    # X may deliver &, < and > escaped as HTML entities (as in Tweets): read what was typed.
    text = html.unescape(str(data.get("text") or ""))
    out: dict[str, Any] = {"id": str(event["id"]), "sender_id": sender}
    attachment = data.get("attachment") or {}
    if attachment.get("type") == "media":
        media = attachment.get("media") or {}
        out["media"] = MEDIA_KINDS.get(str(media.get("type") or ""), "other")
        out["media_id"] = str(media.get("id_str") or media.get("id") or "") or None
        # X puts the media's t.co link at the end of the text: it is not what was typed.
        link = str(media.get("url") or "")
        if link:
            text = text.replace(link, "")
    reply = data.get("quick_reply_response") or {}
    if reply.get("type") == "options" and reply.get("metadata"):
        out["button"] = str(reply["metadata"])
    else:
        out["text"] = redact(text.strip())
    return out


def split(
    payload: Any, *, our_user_id: str, key_of: Callable[[str], str]
) -> Iterator[dict[str, Any]]:
    """Spool entries of a webhook payload: {"customer_key", "message", "name"}."""
    if not isinstance(payload, dict):
        raise ValueError("not an Account Activity payload")
    for_user = str(payload.get("for_user_id") or "")
    if for_user and for_user != our_user_id:
        # Another account subscribed to this app's webhook: not ours to answer (nor to
        # refuse, or X would retry it).
        log.warning("Account Activity for another account (%s) ignored", for_user)
        return
    raw_users = payload.get("users")
    users: dict[str, Any] = raw_users if isinstance(raw_users, dict) else {}
    for event in payload.get("direct_message_events") or []:
        if not isinstance(event, dict):
            continue
        message = _minimal(event)
        if message is None or message["sender_id"] == our_user_id:
            continue  # not a DM, or one we sent (X echoes our own sends)
        user = users.get(message["sender_id"]) or {}
        name = user.get("screen_name") if isinstance(user, dict) else None
        yield {
            "customer_key": key_of(message["sender_id"]),
            "message": message,
            "name": f"@{name}" if name else None,
        }


def incoming(entry: dict[str, Any]) -> Incoming:
    """The gateway's `Incoming` for a stored entry."""
    m = entry["message"]
    sender = str(m["sender_id"])
    base = Incoming(
        channel=CHANNEL,
        user_id=sender,
        chat_id=sender,
        message_id=str(m["id"]),
        display_name=entry.get("name"),
    )
    if m.get("button"):
        return replace(base, button=str(m["button"]))
    raw = str(m.get("text") or "")
    text = typed(raw)
    if text.startswith("/start ") and DEEP_LINK.search(raw):
        # The link was made for a language: answer in it from the first message on.
        base = replace(base, language_hint=language_of_prefill(raw))
    if m.get("media") and not text:
        return replace(base, media=str(m["media"]), media_id=m.get("media_id"))
    return replace(base, text=text, media=m.get("media"), media_id=m.get("media_id"))
