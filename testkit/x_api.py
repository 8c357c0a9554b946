"""A fake X API for direct messages (v1.1 `direct_messages/events/new`), on 127.0.0.1,
and the customer's side: Account Activity webhooks pushed to the adapter.

What it checks, as X does:

- ``POST /1.1/direct_messages/events/new.json`` signed with OAuth 1.0a (HMAC-SHA1) by this
  app's consumer key and secret and the account's access token and secret: the signature
  is recomputed from the request's URL, nonce and timestamp (401, code 32 "Could not
  authenticate you.", otherwise);
- the event: type ``message_create``, a numeric ``target.recipient_id``, text of 1 to
  10,000 characters (354 over it), a Quick Reply of type ``options`` with 1 to 20 options,
  labels of 1 to 36 characters without URLs, descriptions up to 72 (on all options or
  none) and metadata up to 1,000; anything else is answered 400 with code 214, in X's
  error shape ``{"errors": [{"code": ..., "message": ...}]}``;
- the customer's DM settings: a user who does not accept our DMs gets 403, code 349
  ("You cannot send messages to this user.");
- injected faults: rate limits (429, code 88, with ``x-rate-limit-reset``) and other
  errors for the next N sends.

It records every accepted send and pushes Account Activity payloads (`for_user_id`,
`direct_message_events`, `users`) for texts, Quick Reply presses, media, typing
indicators, read receipts and the echo of our own sends, signed with the consumer secret
(``x-twitter-webhooks-signature``), unsigned or wrongly signed; and it runs the CRC check
against the adapter as X does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
from oauthlib.oauth1 import Client as OAuth1

from testkit.fakechannel import FakeChannelAPI
from testkit.fakehttp import Reply, Request, json_reply

JSONDict = dict[str, Any]
SEND_PATH = "/1.1/direct_messages/events/new.json"
DEFAULTS = {
    "consumer_key": "fake-x-consumer-key",
    "consumer_secret": "fake-x-consumer-secret",
    "access_token": "1500000000000000001-fakeaccesstoken",
    "access_token_secret": "fake-x-access-token-secret",
    "user_id": "1500000000000000001",
}
LIMITS = {"text": 10_000, "options": 20, "label": 36, "description": 72, "metadata": 1000}
MESSAGES = {
    32: "Could not authenticate you.",
    88: "Rate limit exceeded",
    131: "Internal error",
    214: "event parameter is invalid.",
    349: "You cannot send messages to this user.",
    354: "The text of your direct message is over the max character limit.",
}
_URL = re.compile(r"https?://|www\.", re.IGNORECASE)
_ids = itertools.count(1_800_000_000_000_000_001)


def signature(consumer_secret: str, body: bytes) -> str:
    """The x-twitter-webhooks-signature X sends with a webhook POST."""
    digest = hmac.new(consumer_secret.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def crc_response_token(consumer_secret: str, crc_token: str) -> str:
    """The response_token X expects back for a crc_token."""
    return signature(consumer_secret, crc_token.encode())


def next_id() -> str:
    return str(next(_ids))


@dataclass
class SentMessage:
    """A DM the fake accepted."""

    id: str
    to: str
    payload: JSONDict  # the event's message_data
    at: float = field(default_factory=time.time)

    @property
    def text(self) -> str:
        return str(self.payload.get("text") or "")

    @property
    def options(self) -> list[tuple[str, str]]:
        """(label, metadata) of the Quick Reply options the customer can choose."""
        qr = self.payload.get("quick_reply") or {}
        return [(str(o["label"]), str(o.get("metadata") or "")) for o in qr.get("options", [])]


class XError(Exception):
    def __init__(self, code: int, status: int, detail: str | None = None) -> None:
        super().__init__(detail or MESSAGES.get(code, "error"))
        self.code, self.status = code, status
        self.message = detail or MESSAGES.get(code, "error")

    def body(self) -> JSONDict:
        return {"errors": [{"code": self.code, "message": self.message}]}


def _invalid(detail: str) -> XError:
    return XError(214, 400, f"event.message_create.message_data: {detail}")


def validate(body: Any) -> tuple[str, JSONDict]:
    """Check a send request as X does; returns (recipient id, message_data)."""
    event = body.get("event") if isinstance(body, dict) else None
    if not isinstance(event, dict) or event.get("type") != "message_create":
        raise XError(214, 400, "event.type must be message_create")
    create = event.get("message_create") or {}
    recipient = str((create.get("target") or {}).get("recipient_id") or "")
    if not recipient.isdigit():
        raise XError(214, 400, "event.message_create.target.recipient_id is invalid")
    data = create.get("message_data")
    if not isinstance(data, dict):
        raise _invalid("required")
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise _invalid("text is required")
    if len(text) > LIMITS["text"]:
        raise XError(354, 403)
    qr = data.get("quick_reply")
    if qr is not None:
        if not isinstance(qr, dict) or qr.get("type") != "options":
            raise _invalid("quick_reply.type must be options")
        opts = qr.get("options")
        if not isinstance(opts, list) or not 1 <= len(opts) <= LIMITS["options"]:
            raise _invalid("quick_reply.options: 1 to 20 options")
        described = ["description" in o for o in opts if isinstance(o, dict)]
        if any(described) and not all(described):
            raise _invalid("quick_reply.options: all options or none have a description")
        for o in opts:
            label = o.get("label") if isinstance(o, dict) else None
            if not isinstance(label, str) or not label.strip() or len(label) > LIMITS["label"]:
                raise _invalid(f"quick_reply label {label!r}: 1 to 36 characters")
            if _URL.search(label):
                raise _invalid("quick_reply label must not contain a URL")
            if len(str(o.get("description") or "")) > LIMITS["description"]:
                raise _invalid("quick_reply description: at most 72 characters")
            if len(str(o.get("metadata") or "")) > LIMITS["metadata"]:
                raise _invalid("quick_reply metadata: at most 1000 characters")
    return recipient, data


def _oauth_params(header: str) -> dict[str, str]:
    if not header.startswith("OAuth "):
        return {}
    pairs = re.findall(r'(\w+)="([^"]*)"', header[6:])
    return {k: urllib.parse.unquote(v) for k, v in pairs}


class FakeXAPI(FakeChannelAPI[SentMessage]):
    """One X account's DM API, and its customers' side of the conversations."""

    backlog = 128
    thread_name = "fake-x"
    signature_header = "x-twitter-webhooks-signature"
    messages = "DM(s)"

    def __init__(self, *, webhook_url: str | None = None, **credentials: str) -> None:
        super().__init__(webhook_url)
        creds = {**DEFAULTS, **credentials}
        self.consumer_key, self.consumer_secret = creds["consumer_key"], creds["consumer_secret"]
        self.access_token = creds["access_token"]
        self.access_token_secret = creds["access_token_secret"]
        self.user_id = creds["user_id"]
        self.reset()

    # ------------------------------------------------------------------ lifecycle

    def reset(self) -> None:
        """Forget sends, closed DMs, faults and counters."""
        with self._lock:
            self.sent = []
            self.refused: list[JSONDict] = []
            self.closed: set[str] = set()
            self._faults: deque[tuple[int, int, float]] = deque()  # code, status, reset in
            self.requests = 0

    def sign(self, body: bytes, secret: str | None = None) -> str:
        return signature(secret or self.consumer_secret, body)

    def env(self) -> dict[str, str]:
        """The X_ variables that point the adapter at this fake."""
        return {
            "X_CONSUMER_KEY": self.consumer_key,
            "X_CONSUMER_SECRET": self.consumer_secret,
            "X_ACCESS_TOKEN": self.access_token,
            "X_ACCESS_TOKEN_SECRET": self.access_token_secret,
            "X_USER_ID": self.user_id,
            "X_API_BASE_URL": self.base_url,
        }

    # ------------------------------------------------------------------ the API side

    def handle(self, request: Request) -> Reply:
        if request.method != "POST":
            return json_reply(501, {"errors": [{"message": f"{request.method} not served"}]})
        status, payload, headers = self._handle(
            request.path, request.headers.get("authorization", ""), request.body
        )
        return json_reply(
            status, payload, {"Content-Type": "application/json;charset=utf-8", **headers}
        )

    def _authentic(self, path: str, auth: str) -> bool:
        """Recompute the OAuth 1.0a signature of this request with the expected keys."""
        params = _oauth_params(auth)
        if (
            params.get("oauth_consumer_key") != self.consumer_key
            or params.get("oauth_token") != self.access_token
            or params.get("oauth_signature_method") != "HMAC-SHA1"
            or not params.get("oauth_nonce")
            or not params.get("oauth_timestamp", "").isdigit()
        ):
            return False
        if abs(int(params["oauth_timestamp"]) - time.time()) > 300:
            return False
        expected = OAuth1(
            self.consumer_key,
            client_secret=self.consumer_secret,
            resource_owner_key=self.access_token,
            resource_owner_secret=self.access_token_secret,
            nonce=params["oauth_nonce"],
            timestamp=params["oauth_timestamp"],
        )
        _, headers, _ = expected.sign(self.base_url + path, "POST")
        want = _oauth_params(headers["Authorization"]).get("oauth_signature", "")
        return hmac.compare_digest(want.encode(), params.get("oauth_signature", "").encode())

    def _handle(self, path: str, auth: str, body: bytes) -> tuple[int, JSONDict, dict[str, str]]:
        with self._lock:
            self.requests += 1
        headers: dict[str, str] = {}
        try:
            if urllib.parse.urlsplit(path).path != SEND_PATH:
                raise XError(34, 404, "Sorry, that page does not exist.")
            if not self._authentic(path, auth):
                raise XError(32, 401)
            try:
                payload = json.loads(body)
            except ValueError:
                raise XError(214, 400, "the body is not JSON") from None
            recipient, data = validate(payload)
            with self._lock:
                if self._faults:
                    code, status, reset_in = self._faults.popleft()
                    if status == 429:
                        headers = {
                            "x-rate-limit-limit": "1000",
                            "x-rate-limit-remaining": "0",
                            "x-rate-limit-reset": str(int(time.time() + reset_in)),
                        }
                    raise XError(code, status)
                if recipient in self.closed:
                    raise XError(349, 403)
                event_id = next_id()
                self.sent.append(SentMessage(event_id, recipient, data))
                self._lock.notify_all()
            event = {
                "type": "message_create",
                "id": event_id,
                "created_timestamp": str(int(time.time() * 1000)),
                "message_create": {
                    "target": {"recipient_id": recipient},
                    "sender_id": self.user_id,
                    "message_data": data,
                },
            }
            return 200, {"event": event}, headers
        except XError as exc:
            with self._lock:
                self.refused.append(exc.body())
            return exc.status, exc.body(), headers

    def fail_next(
        self, code: int, times: int = 1, *, status: int = 400, reset_in: float = 1
    ) -> None:
        """The next `times` sends fail with `code` (88 with status 429: rate limited until
        `reset_in` seconds from then)."""
        with self._lock:
            self._faults.extend([(code, status, reset_in)] * times)

    def close_dms(self, user_id: str) -> None:
        """The customer no longer accepts our DMs (349 from now on)."""
        with self._lock:
            self.closed.add(user_id)

    # ------------------------------------------------------------------ the customer side

    def _user(self, user_id: str, screen_name: str | None = None) -> JSONDict:
        return {
            "id": user_id,
            "created_timestamp": "1422556069340",
            "name": "Sam",
            "screen_name": screen_name or f"sam{user_id[-4:]}",
            "protected": False,
            "verified": False,
        }

    def dm_payload(
        self,
        user_id: str,
        text: str,
        *,
        metadata: str | None = None,
        media: JSONDict | None = None,
        event_id: str | None = None,
        sender_id: str | None = None,
    ) -> JSONDict:
        """An Account Activity payload of one DM from `user_id` to us."""
        sender = sender_id or user_id
        data: JSONDict = {
            "text": text,
            "entities": {"hashtags": [], "symbols": [], "user_mentions": [], "urls": []},
        }
        if metadata is not None:
            data["quick_reply_response"] = {"type": "options", "metadata": metadata}
        if media is not None:
            data["attachment"] = {"type": "media", "media": media}
        recipient = self.user_id if sender != self.user_id else user_id
        event = {
            "type": "message_create",
            "id": event_id or next_id(),
            "created_timestamp": str(int(time.time() * 1000)),
            "message_create": {
                "target": {"recipient_id": recipient},
                "sender_id": sender,
                "source_app_id": "268278",
                "message_data": data,
            },
        }
        return {
            "for_user_id": self.user_id,
            "direct_message_events": [event],
            "users": {u: self._user(u) for u in {user_id, self.user_id}},
        }

    def _push(self, payload: JSONDict) -> str:
        self.post_webhook(payload).raise_for_status()
        return str(payload["direct_message_events"][0]["id"])

    def push_text(self, user_id: str, text: str, **kw: Any) -> str:
        """The customer types `text`; returns the DM event id."""
        return self._push(self.dm_payload(user_id, text, **kw))

    def press(self, user_id: str, metadata: str, label: str = "") -> str:
        """The customer chooses the Quick Reply option with this metadata (as X sends it
        back: the label as text, the metadata in quick_reply_response)."""
        for m in reversed(self.sent_to(user_id)):
            for lab, meta in m.options:
                if meta == metadata:
                    return self._push(self.dm_payload(user_id, lab, metadata=meta))
        return self._push(self.dm_payload(user_id, label or "?", metadata=metadata))

    def press_label(self, user_id: str, label: str) -> str:
        """Choose the latest option shown with this label (case-insensitive prefix)."""
        for m in reversed(self.sent_to(user_id)):
            for lab, meta in m.options:
                if lab.lower().startswith(label.lower()):
                    return self.press(user_id, meta)
        raise LookupError(f"no option labelled {label!r} was shown to {user_id}")

    def push_media(self, user_id: str, kind: str = "photo", text: str = "") -> str:
        """The customer sends a photo, animated_gif or video (X adds its t.co link)."""
        link = f"https://t.co/{next_id()[-8:]}"
        media = {"id": int(next_id()), "id_str": next_id(), "type": kind, "url": link}
        return self._push(self.dm_payload(user_id, f"{text} {link}".strip(), media=media))

    def push_echo(self, message: SentMessage) -> str:
        """X's copy of a DM we sent (sender: our own account)."""
        payload = self.dm_payload(message.to, message.text, sender_id=self.user_id)
        return self._push(payload)

    def push_typing(self, user_id: str, *, read: bool = False) -> None:
        """A typing indicator (or read receipt) of the customer."""
        event = {
            "created_timestamp": str(int(time.time() * 1000)),
            "sender_id": user_id,
            "target": {"recipient_id": self.user_id},
        }
        if read:
            event["last_read_event_id"] = next_id()
        kind = (
            "direct_message_mark_read_events" if read else "direct_message_indicate_typing_events"
        )
        payload = {
            "for_user_id": self.user_id,
            kind: [event],
            "users": {user_id: self._user(user_id)},
        }
        self.post_webhook(payload).raise_for_status()

    def crc(self, crc_token: str = "Y3JjX3Rva2VuX2Zyb21feA") -> httpx.Response:
        """X's challenge-response check against the adapter's webhook URL."""
        return self.get_webhook({"crc_token": crc_token})

    def crc_passes(self, crc_token: str = "Y3JjX3Rva2VuX2Zyb21feA") -> bool:
        """True when the adapter answered the CRC as X requires (JSON, right token)."""
        resp = self.crc(crc_token)
        if resp.status_code != 200 or "json" not in resp.headers.get("content-type", ""):
            return False
        got = resp.json().get("response_token", "")
        return hmac.compare_digest(got, crc_response_token(self.consumer_secret, crc_token))
