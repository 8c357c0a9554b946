"""A fake Messenger Platform (Send API and webhooks, Messenger and Instagram) for tests.

What it checks, as the real API does:

- ``POST /v{version}/me/messages`` with the Page access token (``Authorization: Bearer``;
  else code 190); the body's ``recipient.id``, ``messaging_type`` (RESPONSE, UPDATE or
  MESSAGE_TAG with a ``tag``) and ``message``;
- the limits: text up to 2,000 characters (Instagram 1,000), 1 to 13 quick replies with
  titles of 1 to 20 characters and payloads up to 1,000, button templates with a text up
  to 640 characters and 1 to 3 buttons (postback or web_url, titles up to 20), image
  attachments by URL; anything else is answered 400 in the Graph API's error shape
  ``{"error": {"message", "type": "OAuthException", "code", "error_subcode", "fbtrace_id"}}``;
- the 24-hour standard messaging window: a message without a tag to a customer who has
  not written for 24 hours is refused with code 10, subcode 2018278; a tag Meta does not
  allow (any but HUMAN_AGENT on Instagram; unknown ones) with code 100;
- injected faults for the next sends: rate limits (613, 4, 32) and permanent errors
  (551 person unavailable, 10 outside the window, 100);
- sender actions (typing_on, typing_off, mark_seen), recorded apart from messages.

It records every accepted send and plays the customer's side: signed (or unsigned, or
wrongly signed) webhooks for texts, quick replies, postbacks, m.me/ig.me referrals, Get
Started, attachments, delivery and read receipts. The HTTP server, window bookkeeping and
webhook posting are the fake WhatsApp Cloud API's (both are Graph API fakes).
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections import deque
from typing import Any

from testkit.whatsapp_api import FakeWhatsAppAPI, GraphError, SentMessage

JSONDict = dict[str, Any]
DEFAULT_TOKEN = "fake-page-access-token"
DEFAULT_SECRET = "fake-messenger-app-secret"
PAGE_ID = "100000000000077"
IG_ID = "17841400000000077"
WINDOW_S = 24 * 3600
LIMITS = {
    "text": 2000,
    "instagram_text": 1000,
    "quick_replies": 13,
    "title": 20,
    "payload": 1000,
    "template_text": 640,
    "template_buttons": 3,
}
TAGS = {"ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "HUMAN_AGENT"}
INSTAGRAM_TAGS = {"HUMAN_AGENT"}
MESSAGES = {
    4: "Application request limit reached",
    10: "This message is sent outside of allowed window.",
    32: "Page request limit reached",
    100: "Invalid parameter",
    190: "Invalid OAuth access token",
    551: "This person isn't available right now.",
    613: "Calls to this api have exceeded the rate limit.",
}


class MessengerError(GraphError):
    """A Send API refusal in the Graph API's error shape."""

    def body(self) -> JSONDict:
        return {
            "error": {
                "message": f"(#{self.code}) {MESSAGES.get(self.code, self.details)}",
                "type": "OAuthException",
                "code": self.code,
                "error_subcode": self.subcode,
                "fbtrace_id": secrets.token_urlsafe(9),
            }
        }


class SentMessengerMessage(SentMessage):
    """A message the fake accepted; `type` is text, quick_replies, buttons or image."""

    @property
    def text(self) -> str:
        message = self.payload["message"]
        if "text" in message:
            return str(message["text"])
        payload = (message.get("attachment") or {}).get("payload") or {}
        return str(payload.get("text") or "")

    @property
    def choices(self) -> list[tuple[str, str]]:
        """(payload, title) of the quick replies or postback buttons shown."""
        message = self.payload["message"]
        if message.get("quick_replies"):
            return [(q["payload"], q["title"]) for q in message["quick_replies"]]
        buttons = ((message.get("attachment") or {}).get("payload") or {}).get("buttons") or []
        return [(b["payload"], b["title"]) for b in buttons if b["type"] == "postback"]

    @property
    def links(self) -> list[tuple[str, str]]:
        message = self.payload["message"]
        buttons = ((message.get("attachment") or {}).get("payload") or {}).get("buttons") or []
        return [(b["url"], b["title"]) for b in buttons if b["type"] == "web_url"]


def _check(value: Any, limit: int, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MessengerError(100, f"{what} is required")
    if len(value) > limit:
        raise MessengerError(100, f"{what} is too long: {len(value)} characters, at most {limit}")
    return value


def validate(payload: JSONDict, *, instagram: bool) -> str:
    """Check a Send API request's message; returns its kind."""
    message = payload.get("message")
    if not isinstance(message, dict):
        raise MessengerError(100, "message is required")
    if "text" in message:
        _check(message["text"], LIMITS["instagram_text" if instagram else "text"], "message.text")
        quick = message.get("quick_replies")
        if quick is None:
            return "text"
        if not isinstance(quick, list) or not 1 <= len(quick) <= LIMITS["quick_replies"]:
            raise MessengerError(100, "quick_replies: 1 to 13 items")
        for q in quick:
            if q.get("content_type") != "text":
                raise MessengerError(100, "quick_replies[].content_type must be text")
            _check(q.get("title"), LIMITS["title"], "quick_replies[].title")
            _check(q.get("payload"), LIMITS["payload"], "quick_replies[].payload")
        return "quick_replies"
    attachment = message.get("attachment") or {}
    kind, body = attachment.get("type"), attachment.get("payload") or {}
    if kind == "image":
        if not str(body.get("url") or "").startswith(("http://", "https://")):
            raise MessengerError(100, "attachment.payload.url must be an http(s) URL")
        return "image"
    if kind == "template" and body.get("template_type") == "button":
        _check(body.get("text"), LIMITS["template_text"], "payload.text")
        buttons = body.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= LIMITS["template_buttons"]:
            raise MessengerError(100, "payload.buttons: 1 to 3 buttons")
        for b in buttons:
            _check(b.get("title"), LIMITS["title"], "buttons[].title")
            if b.get("type") == "postback":
                _check(b.get("payload"), LIMITS["payload"], "buttons[].payload")
            elif b.get("type") == "web_url":
                if not str(b.get("url") or "").startswith(("http://", "https://")):
                    raise MessengerError(100, "buttons[].url must be an http(s) URL")
            else:
                raise MessengerError(100, f"button type {b.get('type')!r} is not supported")
        return "buttons"
    raise MessengerError(100, "message needs text or a supported attachment")


class FakeMessengerAPI(FakeWhatsAppAPI):
    """The Send API of one Page (and its Instagram account), and its customers' side."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        app_secret: str = DEFAULT_SECRET,
        webhook_url: str | None = None,
        enforce_window: bool = True,
    ) -> None:
        super().__init__(
            token=token,
            app_secret=app_secret,
            webhook_url=webhook_url,
            enforce_window=enforce_window,
        )

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.instagram: set[str] = set()  # recipients who wrote on Instagram
            self.actions: list[tuple[str, str]] = []  # (recipient, sender action)
            self._errors: deque[tuple[int, int | None]] = deque()

    # ------------------------------------------------------------------ the API side

    def _handle(self, path: list[str], auth: str, body: bytes) -> tuple[int, JSONDict]:
        with self._lock:
            self.requests += 1
        try:
            if len(path) != 3 or not path[0].startswith("v") or path[1:] != ["me", "messages"]:
                raise MessengerError(100, "unknown path", status=404)
            if not hmac.compare_digest(auth.encode(), f"Bearer {self.token}".encode()):
                raise MessengerError(190, "invalid access token")
            try:
                payload = json.loads(body)
            except ValueError:
                raise MessengerError(100, "the body is not JSON") from None
            if not isinstance(payload, dict):
                raise MessengerError(100, "the body must be a JSON object")
            return 200, self._accept(payload, "")
        except GraphError as exc:
            with self._lock:
                self.refused.append(({"path": "/".join(path)}, exc.body()))
            return exc.status, exc.body()

    def _accept(self, payload: JSONDict, kind: str) -> JSONDict:
        to = str((payload.get("recipient") or {}).get("id") or "")
        if not to:
            raise MessengerError(100, "recipient.id is required")
        instagram = to in self.instagram
        if "sender_action" in payload:
            return self._action(to, payload)
        kind = validate(payload, instagram=instagram)
        mtype, tag = payload.get("messaging_type"), payload.get("tag")
        if mtype not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
            raise MessengerError(100, "messaging_type must be RESPONSE, UPDATE or MESSAGE_TAG")
        if mtype == "MESSAGE_TAG" and tag not in (INSTAGRAM_TAGS if instagram else TAGS):
            raise MessengerError(100, f"tag {tag!r} is not allowed here", subcode=2018344)
        now = time.time()
        with self._lock:
            if self._errors:
                code, subcode = self._errors.popleft()
                raise MessengerError(code, MESSAGES.get(code, "injected"), subcode=subcode)
            if self.enforce_window and mtype != "MESSAGE_TAG":
                last = self._last_inbound.get(to)
                if last is None or now - last >= WINDOW_S:
                    raise MessengerError(10, "outside the window", subcode=2018278)
            mid = f"m_fake{next(self._ids):08d}{secrets.token_hex(6)}"
            self.sent.append(SentMessengerMessage(mid, to, kind, payload, now))
            self._lock.notify_all()
        return {"recipient_id": to, "message_id": mid}

    def _action(self, to: str, payload: JSONDict) -> JSONDict:
        """typing_on, typing_off or mark_seen: inside the window only, never with a message."""
        action = payload.get("sender_action")
        if action not in ("typing_on", "typing_off", "mark_seen") or "message" in payload:
            raise MessengerError(100, "sender_action must be typing_on, typing_off or mark_seen")
        with self._lock:
            last = self._last_inbound.get(to)
            if self.enforce_window and (last is None or time.time() - last >= WINDOW_S):
                raise MessengerError(10, "outside the window", subcode=2018278)
            self.actions.append((to, str(action)))
        return {"recipient_id": to}

    def fail_next(self, code: int, times: int = 1, *, subcode: int | None = None) -> None:  # type: ignore[override]
        """The next `times` sends fail with `code` (613, 4, 32 rate limits; 551, 10, 100)."""
        with self._lock:
            self._errors.extend([(code, subcode)] * times)

    def sent_to(self, psid: str) -> list[SentMessengerMessage]:  # type: ignore[override]
        with self._lock:
            return [m for m in self.sent if m.to == psid and isinstance(m, SentMessengerMessage)]

    # ------------------------------------------------------------------ the customer side

    def event_payload(self, psid: str, event: JSONDict, *, platform: str = "messenger") -> JSONDict:
        """A webhook payload with one `messaging` event from customer `psid`."""
        now_ms = int(time.time() * 1000)
        own = IG_ID if platform == "instagram" else PAGE_ID
        event = {"sender": {"id": psid}, "recipient": {"id": own}, "timestamp": now_ms, **event}
        return {
            "object": "instagram" if platform == "instagram" else "page",
            "entry": [{"id": own, "time": now_ms, "messaging": [event]}],
        }

    def push(self, psid: str, event: JSONDict, *, platform: str = "messenger") -> JSONDict:
        """The customer does something that opens the window; the signed webhook is posted."""
        if platform == "instagram":
            with self._lock:
                self.instagram.add(psid)
        payload = self.event_payload(psid, event, platform=platform)
        self.open_window(psid)
        self.post_webhook(payload).raise_for_status()
        return payload

    def push_text(self, psid: str, text: str, *, platform: str = "messenger") -> str:  # type: ignore[override]
        """The customer types `text`; returns the message id."""
        mid = f"m_in{secrets.token_hex(10)}"
        self.push(psid, {"message": {"mid": mid, "text": text}}, platform=platform)
        return mid

    def press_title(self, psid: str, title: str, *, platform: str = "messenger") -> str:  # type: ignore[override]
        """Tap the latest quick reply or postback button with this title (prefix)."""
        for m in reversed(self.sent_to(psid)):
            for payload, shown in m.choices:
                if shown.lower().startswith(title.lower()):
                    return self.tap(psid, m, payload, shown, platform=platform)
        raise LookupError(f"no choice titled {title!r} was shown to {psid}")

    def tap(
        self,
        psid: str,
        shown_in: SentMessengerMessage | None,
        payload: str,
        title: str = "",
        *,
        platform: str = "messenger",
    ) -> str:
        """A quick reply (a message with its payload) or a postback button (a postback)."""
        mid = f"m_in{secrets.token_hex(10)}"
        if shown_in is not None and shown_in.type == "quick_replies":
            event = {"message": {"mid": mid, "text": title, "quick_reply": {"payload": payload}}}
        else:
            event = {"postback": {"mid": mid, "title": title, "payload": payload}}
        self.push(psid, event, platform=platform)
        return mid

    def push_referral(self, psid: str, ref: str, *, platform: str = "messenger") -> None:
        """The customer opens m.me/<page>?ref=<ref> on an existing thread."""
        referral = {"ref": ref, "source": "SHORTLINK", "type": "OPEN_THREAD"}
        self.push(psid, {"referral": referral}, platform=platform)

    def push_get_started(self, psid: str, ref: str | None = None) -> None:
        """A new customer taps Get Started (from an m.me link with `ref`, if given)."""
        postback: JSONDict = {"title": "Get Started", "payload": "GET_STARTED"}
        if ref:
            postback["referral"] = {"ref": ref, "source": "SHORTLINK", "type": "OPEN_THREAD"}
        self.push(psid, {"postback": postback})

    def push_media(  # type: ignore[override]
        self, psid: str, kind: str, *, platform: str = "messenger"
    ) -> str:
        """The customer sends an image, audio, video, file or sticker."""
        mid = f"m_in{secrets.token_hex(10)}"
        url = f"https://cdn.fake.example/{secrets.token_hex(6)}"
        message: JSONDict = {"mid": mid, "attachments": [{"type": kind, "payload": {"url": url}}]}
        if kind == "sticker":
            message = {
                "mid": mid,
                "sticker_id": 369239263222822,
                "attachments": [
                    {"type": "image", "payload": {"url": url, "sticker_id": 369239263222822}}
                ],
            }
        self.push(psid, {"message": message}, platform=platform)
        return mid

    def push_receipt(
        self, psid: str, status: str, *, mids: list[str] | None = None, platform: str = "messenger"
    ) -> None:
        """Meta reports our messages to `psid` delivered or read (up to now)."""
        watermark = int(time.time() * 1000)
        if status == "delivered":
            event: JSONDict = {"delivery": {"mids": mids or [], "watermark": watermark}}
        elif platform == "instagram":
            event = {"read": {"mid": (mids or [""])[0]}}
        else:
            event = {"read": {"watermark": watermark}}
        payload = self.event_payload(psid, event, platform=platform)
        self.post_webhook(payload).raise_for_status()
