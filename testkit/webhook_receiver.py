"""A webhook receiver like an operator's: verifies X-Earshot-Signature (HMAC-SHA256 over
"t.body", 5-minute replay window) and answers 401 to a bad one; fails on demand (a status
for the next N requests, or a delay per request) and records what it accepted."""

from __future__ import annotations

import collections
import json
import time
from dataclasses import dataclass
from typing import Any

from earshot.integrations.signing import verify
from testkit.fakehttp import FakeHTTP, Reply, Request


@dataclass(frozen=True)
class Received:
    event: dict[str, Any]
    headers: dict[str, str]
    at: float  # time.time() when it arrived


class WebhookReceiver(FakeHTTP):
    def __init__(self, secret: str, *, delay_s: float = 0.0) -> None:
        super().__init__()
        self.secret = secret
        self.delay_s = delay_s
        self.received: list[Received] = []
        self.rejected: list[Request] = []
        self.failures: collections.deque[int] = collections.deque()
        self.requests = 0

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer `status` to the next `times` requests (validly signed or not)."""
        with self.lock:
            self.failures.extend([status] * times)

    def handle(self, request: Request) -> Reply:
        with self.lock:
            self.requests += 1
            failure = self.failures.popleft() if self.failures else None
        if self.delay_s:
            time.sleep(self.delay_s)
        if failure is not None:
            return failure, {"Content-Type": "text/plain"}, b"failing on purpose"
        if request.method != "POST" or request.headers.get("content-type") != "application/json":
            return 400, {}, b"expected a JSON POST"
        if not verify(self.secret, request.body, request.headers.get("x-earshot-signature")):
            with self.lock:
                self.rejected.append(request)
            return 401, {}, b"bad signature"
        event = json.loads(request.body)
        with self.lock:
            self.received.append(Received(event, request.headers, time.time()))
        return 204, {}, b""
