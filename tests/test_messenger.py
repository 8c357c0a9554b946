"""The Messenger (and Instagram) adapter against the fake Messenger Platform: layout within
Meta's limits, the Send API with retries, the 24-hour window and message tags, the signed
webhook with messages, quick replies, postbacks, referrals and receipts; and the fake."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from earshot.conversations import messenger as m_queries
from earshot.gateway.model import Button, Incoming, Purpose, Reply
from earshot.settings import Settings
from earshot.storage.db import session_scope
from earshot.storage.models import MessengerSend
from earshot.storage.spool import Spool
from messenger import inbound, render
from messenger.api import SendApi, SendFailed
from messenger.channel import MessengerChannel
from messenger.render import layout
from messenger.webhook import Processor, build_webhook_app
from testkit.messenger_api import DEFAULT_SECRET, DEFAULT_TOKEN, FakeMessengerAPI
from tests.graph_channels import adapter_client, choices, no_sleep, post_signed

PSID = "7100000000000001"
IGSID = "8100000000000001"
VERIFY = "verify-me"
pytestmark = pytest.mark.usefixtures("no_config_file")


# --------------------------------------------------------------------------- layout


def test_votes_are_quick_replies_on_the_answer() -> None:
    (out,) = layout(Reply("Did that help?", (Button("👍 Yes", "r1"), Button("👎 No", "r2"))))
    assert out.kind == "quick_replies" and out.text == "Did that help?"
    assert [(t, p) for t, p, _ in out.buttons] == [("👍 Yes", "r1"), ("👎 No", "r2")]


def test_long_titles_are_shortened_and_written_out_in_full() -> None:
    long_title = "The Lumen Thermostat keeps switching off at night"
    (out,) = layout(Reply("Which one?", (Button(long_title, "a"), Button("Other", "b"))))
    assert out.kind == "quick_replies" and all(len(t) <= 20 for t, _, _ in out.buttons)
    assert f"• {long_title}" in out.text


def test_more_than_13_choices_become_button_templates_of_3() -> None:
    outs = layout(Reply("Pick a topic", choices(14)), "nl")
    assert [o.kind for o in outs] == ["buttons"] * 5
    assert outs[0].text == "Pick a topic" and outs[1].text == "Meer keuzes:"
    assert [p for o in outs for _, p, _ in o.buttons] == [f"ref{i}" for i in range(14)]


def test_links_ride_a_button_template_or_are_written_out() -> None:
    (tpl,) = layout(Reply("Returns", (Button("Portal", url="https://x.example/r"), *choices(2))))
    assert tpl.kind == "buttons" and tpl.buttons[0] == ("Portal", None, "https://x.example/r")
    outs = layout(Reply("Pick", (Button("Website", url="https://x.example"), *choices(3))))
    assert outs[-1].kind == "quick_replies" and "Website: https://x.example" in outs[-1].text
    long = layout(Reply("y " * 400, (Button("Portal", url="https://x.example/r"), *choices(2))))
    assert [o.kind for o in long] == ["quick_replies"] and "Portal: https://x" in long[0].text


def test_long_text_is_split_at_2000_and_html_is_dropped() -> None:
    text = "<b>Note</b> " + ("word " * 900).strip()  # 4,504 characters
    outs = layout(Reply(text, choices(2)))
    assert [o.kind for o in outs] == ["text", "text", "quick_replies"]
    assert all(len(o.text) <= 2000 for o in outs) and outs[0].text.startswith("Note word")
    assert all(len(o.text) <= 1000 for o in layout(Reply(text), text_limit=1000))


# --------------------------------------------------------------------------- the fake


@pytest.fixture
def fake() -> Iterator[FakeMessengerAPI]:
    with FakeMessengerAPI() as api:
        yield api


def send_api(fake: FakeMessengerAPI, token: str = DEFAULT_TOKEN) -> SendApi:
    return SendApi(token=token, base_url=fake.base_url, sleep=no_sleep)


async def test_every_layout_is_accepted_by_the_fake(fake: FakeMessengerAPI) -> None:
    fake.open_window(PSID)
    api = send_api(fake)
    replies = [
        Reply("Did that help?", (Button("👍", "r1"), Button("👎", "r2"))),
        Reply("Which topic?", choices(16, "A rather long topic title")),
        Reply("Manuals", (Button("Open manuals", url="https://x.example/m"),)),
        Reply("x " * 1500, image="https://x.example/a.png"),
    ]
    for reply in replies:
        for out in layout(reply):
            await api.send(PSID, render.message(out))
    await api.aclose()
    assert fake.refused == []
    assert [m.type for m in fake.sent] == [
        "quick_replies",
        *["buttons"] * 6,
        "buttons",
        "image",
        "text",
        "text",
    ]


async def test_the_fake_refuses_what_meta_refuses(fake: FakeMessengerAPI) -> None:
    fake.open_window(PSID)
    api = send_api(fake)
    too_many = {
        "text": "?",
        "quick_replies": [
            {"content_type": "text", "title": f"q{i}", "payload": f"p{i}"} for i in range(14)
        ],
    }
    long_title = {
        "text": "?",
        "quick_replies": [{"content_type": "text", "title": "x" * 21, "payload": "p"}],
    }
    for message in ({"text": "x" * 2001}, too_many, long_title):
        with pytest.raises(SendFailed) as failed:
            await api.send(PSID, message)
        assert failed.value.code == 100 and failed.value.permanent
    with pytest.raises(SendFailed) as failed:
        await send_api(fake, "stolen").send(PSID, {"text": "hi"})
    assert failed.value.code == 190
    error = fake.refused[-1][1]["error"]
    assert error["type"] == "OAuthException" and error["message"].startswith("(#190)")
    # Outside the window: untagged refused (10/2018278), ACCOUNT_UPDATE accepted.
    fake.close_window(PSID)
    with pytest.raises(SendFailed) as failed:
        await api.send(PSID, {"text": "late"}, messaging_type="UPDATE")
    assert failed.value.window_closed
    await api.send(PSID, {"text": "status"}, messaging_type="MESSAGE_TAG", tag="ACCOUNT_UPDATE")
    with pytest.raises(SendFailed):  # not a tag Meta knows
        await api.send(PSID, {"text": "sale!"}, messaging_type="MESSAGE_TAG", tag="PROMOTION")
    await api.aclose()


async def test_rate_limits_are_retried_permanent_errors_are_not(fake: FakeMessengerAPI) -> None:
    fake.open_window(PSID)
    api = send_api(fake)
    fake.fail_next(613)
    fake.fail_next(4)
    fake.fail_next(32)
    await api.send(PSID, {"text": "Hello"})
    assert fake.requests == 4 and len(fake.sent) == 1
    await MessengerChannel(Settings(), api).typing(PSID)
    assert fake.actions == [(PSID, "typing_on")] and len(fake.sent) == 1
    fake.fail_next(551, subcode=1545041)
    with pytest.raises(SendFailed) as failed:
        await api.send(PSID, {"text": "Hello"})
    assert failed.value.code == 551 and failed.value.permanent
    assert fake.requests == 6  # tried once
    await api.aclose()


def test_the_fake_plays_the_customer_side_as_meta_does(
    fake: FakeMessengerAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    posted: list[dict[str, Any]] = []

    def record(payload: dict[str, Any], *, signed: str = "valid") -> httpx.Response:
        posted.append(payload)
        return httpx.Response(200, request=httpx.Request("POST", "http://adapter/messenger"))

    monkeypatch.setattr(fake, "post_webhook", record)
    fake.open_window(PSID)
    quick = layout(Reply("Helped?", (Button("Yes", "q1"),)))[0]
    template = layout(Reply("Open", (Button("Site", url="https://x.example"), Button("Go", "t1"))))
    fake._accept(
        {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": render.message(quick)},
        "",
    )
    fake._accept(
        {
            "recipient": {"id": PSID},
            "messaging_type": "RESPONSE",
            "message": render.message(template[0]),
        },
        "",
    )
    fake.press_title(PSID, "Yes")
    fake.press_title(PSID, "Go")
    fake.push_referral(PSID, "fb-bulb")
    fake.push_receipt(IGSID, "read", mids=["m_1"], platform="instagram")
    events = [p["entry"][0]["messaging"][0] for p in posted]
    assert events[0]["message"]["quick_reply"] == {"payload": "q1"}  # a quick reply: a message
    assert events[1]["postback"]["payload"] == "t1"  # a template button: a postback
    assert events[2]["referral"]["ref"] == "fb-bulb"
    assert events[3]["read"] == {"mid": "m_1"} and posted[3]["object"] == "instagram"
    with pytest.raises(LookupError):
        fake.press_title(PSID, "Never shown")


# --------------------------------------------------------------------------- the window


def settings_for(db_url: str, tmp_path: Path, **kw: Any) -> Settings:
    return Settings(database_url=db_url, data_dir=tmp_path, languages=["en", "nl"], **kw)


async def test_proactive_messages_honour_the_window_and_tags(
    fake: FakeMessengerAPI, committing_db: str, tmp_path: Path
) -> None:
    channel = MessengerChannel(settings_for(committing_db, tmp_path), send_api(fake))
    ask = [Reply("How is your thermostat doing?")]
    # Closed (never wrote): a campaign is skipped, a status notice goes tagged.
    sent = await channel.send(PSID, ask, purpose=Purpose.CAMPAIGN, language="nl", ref="w")
    assert sent.skipped == "window_closed" and fake.sent == []
    notice = await channel.send(PSID, ask, purpose=Purpose.NOTICE, language="en", ref="LH-1")
    assert notice.message_ids and fake.sent[-1].payload["tag"] == "ACCOUNT_UPDATE"
    assert fake.sent[-1].payload["messaging_type"] == "MESSAGE_TAG"
    # The customer writes: the campaign goes as an UPDATE.
    fake.open_window(PSID)
    with session_scope(committing_db) as session:
        m_queries.note_inbound(session, customer_key=channel.key(PSID))
    sent = await channel.send(PSID, ask, purpose=Purpose.CAMPAIGN, language="en", ref="w")
    assert sent.message_ids and fake.sent[-1].payload["messaging_type"] == "UPDATE"
    reply = await channel.send(PSID, ask, purpose=Purpose.REPLY, language="en")
    assert reply.message_ids and fake.sent[-1].payload["messaging_type"] == "RESPONSE"
    with session_scope(committing_db) as session:
        assert m_queries.status_counts(session, kind="campaign", ref="w") == {"accepted": 1}
        row = session.get(MessengerSend, notice.message_ids[0])
        assert row is not None and (row.kind, row.ref, row.template) == (
            "notice",
            "LH-1",
            "ACCOUNT_UPDATE",
        )
    await channel.api.aclose()


async def test_instagram_takes_no_update_tag_and_shorter_texts(
    fake: FakeMessengerAPI, committing_db: str, tmp_path: Path
) -> None:
    s = settings_for(
        committing_db,
        tmp_path,
        instagram_enabled=True,
        messenger_page_access_token=DEFAULT_TOKEN,
        messenger_app_secret=DEFAULT_SECRET,
    )
    channel = MessengerChannel(s, send_api(fake), "instagram")
    assert channel.key(IGSID) != MessengerChannel(s, channel.api).key(IGSID)
    notice = await channel.send(IGSID, [Reply("Planned!")], purpose=Purpose.NOTICE, language="en")
    assert notice.skipped == "window_closed" and fake.sent == []
    fake.open_window(IGSID)  # the customer wrote on Instagram
    fake.instagram.add(IGSID)
    sent = await channel.send(IGSID, [Reply("y " * 900)], purpose=Purpose.REPLY, language="en")
    assert len(sent.message_ids) == 2 and fake.refused == []  # 1,800 characters: two parts
    await channel.api.aclose()


# --------------------------------------------------------------------------- the webhook


@pytest_asyncio.fixture
async def hook(
    fake: FakeMessengerAPI, committing_db: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Processor, list[Incoming]]]:
    seen: list[Incoming] = []

    async def handle(msg: Incoming) -> None:
        seen.append(msg)

    s = settings_for(committing_db, tmp_path)
    channels = {p: MessengerChannel(s, send_api(fake), p) for p in ("messenger", "instagram")}
    processor = Processor(handle, committing_db, Spool(tmp_path / "spool" / "messenger"))
    app = build_webhook_app(
        path="/messenger",
        app_secret=DEFAULT_SECRET,
        verify_token=VERIFY,
        processor=processor,
        key_of=lambda p, sender: channels[p].key(sender),
        platforms=frozenset({"messenger"}),
    )
    async with adapter_client(app) as client:
        yield client, processor, seen
    for c in channels.values():
        await c.api.aclose()


async def post(client: httpx.AsyncClient, payload: dict[str, Any], signed: str = "valid") -> int:
    return await post_signed(client, "/messenger", payload, signed, DEFAULT_SECRET)


async def test_handshake_and_forged_posts(hook: Any, fake: FakeMessengerAPI) -> None:
    client, processor, seen = hook
    q = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "42"}
    ok = await client.get("/messenger", params=q)
    assert ok.status_code == 200 and ok.text == "42"
    wrong = await client.get("/messenger", params={**q, "hub.verify_token": "x"})
    assert wrong.status_code == 403
    payload = fake.event_payload(PSID, {"message": {"mid": "m1", "text": "hi"}})
    assert await post(client, payload, "none") == 403
    assert await post(client, payload, "wrong") == 403
    ig = fake.event_payload(IGSID, {"message": {"mid": "m2", "text": "hi"}}, platform="instagram")
    assert await post(client, ig) == 400  # Instagram is not enabled here
    await processor.drain()
    assert seen == [] and len(processor.spool) == 0


async def test_events_are_stored_redacted_then_handed_on(
    hook: Any, fake: FakeMessengerAPI, committing_db: str
) -> None:
    client, processor, seen = hook
    events: list[dict[str, Any]] = [
        {"message": {"mid": "m1", "text": "mail me at sam@example.com please"}},
        {"message": {"mid": "m2", "text": "Yes", "quick_reply": {"payload": "k1"}}},
        {"postback": {"mid": "m3", "title": "Answer", "payload": "k2"}},
        {"referral": {"ref": "fb-bulb", "source": "SHORTLINK", "type": "OPEN_THREAD"}},
        {
            "postback": {
                "title": "Get Started",
                "payload": "GET_STARTED",
                "referral": {"ref": "c-winter"},
            }
        },
        {"message": {"mid": "m5", "text": "stoppen"}},
        {"message": {"mid": "m6", "attachments": [{"type": "audio", "payload": {"url": "u"}}]}},
        {"message": {"mid": "m7", "sticker_id": 1, "attachments": [{"type": "image"}]}},
        {"message": {"mid": "m8", "is_echo": True, "text": "our own message"}},
    ]
    for ev in events:
        assert await post(client, fake.event_payload(PSID, ev)) == 200
    stored = [e for _, e in processor.spool.entries()]
    assert "sam@example.com" not in json.dumps(stored)
    await processor.drain()
    assert len(processor.spool) == 0 and len(seen) == 8  # the echo is dropped
    assert seen[0].text is not None and "sam@example.com" not in seen[0].text
    assert [seen[1].button, seen[2].button] == ["k1", "k2"]
    assert [m.text for m in seen[3:6]] == ["/start fb-bulb", "/start c-winter", "/stop"]
    assert [m.media for m in seen[6:]] == ["voice", "sticker"]
    assert {m.channel for m in seen} == {"messenger"} and {m.user_id for m in seen} == {PSID}
    key = MessengerChannel(Settings(), send_api(fake)).key(PSID)
    with session_scope(committing_db) as session:  # the customer wrote: the window is open
        assert m_queries.window_open(session, customer_key=key)


async def test_delivery_and_read_receipts_are_recorded(
    hook: Any, fake: FakeMessengerAPI, committing_db: str
) -> None:
    client, processor, _ = hook
    key = MessengerChannel(Settings(), send_api(fake)).key(PSID)
    with session_scope(committing_db) as session:
        for mid in ("m_S1", "m_S2"):
            m_queries.record_send(
                session, message_id=mid, customer_key=key, kind="campaign", ref="winter"
            )
    await asyncio.sleep(0.01)
    delivered = fake.event_payload(PSID, {"delivery": {"mids": ["m_S1"], "watermark": 1}})
    assert await post(client, delivered) == 200
    await processor.drain()
    with session_scope(committing_db) as session:
        counts = m_queries.status_counts(session, kind="campaign", ref="winter")
        assert counts == {"delivered": 1, "accepted": 1}
    import time

    read = fake.event_payload(PSID, {"read": {"watermark": int(time.time() * 1000) + 1000}})
    assert await post(client, read) == 200
    await processor.drain()
    with session_scope(committing_db) as session:
        assert m_queries.status_counts(session, kind="campaign", ref="winter") == {"read": 2}


def test_split_keys_customers_per_platform() -> None:
    payload = FakeMessengerAPI().event_payload(
        IGSID, {"message": {"mid": "m", "text": "hoi"}}, platform="instagram"
    )
    (entry,) = inbound.split(payload, lambda p, s: f"{p}:{s}", frozenset({"instagram"}))
    assert entry["customer_key"] == f"instagram:{IGSID}" and entry["platform"] == "instagram"
    with pytest.raises(ValueError):
        wa = {"object": "whatsapp_business_account"}
        list(inbound.split(wa, lambda p, s: s, frozenset({"messenger"})))


# --------------------------------------------------------------------------- deep links


def test_m_me_and_ig_me_links_carry_the_code_the_adapter_starts_with(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from urllib.parse import parse_qs, urlsplit

    from earshot.cli.app import main as earshot_main
    from earshot.outreach.links import LinkError, deep_link

    s = Settings(
        products=[{"key": "bulb", "name": "Lumen Bulb"}],
        campaigns=[{"id": "winter", "question": {"en": "How?"}}],
        messenger={"page": "lumenhome.example", "instagram_username": "lumenhome"},
    )
    fake = FakeMessengerAPI()
    for channel, host, path in (
        ("messenger", "m.me", "/lumenhome.example"),
        ("instagram", "ig.me", "/m/lumenhome"),
    ):
        url = urlsplit(deep_link(s, channel, product="bulb"))
        assert (url.netloc, url.path) == (host, path)
        (ref,) = parse_qs(url.query)["ref"]
        referral = fake.event_payload(PSID, {"referral": {"ref": ref}})
        (entry,) = inbound.split(referral, lambda p, x: x, frozenset({"messenger"}))
        assert inbound.incoming(entry).text == "/start fb-bulb"
    assert deep_link(s, "messenger", campaign="winter").endswith("?ref=c-winter")
    with pytest.raises(LinkError):
        deep_link(s, "messenger", product="toaster")
    with pytest.raises(LinkError):
        deep_link(Settings(products=[{"key": "bulb", "name": "B"}]), "messenger", product="bulb")
    # A forged ref starts a plain conversation, never an unknown deep link.
    odd = fake.event_payload(PSID, {"referral": {"ref": "x{'inject': 1}"}})
    (entry,) = inbound.split(odd, lambda p, x: x, frozenset({"messenger"}))
    assert inbound.incoming(entry).text == "/start"
    config = tmp_path / "config.yml"
    config.write_text(
        "products: [{key: bulb, name: Lumen Bulb}]\nmessenger: {page: lumenhome.example}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("EARSHOT_CONFIG", str(config))
    assert earshot_main(["link", "--channel", "messenger", "--product", "bulb"]) == 0
    assert capsys.readouterr().out.strip() == "https://m.me/lumenhome.example?ref=fb-bulb"
    assert earshot_main(["link", "--channel", "instagram", "--product", "bulb"]) == 2


async def test_a_receipt_waits_for_the_send_in_flight_to_be_recorded(
    fake: FakeMessengerAPI, committing_db: str, tmp_path: Path
) -> None:
    import contextlib
    import time

    lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def customer_lock(_: str) -> AsyncIterator[None]:
        async with lock:
            yield

    async def handle(_: Incoming) -> None:
        pass

    channel = MessengerChannel(settings_for(committing_db, tmp_path), send_api(fake))
    processor = Processor(handle, committing_db, Spool(tmp_path / "s"), customer_lock=customer_lock)
    key = channel.key(PSID)
    read = fake.event_payload(PSID, {"read": {"watermark": int(time.time() * 1000) + 5000}})
    (entry,) = inbound.split(read, lambda p, s: key, frozenset({"messenger"}))
    async with lock:  # the gateway sends a notice: Meta's read receipt overtakes its record
        processor.start(entry, processor.spool.put(entry))
        await asyncio.sleep(0.05)
        with session_scope(committing_db) as session:
            m_queries.record_send(
                session, message_id="m_race", customer_key=key, kind="notice", ref="LH-9"
            )
    await processor.drain()
    with session_scope(committing_db) as session:
        assert m_queries.status_counts(session, kind="notice", ref="LH-9") == {"read": 1}
    await channel.api.aclose()
