"""What the messaging channels' fake APIs (WhatsApp, Messenger, X) share, on fakehttp's
server: the messages each accepted, by recipient, to read or wait for; and the customer's
side, webhooks POSTed to the adapter at `webhook_url`, signed as the channel signs them
(or unsigned, or wrongly signed)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Generic, Protocol, TypeVar

import httpx

from testkit.fakehttp import FakeHTTP

JSONDict = dict[str, Any]


class Accepted(Protocol):
    """A message a fake accepted."""

    to: str

    @property
    def text(self) -> str: ...


M = TypeVar("M", bound=Accepted)
_C = TypeVar("_C", bound="FakeChannelAPI[Any]")


class FakeChannelAPI(FakeHTTP, Generic[M]):
    """Base of the channel fakes. Subclasses set `sent` (in their reset) and sign."""

    signature_header = ""  # the header the channel signs its webhooks in
    wrong_secret = "not-the-secret"
    messages = "message(s)"  # what a timeout says it waited for

    def __init__(self, webhook_url: str | None) -> None:
        super().__init__()
        self.webhook_url = webhook_url
        self.sent: list[M] = []
        self._lock = threading.Condition()
        self._http: httpx.Client | None = None

    def start(self: _C) -> _C:
        if self._server is None:
            super().start()
            self._http = httpx.Client(timeout=30)
        return self

    def stop(self) -> None:
        super().stop()
        if self._http is not None:
            self._http.close()
            self._http = None

    @property
    def base_url(self) -> str:
        """What the adapter's API base URL is set to."""
        return self.url

    def sign(self, body: bytes, secret: str | None = None) -> str:
        """The signature header's value for `body` (with the app's secret by default)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ what was sent

    def sent_to(self, to: str) -> list[M]:
        with self._lock:
            return [m for m in self.sent if m.to == to]

    def wait_for_sent(self, to: str, count: int = 1, timeout: float = 30.0) -> list[M]:
        """Block until `count` messages went to `to`; returns them all."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len([m for m in self.sent if m.to == to]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [m.text[:60] for m in self.sent if m.to == to]
                    raise TimeoutError(f"{count} {self.messages} to {to} expected, got {got}")
                self._lock.wait(left)
            return [m for m in self.sent if m.to == to]

    # ------------------------------------------------------------------ the customer side

    def post_webhook(self, payload: JSONDict, *, signed: str = "valid") -> httpx.Response:
        """POST a payload to the adapter; `signed` is "valid", "none" or "wrong"."""
        assert self.webhook_url and self._http is not None, "set webhook_url and start()"
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if signed == "valid":
            headers[self.signature_header] = self.sign(body)
        elif signed == "wrong":
            headers[self.signature_header] = self.sign(body, self.wrong_secret)
        return self._http.post(self.webhook_url, content=body, headers=headers)

    def get_webhook(self, params: dict[str, str]) -> httpx.Response:
        """GET the adapter's webhook URL (the channel's handshake)."""
        assert self.webhook_url and self._http is not None, "set webhook_url and start()"
        return self._http.get(self.webhook_url, params=params)
