"""The fake WhatsApp Cloud API checks what the real one checks, in the real error shape."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest

from testkit.whatsapp_api import (
    DEFAULT_PHONE_ID,
    DEFAULT_SECRET,
    DEFAULT_TOKEN,
    FakeWhatsAppAPI,
    signature,
)

CUSTOMER = "31612345678"


@pytest.fixture
def fake() -> Iterator[FakeWhatsAppAPI]:
    with FakeWhatsAppAPI() as api:
        api.open_window(CUSTOMER)
        yield api


def post(
    fake: FakeWhatsAppAPI, payload: dict[str, Any], token: str = DEFAULT_TOKEN
) -> httpx.Response:
    return httpx.post(
        f"{fake.base_url}/v23.0/{DEFAULT_PHONE_ID}/messages",
        json=payload,
        headers={"Authorization": f"Bearer {token}"},
    )


def text(body: str, to: str = CUSTOMER) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}}


def buttons(titles: list[str], body: str = "Pick one") -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": CUSTOMER,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": body},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": f"b{i}", "title": t}}
                    for i, t in enumerate(titles)
                ]
            },
        },
    }


def rows(n: int, title: str = "Row") -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": CUSTOMER,
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": "Pick one"},
            "action": {
                "button": "Choose",
                "sections": [
                    {
                        "title": "Choices",
                        "rows": [{"id": f"r{i}", "title": title} for i in range(n)],
                    }
                ],
            },
        },
    }


def assert_graph_error(resp: httpx.Response, code: int, status: int = 400) -> None:
    assert resp.status_code == status
    err = resp.json()["error"]
    assert err["code"] == code and err["type"] == "OAuthException"
    assert set(err) >= {"message", "code", "error_subcode", "fbtrace_id", "error_data"}
    assert err["message"].startswith(f"(#{code})")


def test_accepts_and_records_a_text(fake: FakeWhatsAppAPI) -> None:
    resp = post(fake, text("Hello"))
    assert resp.status_code == 200
    mid = resp.json()["messages"][0]["id"]
    assert [(m.id, m.text) for m in fake.sent_to(CUSTOMER)] == [(mid, "Hello")]


def test_wrong_token_is_refused(fake: FakeWhatsAppAPI) -> None:
    assert_graph_error(post(fake, text("Hello"), token="stolen"), 190, status=401)
    assert fake.sent == []


def test_limits_are_enforced(fake: FakeWhatsAppAPI) -> None:
    assert post(fake, text("x" * 4096)).status_code == 200
    assert_graph_error(post(fake, text("x" * 4097)), 100)
    assert_graph_error(post(fake, text("")), 100)
    assert post(fake, buttons(["Yes", "No", "Maybe"])).status_code == 200
    assert_graph_error(post(fake, buttons(["1", "2", "3", "4"])), 100)
    assert_graph_error(post(fake, buttons(["A title of 21 chars.."])), 100)
    assert_graph_error(post(fake, buttons(["Yes"], body="x" * 1025)), 100)
    assert post(fake, rows(10)).status_code == 200
    assert_graph_error(post(fake, rows(11)), 100)
    assert_graph_error(post(fake, rows(2, title="x" * 25)), 100)
    assert len(fake.sent) == 3
    assert "too long" in fake.refused[0][1]["error"]["error_data"]["details"]


def test_window_expiry_refuses_all_but_templates(fake: FakeWhatsAppAPI) -> None:
    fake.close_window(CUSTOMER)
    assert_graph_error(post(fake, text("Still there?")), 131047)
    template = {
        "messaging_product": "whatsapp",
        "to": CUSTOMER,
        "type": "template",
        "template": {"name": "lumen_feedback_en", "language": {"code": "en"}},
    }
    assert post(fake, template).status_code == 200
    assert fake.sent[-1].text == "[template lumen_feedback_en]"


def test_injected_rate_limit_and_permanent_errors(fake: FakeWhatsAppAPI) -> None:
    fake.fail_next(130429)
    fake.fail_next(131026)
    fake.fail_next(130429, http_status=429)
    assert_graph_error(post(fake, text("a")), 130429)
    assert_graph_error(post(fake, text("b")), 131026)
    assert_graph_error(post(fake, text("c")), 130429, status=429)
    assert post(fake, text("d")).status_code == 200


def test_throughput_limit_per_number() -> None:
    with FakeWhatsAppAPI(max_per_second=5) as fake:
        fake.open_window(CUSTOMER)
        codes = [post(fake, text(str(i))).status_code for i in range(8)]
    assert codes.count(200) == 5 and codes.count(400) == 3


class _Receiver(BaseHTTPRequestHandler):
    """Stands in for the adapter: records what arrives (body and signature)."""

    got: ClassVar[list[tuple[bytes, str]]] = []
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got.append((body, self.headers.get("X-Hub-Signature-256", "")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_pushes_signed_unsigned_and_wrongly_signed_webhooks() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.got = []
    url = f"http://127.0.0.1:{server.server_address[1]}/whatsapp"
    try:
        with FakeWhatsAppAPI(webhook_url=url) as fake:
            fake.push_text(CUSTOMER, "Hi there")
            payload = fake.message_payload(CUSTOMER, {"type": "text", "text": {"body": "x"}})
            fake.post_webhook(payload, signed="none")
            fake.post_webhook(payload, signed="wrong")
            fake.push_media(CUSTOMER, "audio", voice=True)
            fake.push_status("wamid.X", "failed", error_code=131026)
    finally:
        server.shutdown()
    (first, sig), (_, none), (_, wrong), (voice, _), (status, _) = _Receiver.got
    assert sig == signature(DEFAULT_SECRET, first) and none == "" and wrong not in ("", sig)
    message = json.loads(first)["entry"][0]["changes"][0]["value"]["messages"][0]
    assert message["from"] == CUSTOMER and message["text"]["body"] == "Hi there"
    assert json.loads(voice)["entry"][0]["changes"][0]["value"]["messages"][0]["audio"]["voice"]
    st = json.loads(status)["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert st["status"] == "failed" and st["errors"][0]["code"] == 131026
