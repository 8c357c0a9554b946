"""Cap request bodies before anything parses them (dashboard, login and web chat).

An ASGI middleware: a declared Content-Length over the cap is refused at once; otherwise
the body is counted as it streams in (chunked bodies have no Content-Length) and buffered
only up to the cap, so a multi-megabyte POST costs at most `limit` bytes of memory.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_LIMIT = 16 * 1024


class BodyTooLarge(Exception):
    """The request body is larger than the cap."""


class BodyLimit:
    """Answers 413 to any request whose body exceeds `limit` bytes, before the app runs."""

    def __init__(
        self, app: ASGIApp, *, limit: int = DEFAULT_LIMIT, larger: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        # Path prefixes allowed more (tracker webhooks: GitHub's issue events are ~20 KB).
        self.larger = dict(larger or {})

    def _limit_for(self, scope: Scope) -> int:
        path = scope.get("path", "")
        return next((n for p, n in self.larger.items() if path.startswith(p)), self.limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, send)
            return
        try:
            messages = await self._read(receive, limit)
        except BodyTooLarge:
            await self._refuse(scope, send)
            return
        pending = list(messages)

        async def replay() -> Message:
            # The buffered body first; then the server's own (e.g. http.disconnect).
            return pending.pop(0) if pending else await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive, limit: int) -> list[Message]:
        """The body's messages, counting bytes; raises BodyTooLarge past the cap."""
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages  # disconnected: let the app see it
            size += len(message.get("body", b""))
            if size > limit:
                raise BodyTooLarge
            if not message.get("more_body", False):
                return messages

    async def _refuse(self, scope: Scope, send: Send) -> None:
        text = f"Request body too large (at most {self._limit_for(scope)} bytes)."
        if scope.get("path", "").startswith("/chat/"):
            body, kind = json.dumps({"error": text}).encode(), b"application/json"
        else:
            body, kind = text.encode(), b"text/plain; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", kind),
                    (b"content-length", str(len(body)).encode()),
                    # The rest of the body is never read: the connection cannot be reused.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
