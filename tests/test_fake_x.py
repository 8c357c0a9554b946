"""The fake X API checks what X checks: OAuth 1.0a signatures, DM payload limits in X's
error shape, closed DMs, rate limits with their reset header; its webhook signatures and
CRC tokens follow X's formula."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from oauthlib.oauth1 import Client as OAuth1

from testkit.x_api import SEND_PATH, FakeXAPI, crc_response_token, signature


@pytest.fixture
def fake() -> Iterator[FakeXAPI]:
    with FakeXAPI() as f:
        yield f


def post(
    fake: FakeXAPI, data: dict[str, Any], *, to: str = "42", secret: str | None = None
) -> httpx.Response:
    url = fake.base_url + SEND_PATH
    client = OAuth1(
        fake.consumer_key,
        client_secret=fake.consumer_secret,
        resource_owner_key=fake.access_token,
        resource_owner_secret=secret or fake.access_token_secret,
    )
    _, headers, _ = client.sign(url, "POST")
    body = {
        "event": {
            "type": "message_create",
            "message_create": {"target": {"recipient_id": to}, "message_data": data},
        }
    }
    return httpx.post(url, json=body, headers=headers)


def error(resp: httpx.Response) -> tuple[int, int]:
    (err,) = resp.json()["errors"]
    assert isinstance(err["message"], str) and err["message"]
    return resp.status_code, err["code"]


def options(n: int, **extra: str) -> dict[str, Any]:
    opts = [{"label": f"Option {i}", "metadata": f"m{i}", **extra} for i in range(n)]
    return {"type": "options", "options": opts}


def test_a_valid_dm_is_recorded_with_its_options(fake: FakeXAPI) -> None:
    resp = post(fake, {"text": "Pick one", "quick_reply": options(20)})
    assert resp.status_code == 200
    event = resp.json()["event"]
    assert event["type"] == "message_create" and event["message_create"]["sender_id"] == (
        fake.user_id
    )
    (sent,) = fake.sent_to("42")
    assert sent.id == event["id"] and len(sent.options) == 20


def test_unsigned_or_wrongly_signed_requests_get_code_32(fake: FakeXAPI) -> None:
    assert error(post(fake, {"text": "hi"}, secret="wrong")) == (401, 32)
    bare = httpx.post(fake.base_url + SEND_PATH, json={}, headers={"Authorization": "Bearer x"})
    assert error(bare) == (401, 32)
    assert fake.sent == []


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"text": ""}, (400, 214)),
        ({"text": "x" * 10_001}, (403, 354)),
        ({"text": "hi", "quick_reply": options(21)}, (400, 214)),
        ({"text": "hi", "quick_reply": options(0)}, (400, 214)),
        (
            {"text": "hi", "quick_reply": {"type": "options", "options": [{"label": "L" * 37}]}},
            (400, 214),
        ),
        (
            {
                "text": "hi",
                "quick_reply": {"type": "options", "options": [{"label": "see https://x.com"}]},
            },
            (400, 214),
        ),
        ({"text": "hi", "quick_reply": options(2, description="d" * 73)}, (400, 214)),
        (
            {
                "text": "hi",
                "quick_reply": {
                    "type": "options",
                    "options": [{"label": "a", "description": "has one"}, {"label": "b"}],
                },
            },
            (400, 214),
        ),
        (
            {
                "text": "hi",
                "quick_reply": {
                    "type": "options",
                    "options": [{"label": "a", "metadata": "m" * 1001}],
                },
            },
            (400, 214),
        ),
    ],
)
def test_payloads_over_x_limits_are_refused_in_x_error_shape(
    fake: FakeXAPI, data: dict[str, Any], expected: tuple[int, int]
) -> None:
    assert error(post(fake, data)) == expected
    assert fake.sent == []


def test_closed_dms_rate_limits_and_injected_errors(fake: FakeXAPI) -> None:
    fake.close_dms("7")
    assert error(post(fake, {"text": "hi"}, to="7")) == (403, 349)
    fake.fail_next(88, status=429, reset_in=60)
    limited = post(fake, {"text": "hi"})
    assert error(limited) == (429, 88)
    reset = int(limited.headers["x-rate-limit-reset"])
    assert time.time() + 55 <= reset <= time.time() + 61
    assert limited.headers["x-rate-limit-remaining"] == "0"
    assert post(fake, {"text": "hi"}).status_code == 200  # one fault only
    assert error(httpx.post(fake.base_url + "/2/tweets", json={})) == (404, 34)


def test_signatures_and_crc_tokens_follow_x_formula() -> None:
    body = b'{"for_user_id":"1"}'
    digest = hmac.new(b"secret", body, hashlib.sha256).digest()
    assert signature("secret", body) == "sha256=" + base64.b64encode(digest).decode()
    token = hmac.new(b"secret", b"crc", hashlib.sha256).digest()
    assert crc_response_token("secret", "crc") == "sha256=" + base64.b64encode(token).decode()


def test_pushed_payloads_look_like_account_activity(fake: FakeXAPI) -> None:
    payload = fake.dm_payload("42", "👍 Yes", metadata="1:0")
    assert payload["for_user_id"] == fake.user_id
    (event,) = payload["direct_message_events"]
    create = event["message_create"]
    assert create["sender_id"] == "42" and create["target"]["recipient_id"] == fake.user_id
    assert create["message_data"]["quick_reply_response"] == {"type": "options", "metadata": "1:0"}
    assert set(payload["users"]) == {"42", fake.user_id}
    echo = fake.dm_payload("42", "ours", sender_id=fake.user_id)["direct_message_events"][0]
    assert echo["message_create"]["target"]["recipient_id"] == "42"
