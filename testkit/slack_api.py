"""A fake Slack Web API: chat.postMessage as Slack checks it (token, channel, text or
blocks, Block Kit shape and limits), answering Slack's {"ok": false, "error": ...} shapes,
and HTTP 429 "ratelimited" with Retry-After on demand. Point slack-sdk's base_url here."""

from __future__ import annotations

import itertools
from typing import Any

from testkit.fakehttp import FakeHTTP, Reply, Request, json_reply

BLOCK_TYPES = {"section", "header", "divider", "context", "actions", "image", "rich_text"}


def block_errors(blocks: Any) -> list[str]:
    """What Slack would call invalid_blocks in `blocks` (empty when fine)."""
    if not isinstance(blocks, list) or not 0 < len(blocks) <= 50:
        return ["blocks must be a list of 1 to 50 blocks"]
    errors = []

    def text_obj(t: Any, where: str, limit: int, plain: bool = False) -> None:
        kinds = {"plain_text"} if plain else {"plain_text", "mrkdwn"}
        if not isinstance(t, dict) or t.get("type") not in kinds:
            errors.append(f"{where}: text must be {' or '.join(sorted(kinds))}")
        elif not isinstance(t.get("text"), str) or not 0 < len(t["text"]) <= limit:
            errors.append(f"{where}: text must be 1 to {limit} characters")

    for i, b in enumerate(blocks):
        kind = b.get("type") if isinstance(b, dict) else None
        where = f"blocks[{i}]"
        if kind not in BLOCK_TYPES:
            errors.append(f"{where}: unknown block type {kind!r}")
        elif kind == "header":
            text_obj(b.get("text"), where, 150, plain=True)
        elif kind == "section":
            if "text" not in b and "fields" not in b:
                errors.append(f"{where}: section needs text or fields")
            if "text" in b:
                text_obj(b["text"], where, 3000)
        elif kind == "context":
            els = b.get("elements")
            if not isinstance(els, list) or not 0 < len(els) <= 10:
                errors.append(f"{where}: context needs 1 to 10 elements")
            else:
                for j, e in enumerate(els):
                    text_obj(e, f"{where}.elements[{j}]", 3000)
        elif kind == "actions":
            els = b.get("elements")
            if not isinstance(els, list) or not 0 < len(els) <= 25:
                errors.append(f"{where}: actions needs 1 to 25 elements")
            else:
                for j, e in enumerate(els):
                    if e.get("type") != "button":
                        continue
                    text_obj(e.get("text"), f"{where}.elements[{j}]", 75, plain=True)
                    if "url" in e and not str(e["url"]).startswith(("http://", "https://")):
                        errors.append(f"{where}.elements[{j}]: url must be http(s)")
    return errors


class FakeSlack(FakeHTTP):
    def __init__(self, token: str, channels: tuple[str, ...] = ("#product",)) -> None:
        super().__init__()
        self.token = token
        self.channels = set(channels)
        self.messages: list[dict[str, Any]] = []
        self.calls = 0
        self.rate_limited = 0  # answer 429 to this many next calls
        self._ts = itertools.count(1)

    def handle(self, request: Request) -> Reply:
        with self.lock:
            self.calls += 1
            if self.rate_limited:
                self.rate_limited -= 1
                return json_reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
        if request.method != "POST" or not request.path.endswith("/chat.postMessage"):
            return json_reply(404, {"ok": False, "error": "unknown_method"})
        auth = request.headers.get("authorization", "")
        if not auth:
            return json_reply(200, {"ok": False, "error": "not_authed"})
        if auth != f"Bearer {self.token}":
            return json_reply(200, {"ok": False, "error": "invalid_auth"})
        if not request.headers.get("content-type", "").startswith("application/json"):
            return json_reply(200, {"ok": False, "error": "invalid_form_data"})
        body = request.json()
        channel = body.get("channel")
        if not channel:
            return json_reply(200, {"ok": False, "error": "channel_not_found"})
        if channel not in self.channels:
            return json_reply(200, {"ok": False, "error": "channel_not_found"})
        if not body.get("text") and not body.get("blocks"):
            return json_reply(200, {"ok": False, "error": "no_text"})
        if "blocks" in body:
            errors = block_errors(body["blocks"])
            if errors:
                return json_reply(
                    200,
                    {
                        "ok": False,
                        "error": "invalid_blocks",
                        "response_metadata": {"messages": errors},
                    },
                )
        ts = f"1765000000.{next(self._ts):06d}"
        with self.lock:
            self.messages.append(body)
        return json_reply(
            200,
            {
                "ok": True,
                "channel": "C0PRODUCT",
                "ts": ts,
                "message": {"text": body.get("text", ""), "ts": ts},
            },
        )
