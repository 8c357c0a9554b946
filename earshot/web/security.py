"""Login, sessions, CSRF and rate limits of the review dashboard."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import deque
from typing import Any

from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

SESSION_COOKIE = "earshot_session"
SESSION_MAX_AGE = 12 * 3600  # a working day; then log in again
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
DEFAULT_USER = "admin"
_USER_RE = re.compile(r"[^\w.@+-]+")


def derive_key(secret: str, purpose: str) -> str:
    """A key for one purpose, so the session key is not the key of the customer ids."""
    return hmac.new(secret.encode(), f"earshot-web:{purpose}".encode(), hashlib.sha256).hexdigest()


def password_ok(given: str, expected: str) -> bool:
    """Constant-time comparison; hashing first hides the length of the password too."""
    a = hashlib.sha256(given.encode()).digest()
    b = hashlib.sha256(expected.encode()).digest()
    return hmac.compare_digest(a, b)


def clean_user(name: str) -> str:
    """The name a reviewer logs in with, as recorded in the history (the actor)."""
    name = _USER_RE.sub("", name.strip())[:64]
    return name or DEFAULT_USER


class RateLimiter:
    """At most `limit` hits per `window` seconds per key (sliding window, in memory).

    One process serves the dashboard, so memory is the right place; keys without recent
    hits are dropped so the table cannot grow without bound.
    """

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self.max_keys:
                self._prune(now)
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        return hits

    def _prune(self, now: float) -> None:
        for k in [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window]:
            del self._hits[k]
        if len(self._hits) >= self.max_keys:  # all busy: forget the oldest half
            for k in list(self._hits)[: self.max_keys // 2]:
                del self._hits[k]

    def blocked(self, key: str, now: float | None = None) -> bool:
        """True when `key` used up its hits; does not count as a hit."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return len(self._recent(key, now)) >= self.limit

    def hit(self, key: str, now: float | None = None) -> bool:
        """Count a hit; False when the key was already over the limit (not counted)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._recent(key, now)
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True

    def retry_after(self, key: str, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._recent(key, now)
            if len(hits) < self.limit:
                return 0
            return max(1, int(hits[0] + self.window - now + 0.999))

    def reset(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)


def client_key(request: Request) -> str:
    # uvicorn replaces the peer with X-Forwarded-For only for trusted proxies, so this is
    # the real client behind our own proxy and cannot be spoofed from outside.
    return request.client.host if request.client else "unknown"


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


def csrf_valid(request: Request, given: Any) -> bool:
    expected = request.session.get(CSRF_FIELD)
    if not isinstance(expected, str) or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


class Sessions:
    """Signed cookie sessions, with the Secure flag in production or over https.

    Starlette's middleware fixes the flag at start-up; behind a TLS proxy uvicorn reports
    the scheme as https (X-Forwarded-Proto from a trusted proxy), so pick per request.
    """

    def __init__(self, app: ASGIApp, *, secret_key: str, always_secure: bool) -> None:
        common: dict[str, Any] = {
            "secret_key": secret_key,
            "session_cookie": SESSION_COOKIE,
            "max_age": SESSION_MAX_AGE,
            "same_site": "lax",
        }
        self.always_secure = always_secure
        self.plain = SessionMiddleware(app, https_only=False, **common)
        self.secure = SessionMiddleware(app, https_only=True, **common)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        https = scope.get("scheme") in ("https", "wss")
        mw = self.secure if self.always_secure or https else self.plain
        await mw(scope, receive, send)
