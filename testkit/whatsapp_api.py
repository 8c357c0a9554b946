"""A fake WhatsApp Cloud API (Graph API) for tests and the benchmark, on 127.0.0.1.

What it checks, as the real API does:

- ``POST /v{version}/{phone_number_id}/messages`` with ``Authorization: Bearer <token>``
  (401, code 190, otherwise) for this business number (400, code 100, for another);
- the payload's limits: text bodies up to 4,096 characters, interactive bodies up to
  1,024, 1 to 3 reply buttons with titles up to 20 characters and distinct ids, lists of
  1 to 10 rows in all with row titles up to 24 characters and descriptions up to 72, list
  and "visit website" button labels up to 20, images by link or id, templates by name and
  language; anything else is answered 400 in the Graph API's own error shape
  ``{"error": {"message", "type": "OAuthException", "code", "error_subcode",
  "fbtrace_id", "error_data": {"messaging_product", "details"}}}``;
- the 24-hour customer-service window: a non-template message to a customer who has not
  written in 24 hours is refused with 131047 (re-engagement message);
- injected faults: rate limits (130429, or a plain HTTP 429), permanent errors
  (131026 undeliverable) for the next N sends, and an optional throughput limit per
  second (130429 over it), as a business number has.

It records every accepted send, and plays the customer's side: it pushes webhooks to the
adapter (signed with the app secret, unsigned, or wrongly signed) for texts, button and
list replies, media, and delivery statuses (sent, delivered, read, failed).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx

from testkit.fakechannel import FakeChannelAPI
from testkit.fakehttp import Reply, Request, json_reply

JSONDict = dict[str, Any]
DEFAULT_TOKEN = "fake-whatsapp-token"
DEFAULT_SECRET = "fake-whatsapp-app-secret"
DEFAULT_PHONE_ID = "100000000000001"
DEFAULT_NUMBER = "31200000000"
WINDOW_S = 24 * 3600
LIMITS = {
    "text": 4096,
    "body": 1024,
    "button_title": 20,
    "max_buttons": 3,
    "button_id": 256,
    "row_title": 24,
    "row_description": 72,
    "row_id": 200,
    "max_rows": 10,
    "list_button": 20,
    "section_title": 24,
}
ERROR_TITLES = {
    100: "Invalid parameter",
    190: "Invalid OAuth access token",
    130429: "Rate limit hit",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    132001: "Template name does not exist in the translation",
}


@dataclass
class SentMessage:
    """A message the fake accepted."""

    id: str
    to: str
    type: str
    payload: JSONDict
    at: float = field(default_factory=time.time)

    @property
    def text(self) -> str:
        """What the customer reads: a text body, an interactive body, or a template name."""
        if self.type == "text":
            return str(self.payload["text"]["body"])
        if self.type == "interactive":
            return str(self.payload["interactive"]["body"]["text"])
        if self.type == "template":
            return f"[template {self.payload['template']['name']}]"
        return ""

    @property
    def choices(self) -> list[tuple[str, str]]:
        """(id, title) of the reply buttons or list rows the customer can press."""
        inter = self.payload.get("interactive") or {}
        action = inter.get("action") or {}
        if inter.get("type") == "button":
            return [(b["reply"]["id"], b["reply"]["title"]) for b in action["buttons"]]
        if inter.get("type") == "list":
            return [(r["id"], r["title"]) for s in action["sections"] for r in s["rows"]]
        return []


class GraphError(Exception):
    def __init__(self, code: int, details: str, status: int = 400, subcode: int | None = None):
        super().__init__(details)
        self.code, self.details, self.status, self.subcode = code, details, status, subcode

    def body(self) -> JSONDict:
        title = ERROR_TITLES.get(self.code, "Error")
        return {
            "error": {
                "message": f"(#{self.code}) {title}",
                "type": "OAuthException",
                "code": self.code,
                "error_subcode": self.subcode,
                "error_data": {"messaging_product": "whatsapp", "details": self.details},
                "fbtrace_id": secrets.token_urlsafe(9),
            }
        }


def signature(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 header Meta sends with a webhook."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _check_len(value: Any, limit: int, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise GraphError(100, f"{what} is required")
    if len(value) > limit:
        raise GraphError(100, f"{what} is too long: {len(value)} characters, at most {limit}")
    return value


def validate(payload: JSONDict) -> str:
    """Check a send request as the Cloud API does; returns its type."""
    if payload.get("messaging_product") != "whatsapp":
        raise GraphError(100, "messaging_product must be 'whatsapp'")
    if not str(payload.get("to") or "").strip():
        raise GraphError(100, "'to' is required")
    kind = str(payload.get("type") or "text")
    if kind == "text":
        _check_len((payload.get("text") or {}).get("body"), LIMITS["text"], "text.body")
    elif kind == "image":
        image = payload.get("image") or {}
        if not (image.get("link") or image.get("id")):
            raise GraphError(100, "image needs a link or an id")
    elif kind == "template":
        template = payload.get("template") or {}
        _check_len(template.get("name"), 512, "template.name")
        _check_len((template.get("language") or {}).get("code"), 16, "template.language.code")
    elif kind == "interactive":
        _validate_interactive(payload.get("interactive") or {})
    else:
        raise GraphError(100, f"message type '{kind}' is not supported by this fake")
    return kind


def _validate_interactive(inter: JSONDict) -> None:
    kind = inter.get("type")
    _check_len((inter.get("body") or {}).get("text"), LIMITS["body"], "interactive.body.text")
    action = inter.get("action") or {}
    if kind == "button":
        buttons = action.get("buttons") or []
        if not 1 <= len(buttons) <= LIMITS["max_buttons"]:
            raise GraphError(100, f"buttons: {len(buttons)} given, 1 to 3 allowed")
        ids = [str((b.get("reply") or {}).get("id") or "") for b in buttons]
        for b in buttons:
            reply = b.get("reply") or {}
            _check_len(reply.get("title"), LIMITS["button_title"], "button title")
            _check_len(reply.get("id"), LIMITS["button_id"], "button id")
        if len(set(ids)) != len(ids):
            raise GraphError(100, "button ids must be unique")
    elif kind == "list":
        _check_len(action.get("button"), LIMITS["list_button"], "list button")
        sections = action.get("sections") or []
        rows = [r for s in sections for r in (s.get("rows") or [])]
        if not sections or not 1 <= len(rows) <= LIMITS["max_rows"]:
            raise GraphError(100, f"list rows: {len(rows)} given, 1 to 10 allowed in all")
        for s in sections:
            if len(sections) > 1 or s.get("title"):
                _check_len(s.get("title"), LIMITS["section_title"], "section title")
        ids = [str(r.get("id") or "") for r in rows]
        for r in rows:
            _check_len(r.get("title"), LIMITS["row_title"], "row title")
            _check_len(r.get("id"), LIMITS["row_id"], "row id")
            if r.get("description") is not None:
                _check_len(r["description"], LIMITS["row_description"], "row description")
        if len(set(ids)) != len(ids):
            raise GraphError(100, "row ids must be unique")
    elif kind == "cta_url":
        params = action.get("parameters") or {}
        _check_len(params.get("display_text"), LIMITS["button_title"], "display_text")
        url = str(params.get("url") or "")
        if not url.startswith(("https://", "http://")):
            raise GraphError(100, "cta_url needs an http(s) url")
    else:
        raise GraphError(100, f"interactive type '{kind}' is not supported by this fake")


class FakeWhatsAppAPI(FakeChannelAPI[SentMessage]):
    """The Cloud API of one business number, and its customers' side of the chats."""

    backlog = 256  # the sender opens up to 64 connections at once
    thread_name = "fake-whatsapp"
    signature_header = "X-Hub-Signature-256"
    wrong_secret = "not-the-app-secret"

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        app_secret: str = DEFAULT_SECRET,
        phone_number_id: str = DEFAULT_PHONE_ID,
        display_number: str = DEFAULT_NUMBER,
        webhook_url: str | None = None,
        max_per_second: float = 0,
        enforce_window: bool = True,
    ) -> None:
        super().__init__(webhook_url)
        self.token, self.app_secret = token, app_secret
        self.phone_number_id, self.display_number = phone_number_id, display_number
        self.max_per_second = max_per_second
        self.enforce_window = enforce_window
        self.reset()

    # ------------------------------------------------------------------ lifecycle

    def reset(self) -> None:
        """Forget sends, windows, faults and counters."""
        with self._lock:
            self.sent = []
            self.refused: list[tuple[JSONDict, JSONDict]] = []
            self._last_inbound: dict[str, float] = {}
            self._faults: deque[tuple[int, int]] = deque()  # (code, http status)
            self._recent: deque[float] = deque()
            self._ids = itertools.count(1)
            self.requests = 0

    def sign(self, body: bytes, secret: str | None = None) -> str:
        return signature(secret or self.app_secret, body)

    # ------------------------------------------------------------------ the API side

    def handle(self, request: Request) -> Reply:
        if request.method != "POST":
            return json_reply(501, {"error": f"{request.method} is not served here"})
        path = urllib.parse.urlsplit(request.path).path.strip("/").split("/")
        return json_reply(
            *self._handle(path, request.headers.get("authorization", ""), request.body)
        )

    def _handle(self, path: list[str], auth: str, body: bytes) -> tuple[int, JSONDict]:
        with self._lock:
            self.requests += 1
        try:
            if len(path) != 3 or not path[0].startswith("v") or path[2] != "messages":
                raise GraphError(100, "unknown path", status=404)
            if not hmac.compare_digest(auth.encode(), f"Bearer {self.token}".encode()):
                raise GraphError(190, "invalid access token", status=401)
            if path[1] != self.phone_number_id:
                raise GraphError(100, f"unknown phone number id {path[1]}")
            try:
                payload = json.loads(body)
            except ValueError:
                raise GraphError(100, "the body is not JSON") from None
            if not isinstance(payload, dict):
                raise GraphError(100, "the body must be a JSON object")
            kind = validate(payload)
            return 200, self._accept(payload, kind)
        except GraphError as exc:
            with self._lock:
                self.refused.append(({"path": "/".join(path)}, exc.body()))
            return exc.status, exc.body()

    def _accept(self, payload: JSONDict, kind: str) -> JSONDict:
        to = str(payload["to"])
        now = time.time()
        with self._lock:
            if self._faults:
                code, status = self._faults.popleft()
                if status == 429:
                    raise GraphError(130429, "too many requests", status=429)
                raise GraphError(code, ERROR_TITLES.get(code, "injected error"))
            if self.max_per_second > 0:
                while self._recent and self._recent[0] <= now - 1.0:
                    self._recent.popleft()
                if len(self._recent) >= self.max_per_second:
                    raise GraphError(130429, "throughput limit of this business number")
                self._recent.append(now)
            if self.enforce_window and kind != "template":
                last = self._last_inbound.get(to)
                if last is None or now - last >= WINDOW_S:
                    raise GraphError(131047, "more than 24 hours since the customer last replied")
            mid = f"wamid.fake{next(self._ids):08d}{secrets.token_hex(4)}"
            self.sent.append(SentMessage(mid, to, kind, payload, now))
            self._lock.notify_all()
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": mid}],
        }

    def fail_next(self, code: int, times: int = 1, *, http_status: int = 400) -> None:
        """The next `times` sends fail with `code` (e.g. 130429, 131026; 429 for HTTP 429)."""
        with self._lock:
            self._faults.extend([(code, http_status)] * times)

    def open_window(self, wa_id: str, *, hours_ago: float = 0.0) -> None:
        """The customer wrote `hours_ago` (what pushing a message does with 0)."""
        with self._lock:
            self._last_inbound[wa_id] = time.time() - hours_ago * 3600

    def close_window(self, wa_id: str) -> None:
        """The customer last wrote more than 24 hours ago."""
        self.open_window(wa_id, hours_ago=25)

    # ------------------------------------------------------------------ the customer side

    def _envelope(self, value: JSONDict) -> JSONDict:
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": self.display_number,
                "phone_number_id": self.phone_number_id,
            },
            **value,
        }
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": "WABA_ID", "changes": [{"value": value, "field": "messages"}]}],
        }

    def message_payload(
        self, wa_id: str, content: JSONDict, *, name: str = "Sam", message_id: str | None = None
    ) -> JSONDict:
        """A webhook payload of one customer message (`content` holds type and body)."""
        message = {
            "from": wa_id,
            "id": message_id or f"wamid.in{secrets.token_hex(8)}",
            "timestamp": str(int(time.time())),
            **content,
        }
        return self._envelope(
            {"contacts": [{"profile": {"name": name}, "wa_id": wa_id}], "messages": [message]}
        )

    def _push(self, wa_id: str, content: JSONDict, **kw: Any) -> str:
        payload = self.message_payload(wa_id, content, **kw)
        self.open_window(wa_id)
        resp = self.post_webhook(payload)
        resp.raise_for_status()
        return str(payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"])

    def push_text(self, wa_id: str, text: str, **kw: Any) -> str:
        """The customer types `text`; returns the message id."""
        return self._push(wa_id, {"type": "text", "text": {"body": text}}, **kw)

    def press(self, wa_id: str, choice_id: str, title: str = "", **kw: Any) -> str:
        """The customer presses a reply button or picks a list row with this id."""
        for m in reversed(self.sent_to(wa_id)):
            for cid, ctitle in m.choices:
                if cid == choice_id:
                    kind = m.payload["interactive"]["type"]
                    reply = "button_reply" if kind == "button" else "list_reply"
                    content = {
                        "type": "interactive",
                        "interactive": {"type": reply, reply: {"id": cid, "title": ctitle}},
                    }
                    return self._push(wa_id, content, **kw)
        content = {  # a forged or unknown id, as a customer's client could send it
            "type": "interactive",
            "interactive": {
                "type": "button_reply",
                "button_reply": {"id": choice_id, "title": title},
            },
        }
        return self._push(wa_id, content, **kw)

    def press_title(self, wa_id: str, title: str, **kw: Any) -> str:
        """Press the latest choice shown with this title (case-insensitive prefix)."""
        for m in reversed(self.sent_to(wa_id)):
            for cid, ctitle in m.choices:
                if ctitle.lower().startswith(title.lower()):
                    return self.press(wa_id, cid, **kw)
        raise LookupError(f"no choice titled {title!r} was shown to {wa_id}")

    def push_media(self, wa_id: str, kind: str, *, voice: bool = False, **kw: Any) -> str:
        """The customer sends an image, audio (a voice note with voice=True), sticker,
        video, document or location."""
        if kind == "location":
            content: JSONDict = {
                "type": "location",
                "location": {"latitude": 52.37, "longitude": 4.89, "name": "Home"},
            }
        else:
            media: JSONDict = {"id": f"media{secrets.token_hex(6)}", "mime_type": "x/x"}
            if kind == "audio":
                media["voice"] = voice
            content = {"type": kind, kind: media}
        return self._push(wa_id, content, **kw)

    def status_payload(
        self, message_id: str, status: str, *, error_code: int | None = None
    ) -> JSONDict:
        with self._lock:
            to = next((m.to for m in self.sent if m.id == message_id), "0")
        st: JSONDict = {
            "id": message_id,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": to,
        }
        if error_code is not None:
            st["errors"] = [{"code": error_code, "title": ERROR_TITLES.get(error_code, "Error")}]
        return self._envelope({"statuses": [st]})

    def push_status(self, message_id: str, status: str, *, error_code: int | None = None) -> None:
        """WhatsApp reports a sent message as sent, delivered, read or failed."""
        resp = self.post_webhook(self.status_payload(message_id, status, error_code=error_code))
        resp.raise_for_status()

    def verify(self, verify_token: str, challenge: str = "1158201444") -> httpx.Response:
        """Meta's subscription handshake against the adapter's webhook URL."""
        params = {
            "hub.mode": "subscribe",
            "hub.verify_token": verify_token,
            "hub.challenge": challenge,
        }
        return self.get_webhook(params)
