"""The X direct-message adapter without Rasa: the CRC and signed webhook, DM events in,
layout within X's limits, the sender against the fake X API (OAuth 1.0a, rate limits,
closed DMs), proactive rules, deep links and settings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from earshot.conversations import queries as conversations
from earshot.gateway.model import Button, Incoming, Purpose, Reply
from earshot.outreach import links
from earshot.settings import ConfigError, load_settings
from earshot.storage.db import session_scope
from earshot.storage.spool import Spool
from testkit.x_api import FakeXAPI, crc_response_token, signature
from xdm import inbound, render
from xdm.api import DmApi, SendFailed
from xdm.app import XChannel
from xdm.webhook import Processor, build_webhook_app, crc_response

OURS = "1500000000000000001"
SECRET = "fake-x-consumer-secret"


def key_of(user_id: str) -> str:
    return f"key-{user_id}"


class Harness:
    """The webhook app in-process, with a recording gateway handle."""

    def __init__(self, tmp_path: Path, block: asyncio.Event | None = None) -> None:
        self.handled: list[Incoming] = []
        self.block = block
        self.spool = Spool(tmp_path / "spool" / "x")
        self.processor = Processor(self.handle, f"sqlite:///{tmp_path / 'x.db'}", self.spool)
        self.app = build_webhook_app(
            path="/x",
            consumer_secret=SECRET,
            our_user_id=OURS,
            processor=self.processor,
            key_of=key_of,
        )
        self.fake = FakeXAPI()  # only its payload builders and signatures

    async def handle(self, incoming: Incoming) -> None:
        if self.block is not None:
            await self.block.wait()
        self.handled.append(incoming)

    async def post(self, payload: Any, *, signed: str = "valid", raw: bytes | None = None) -> int:
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = {"content-type": "application/json"}
        if signed == "valid":
            headers["x-twitter-webhooks-signature"] = signature(SECRET, body)
        elif signed == "wrong":
            headers["x-twitter-webhooks-signature"] = signature("guess", body)
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x.test") as http:
            resp = await http.post("/x", content=body, headers=headers)
        return resp.status_code

    async def get(self, url: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x.test") as http:
            return await http.get(url)


# --------------------------------------------------------------------------- the webhook


def test_the_crc_challenge_is_answered_as_x_computes_it(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    resp = asyncio.run(h.get("/x?crc_token=challenge-123"))
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    token = resp.json()["response_token"]
    assert token == crc_response_token(SECRET, "challenge-123")
    assert token.startswith("sha256=") and token != crc_response(SECRET, "other")["response_token"]
    assert asyncio.run(h.get("/x")).status_code == 400


def test_forged_unsigned_and_oversized_posts_are_refused_and_nothing_stored(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    payload = h.fake.dm_payload("42", "hello")

    async def scenario() -> list[int]:
        codes = [await h.post(payload, signed="wrong"), await h.post(payload, signed="none")]
        codes.append(await h.post(None, raw=b"{" + b" " * (2 << 20) + b"}"))
        await h.processor.drain()
        return codes

    assert asyncio.run(scenario()) == [403, 403, 413]
    assert h.handled == [] and len(h.spool) == 0


def test_a_dm_is_on_disk_redacted_before_the_200_then_handed_to_the_gateway(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        h = Harness(tmp_path, block=asyncio.Event())
        payload = h.fake.dm_payload("42", "My email is ann@example.com, where is my parcel?")
        assert await h.post(payload) == 200
        ((_, entry),) = list(h.spool.entries())
        assert "ann@example.com" not in json.dumps(entry)
        assert entry["customer_key"] == "key-42" and entry["name"] == "@sam42"
        assert h.block is not None
        h.block.set()
        await h.processor.drain()
        (got,) = h.handled
        assert (got.channel, got.user_id, got.chat_id) == ("x", "42", "42")
        assert got.message_id == payload["direct_message_events"][0]["id"]
        assert "parcel" in str(got.text) and "ann@example.com" not in str(got.text)
        assert len(h.spool) == 0

    asyncio.run(scenario())


def test_our_own_sends_typing_and_read_receipts_are_ignored(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    fake = h.fake
    echo = fake.dm_payload("42", "An answer we sent", sender_id=OURS)
    typing = {
        "for_user_id": OURS,
        "direct_message_indicate_typing_events": [
            {"created_timestamp": "1", "sender_id": "42", "target": {"recipient_id": OURS}}
        ],
    }
    read = {
        "for_user_id": OURS,
        "direct_message_mark_read_events": [
            {"created_timestamp": "1", "sender_id": "42", "target": {"recipient_id": OURS}}
        ],
    }
    other_account = {**fake.dm_payload("42", "hi"), "for_user_id": "999"}

    async def scenario() -> list[int]:
        codes = [await h.post(p) for p in (echo, typing, read, other_account)]
        await h.processor.drain()
        return codes

    assert asyncio.run(scenario()) == [200, 200, 200, 200]
    assert h.handled == []


def test_quick_replies_media_stop_erasure_and_deep_links_become_gateway_input() -> None:
    fake = FakeXAPI()

    def first(payload: dict[str, Any]) -> Incoming:
        (entry,) = inbound.split(payload, our_user_id=OURS, key_of=key_of)
        return inbound.incoming(json.loads(json.dumps(entry)))  # as read back from disk

    pressed = first(fake.dm_payload("42", "👍 Yes", metadata="17:0"))
    assert pressed.button == "17:0" and pressed.text is None
    photo = first(
        fake.dm_payload(
            "42",
            "https://t.co/abc",
            media={"id_str": "99", "type": "photo", "url": "https://t.co/abc"},
        )
    )
    assert (photo.media, photo.media_id, photo.text) == ("photo", "99", None)
    gif = first(fake.dm_payload("42", "x", media={"id_str": "1", "type": "animated_gif"}))
    assert gif.media == "animation"
    assert first(fake.dm_payload("42", "STOP")).text == "/stop"
    assert first(fake.dm_payload("42", "Stoppen!")).text == "/stop"
    assert first(fake.dm_payload("42", "verwijder mijn gegevens")).text == "/deletemydata"
    linked = first(fake.dm_payload("42", "Feedback over Lumen Lamp [fb-lamp]"))
    assert (linked.text, linked.language_hint) == ("/start fb-lamp", "nl")
    linked = first(fake.dm_payload("42", "Feedback Lumen Lamp [fb-lamp]"))
    assert (linked.text, linked.language_hint) == ("/start fb-lamp", "en")
    assert first(fake.dm_payload("42", "Feedback geven [c-winter]")).language_hint == "nl"
    assert first(fake.dm_payload("42", "Is stoppen the answer?")).text == "Is stoppen the answer?"
    assert first(fake.dm_payload("42", "Lamp &amp; plug &lt;3")).text == "Lamp & plug <3"


# --------------------------------------------------------------------------- layout


def test_buttons_become_quick_replies_within_x_limits() -> None:
    votes = Reply("Did that help?", (Button("👍 Yes", ref="1:0"), Button("👎 No", ref="1:1")))
    (msg,) = render.layout(votes)
    assert msg["text"] == "Did that help?"
    assert msg["quick_reply"] == {
        "type": "options",
        "options": [{"label": "👍 Yes", "metadata": "1:0"}, {"label": "👎 No", "metadata": "1:1"}],
    }
    long = Reply("Pick", (Button("A" * 50, ref="2:0"), Button("Short", ref="2:1")))
    opts = render.layout(long)[0]["quick_reply"]["options"]
    assert all(len(o["label"]) <= 36 and "description" in o for o in opts)
    assert opts[0]["description"] == "A" * 50 and opts[1]["description"] == "Short"
    many = Reply("Which one?", tuple(Button(f"Choice {i}", ref=f"3:{i}") for i in range(25)))
    first, second = render.layout(many, "nl")
    assert len(first["quick_reply"]["options"]) == 20
    assert second["text"] == "Meer keuzes:" and len(second["quick_reply"]["options"]) == 5


def test_long_texts_split_at_10000_and_links_are_written_out() -> None:
    text = "\n\n".join(["word " * 1500] * 4)  # about 30,000 characters
    out = render.layout(Reply(text, (Button("Yes", ref="1:0"),)))
    assert len(out) >= 3 and all(len(m["text"]) <= 10_000 for m in out)
    assert "quick_reply" in out[-1] and all("quick_reply" not in m for m in out[:-1])
    linked = render.layout(
        Reply("Returns:", (Button("Returns portal", url="https://example.com/r"),), image=None)
    )
    assert linked == [{"text": "Returns:\n\nReturns portal: https://example.com/r"}]


# --------------------------------------------------------------------------- the sender


@pytest.fixture
def fake() -> Iterator[FakeXAPI]:
    with FakeXAPI() as f:
        yield f


def make_api(fake: FakeXAPI, waits: list[float] | None = None, **kw: Any) -> DmApi:
    async def sleep(seconds: float) -> None:
        if waits is not None:
            waits.append(seconds)

    creds = {
        "consumer_key": fake.consumer_key,
        "consumer_secret": fake.consumer_secret,
        "access_token": fake.access_token,
        "access_token_secret": fake.access_token_secret,
        **kw,
    }
    return DmApi(base_url=fake.base_url, sleep=sleep, **creds)


def test_a_signed_dm_with_quick_replies_is_accepted(fake: FakeXAPI) -> None:
    async def scenario() -> str:
        api = make_api(fake)
        try:
            data = render.layout(Reply("Hi", (Button("Yes", ref="1:0"),)))[0]
            return await api.send("42", data)
        finally:
            await api.aclose()

    event_id = asyncio.run(scenario())
    (sent,) = fake.sent_to("42")
    assert sent.id == event_id and sent.options == [("Yes", "1:0")]


def test_a_wrong_secret_is_refused_permanently(fake: FakeXAPI) -> None:
    async def scenario() -> SendFailed:
        api = make_api(fake, access_token_secret="stolen?")
        try:
            with pytest.raises(SendFailed) as err:
                await api.send("42", {"text": "hi"})
            return err.value
        finally:
            await api.aclose()

    exc = asyncio.run(scenario())
    assert (exc.code, exc.status, exc.permanent) == (32, 401, True)
    assert fake.sent == []


def test_a_rate_limit_waits_for_the_reset_then_sends(fake: FakeXAPI) -> None:
    fake.fail_next(88, 2, status=429, reset_in=30)
    waits: list[float] = []

    async def scenario() -> None:
        api = make_api(fake, waits)
        try:
            await api.send("42", {"text": "hi"})
        finally:
            await api.aclose()

    asyncio.run(scenario())
    assert len(waits) == 2 and all(25 <= w <= 31 for w in waits)
    assert [m.text for m in fake.sent_to("42")] == ["hi"]


def test_a_reset_too_far_off_and_permanent_errors_are_not_retried(fake: FakeXAPI) -> None:
    waits: list[float] = []

    async def scenario() -> list[SendFailed]:
        api = make_api(fake, waits, max_wait_s=60)
        out = []
        try:
            fake.fail_next(88, status=429, reset_in=900)
            fake.close_dms("43")
            for to in ("42", "43"):
                with pytest.raises(SendFailed) as err:
                    await api.send(to, {"text": "hi"})
                out.append(err.value)
        finally:
            await api.aclose()
        return out

    limited, closed = asyncio.run(scenario())
    assert (limited.code, limited.permanent) == (88, False)
    assert (closed.code, closed.status, closed.permanent) == (349, 403, True)
    assert waits == [] and fake.sent == []


# --------------------------------------------------------------------------- the channel


def channel(fake: FakeXAPI, db_url: str) -> XChannel:
    env = {k.lower(): v for k, v in fake.env().items()}
    settings = load_settings(database_url=db_url, earshot_secret="s" * 20, **env)
    return XChannel(settings, make_api(fake))


def test_closed_dms_skip_proactive_messages_and_campaigns_need_a_first_message(
    fake: FakeXAPI, committing_db: str
) -> None:
    ch = channel(fake, committing_db)
    with session_scope(committing_db) as session:
        conversations.see_customer(
            session,
            user_key=ch.key("77"),
            channel="x",
            chat_id="77",
            reported_language=None,
            text="hello",
            languages=["en"],
            default_language="en",
        )
    ask = [Reply("A question?", (Button("Answer", ref="5:0"),))]

    async def scenario() -> list[Any]:
        try:
            never = await ch.send("76", ask, purpose=Purpose.CAMPAIGN, language="en")
            wrote = await ch.send("77", ask, purpose=Purpose.CAMPAIGN, language="en")
            fake.close_dms("77")
            notice = await ch.send("77", ask, purpose=Purpose.NOTICE, language="en")
            reply = await ch.send("77", ask, purpose=Purpose.REPLY, language="en")
            return [never, wrote, notice, reply]
        finally:
            await ch.api.aclose()

    never, wrote, notice, reply = asyncio.run(scenario())
    assert never.skipped == "never_wrote" and fake.sent_to("76") == []
    assert wrote.skipped is None and len(wrote.message_ids) == 1
    assert notice.skipped == "dm_closed" and reply.skipped == "dm_closed"
    assert len(fake.sent_to("77")) == 1


def test_a_refused_campaign_ask_for_another_reason_is_raised_as_failed(
    fake: FakeXAPI, committing_db: str
) -> None:
    ch = channel(fake, committing_db)
    fake.fail_next(131, status=400)

    async def scenario() -> None:
        try:
            await ch.send("88", [Reply("Notice")], purpose=Purpose.NOTICE, language="en")
        finally:
            await ch.api.aclose()

    with pytest.raises(SendFailed):
        asyncio.run(scenario())


# --------------------------------------------------------------------------- links, settings


def test_a_deep_link_prefills_a_dm_that_starts_feedback_for_its_product() -> None:
    settings = load_settings(
        x_user_id=OURS,
        products=[{"key": "lamp", "name": "Lumen Lamp"}],
        campaigns=[],
        languages=["en", "nl"],
    )
    url = links.x_link(settings, product="lamp", language="nl")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://twitter.com/messages/compose"
    query = parse_qs(parts.query)
    assert query["recipient_id"] == [OURS]
    assert query["text"] == ["Feedback over Lumen Lamp [fb-lamp]"]
    assert inbound.typed(query["text"][0]) == "/start fb-lamp"
    with pytest.raises(links.LinkError):
        links.x_link(settings, product="toaster")
    assert links.deep_link(settings, "x", product="lamp", language="nl") == url
    assert links.language_of_prefill(query["text"][0]) == "nl"


def test_earshot_link_prints_an_x_link(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from earshot.cli.app import main as earshot_main

    config = tmp_path / "config.yml"
    config.write_text("products: [{key: bulb, name: Lumen Bulb}]\n", encoding="utf-8")
    monkeypatch.setenv("EARSHOT_CONFIG", str(config))
    monkeypatch.setenv("X_USER_ID", OURS)
    assert earshot_main(["link", "--channel", "x", "--product", "bulb", "--language", "nl"]) == 0
    query = parse_qs(urlsplit(capsys.readouterr().out.strip()).query)
    assert query["recipient_id"] == [OURS]
    assert query["text"][0].endswith("[fb-bulb]") and query["text"][0].startswith("Feedback over")
    monkeypatch.delenv("X_USER_ID")
    assert earshot_main(["link", "--channel", "x", "--product", "bulb"]) == 2
    assert "X_USER_ID" in capsys.readouterr().err


def test_x_settings_come_complete_or_not_at_all() -> None:
    with pytest.raises(ConfigError, match="X_ACCESS_TOKEN_SECRET"):
        load_settings(x_consumer_key="k", x_consumer_secret="s", x_access_token="t", x_user_id="1")
    assert not load_settings().x_enabled
    full = load_settings(
        x_consumer_key="k",
        x_consumer_secret="s",
        x_access_token="t",
        x_access_token_secret="ts",
        x_user_id="1",
    )
    assert full.x_enabled


def test_erasure_removes_a_customers_dms_waiting_in_the_x_spool(tmp_path: Path) -> None:
    from earshot.privacy.erasure import erase_spooled

    spool = Spool(tmp_path / "spool" / "x")
    fake = FakeXAPI()
    for user in ("42", "43"):
        (entry,) = inbound.split(fake.dm_payload(user, "hello"), our_user_id=OURS, key_of=key_of)
        spool.put(entry)
    assert erase_spooled(tmp_path / "spool", customer_key="key-42") == 1
    assert [e["message"]["sender_id"] for _, e in spool.entries()] == ["43"]


def test_a_failed_entry_is_retried_and_entries_left_by_a_crash_are_replayed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from earshot.webhooks import graph

    monkeypatch.setattr(graph, "RETRY_DELAYS", (0.0, 0.0))
    h = Harness(tmp_path)
    fails = [True]
    handled: list[str] = []

    async def flaky(incoming: Incoming) -> None:
        if fails.pop() if fails else False:
            raise RuntimeError("database busy")
        handled.append(str(incoming.text))

    h.processor.handle = flaky
    for text in ("first", "second"):  # what a crash left on disk, in order
        (entry,) = inbound.split(h.fake.dm_payload("42", text), our_user_id=OURS, key_of=key_of)
        h.spool.put(entry)

    async def scenario() -> int:
        count = await h.processor.replay()
        await h.processor.drain()
        return count

    assert asyncio.run(scenario()) == 2
    assert handled == ["first", "second"] and len(h.spool) == 0


def test_earshot_run_names_the_x_port_when_it_is_taken(tmp_path: Path) -> None:
    import socket

    from earshot.cli.supervise import busy_port, x_part
    from testkit.stack import free_port

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rasa_port = free_port()
        settings = load_settings(
            x_consumer_key="k",
            x_consumer_secret="s",
            x_access_token="t",
            x_access_token_secret="ts",
            x_user_id="1",
            x_webhook_port=port,
            rasa_url=f"http://127.0.0.1:{rasa_port}",
            action_server_port=free_port(),
            web_port=free_port(),
        )
        message = busy_port(settings, rasa_port)
    assert message is not None and "X_WEBHOOK_PORT" in message and str(port) in message
    part = x_part(settings, tmp_path)
    assert part.argv[1:] == ["-m", "xdm"] and part.health_url == (
        f"http://127.0.0.1:{port}/healthz"
    )
