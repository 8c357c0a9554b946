"""The web chat's relay to Rasa's `earshot` channel, the same assistant as on Telegram.

As on Telegram, button payloads stay server-side: the page gets a short id per button,
bound to the visitor, so a visitor cannot post intents of their own making.
"""

from __future__ import annotations

import html
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.orm import Session

from earshot import i18n
from earshot.conversations import queries as conversations
from earshot.privacy.erasure import erase_customer, erase_spooled

log = logging.getLogger(__name__)

MAX_MESSAGE = 4000
MAX_BUTTONS = 12
# Typed commands, as the Telegram bot maps them (the dialogue decides what they do).
COMMAND_PAYLOADS = {
    "/start": "/start",
    "/help": "/help",
    "/privacy": "/privacy_policy",
    "/feedback": "/give_feedback",
    "/myfeedback": "/my_feedback",
    "/stop": "/stop_asking",
    "/deletemydata": "erase:choose",
}
# Payloads of the erasure steps: answered here (as the Telegram bot does), never sent to
# Rasa, and taken only from a command or a stored button, never from typed text.
ERASE_PREFIX = "erase:"


class RasaUnavailable(Exception):
    """Rasa did not answer (down, restarting, timed out or failed the turn)."""


@dataclass(frozen=True)
class Button:
    title: str
    payload: str

    @property
    def is_url(self) -> bool:
        return self.payload.startswith(("https://", "http://"))


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: list[Button]
    image: str | None = None


def command_payload(text: str) -> str | None:
    """The intent payload of a typed command, "" for an unknown one, None for plain text."""
    if not text.startswith("/"):
        return None
    return COMMAND_PAYLOADS.get(text.split()[0].lower(), "")


def parse_replies(data: Any) -> list[Reply]:
    """Rasa's messages reduced to what the page shows: text, buttons, an image URL."""
    replies = []
    for m in data if isinstance(data, list) else []:
        if not isinstance(m, dict):
            continue
        buttons = [
            Button(str(b.get("title", ""))[:80], str(b.get("payload") or b.get("url") or ""))
            for b in (m.get("buttons") or [])[:MAX_BUTTONS]
            if isinstance(b, dict)
        ]
        image = m.get("image")
        image = image if isinstance(image, str) and image.startswith("https://") else None
        text = str(m.get("text") or "")
        if text or buttons or image:
            replies.append(Reply(text, buttons, image))
    return replies


async def relay(
    *,
    rasa_url: str,
    sender: str,
    text: str,
    language: str,
    timeout: float,
    transport: httpx.AsyncBaseTransport | None = None,
    token: str = "",
) -> list[Reply]:
    """Post one visitor message to Rasa and return its replies."""
    body = {
        "sender": sender,
        "message": text,
        "metadata": {"channel": "web", "language": language, "chat_type": "private"},
    }
    url = rasa_url.rstrip("/") + "/webhooks/earshot/webhook"
    # A client per message: a web chat turn is slow next to a TCP handshake, and no pool
    # is then tied to one event loop.
    async with httpx.AsyncClient(
        transport=transport, timeout=httpx.Timeout(timeout, connect=3.0)
    ) as client:
        try:
            # Rasa's channel checks the shared secret (RASA_TOKEN) in this header.
            resp = await client.post(url, json=body, headers={"X-Earshot-Token": token})
        except httpx.HTTPError as exc:
            raise RasaUnavailable(str(exc) or type(exc).__name__) from exc
    if resp.status_code >= 400:
        raise RasaUnavailable(f"Rasa answered {resp.status_code}")
    try:
        return parse_replies(resp.json())
    except ValueError as exc:
        raise RasaUnavailable("Rasa answered with something other than JSON") from exc


def _plain(text: str) -> str:
    """An i18n text written for Telegram's HTML, as the page shows it (as text)."""
    return html.unescape(re.sub(r"</?[a-z]+>", "", text))


def erasure(
    session: Session, *, step: str, customer_key: str, language: str, spool_root: Path
) -> list[Reply]:
    """One step of /deletemydata: choose, confirm, erase; the same two choices as Telegram."""
    t = lambda key: _plain(i18n.text(key, language))  # noqa: E731
    cancel = Button(t("cancel_button"), ERASE_PREFIX + "cancel")
    if step == ERASE_PREFIX + "choose":
        return [
            Reply(
                t("delete_choose"),
                [
                    Button(t("delete_personal_button"), ERASE_PREFIX + "ask:personal"),
                    Button(t("delete_all_button"), ERASE_PREFIX + "ask:all"),
                    cancel,
                ],
            )
        ]
    choice = "all" if step.endswith(":all") else "personal"
    if step.startswith(ERASE_PREFIX + "ask:"):
        yes = Button(t("delete_yes_button"), f"{ERASE_PREFIX}do:{choice}")
        return [Reply(t(f"delete_confirm_{choice}"), [yes, cancel])]
    if step.startswith(ERASE_PREFIX + "do:"):
        report = erase_customer(session, customer_key=customer_key, everything=choice == "all")
        erase_spooled(spool_root, customer_key=customer_key)
        log.info("web chat: erased a visitor's data (everything=%s, rows=%d)", choice, report.total)
        return [Reply(t("deleted_all" if choice == "all" else "deleted_personal"), [])]
    return [Reply(t("delete_cancelled"), [])]


def store_buttons(session: Session, *, replies: list[Reply], customer_key: str) -> list[str]:
    """Keep the replies' payloads server-side; returns one "id:index" per non-URL button."""
    payloads = [b.payload for r in replies for b in r.buttons if not b.is_url]
    if not payloads:
        return []
    pid = conversations.store_payload(
        session, payload=json.dumps(payloads), customer_key=customer_key
    )
    return [f"{pid}:{i}" for i in range(len(payloads))]


def resolve_button(session: Session, *, ref: str, customer_key: str) -> str | None:
    """The payload behind a pressed button, or None when unknown, expired or not theirs."""
    pid, _, idx = ref.partition(":")
    if not pid or not idx.isdigit() or len(ref) > 64:
        return None
    stored = conversations.load_payload(session, pid=pid, customer_key=customer_key)
    if stored is None:
        return None
    try:
        return str(json.loads(stored)[int(idx)])
    except (ValueError, IndexError, TypeError):
        return None


def replies_json(replies: list[Reply], button_refs: list[str]) -> list[dict[str, Any]]:
    """The replies as the page's script expects them; URL buttons become links."""
    refs = iter(button_refs)
    out = []
    for r in replies:
        buttons = []
        for b in r.buttons:
            if b.is_url:
                buttons.append({"title": b.title, "url": b.payload})
            else:
                buttons.append({"title": b.title, "id": next(refs)})
        out.append({"text": r.text, "buttons": buttons, "image": r.image})
    return out
