"""The WhatsApp adapter against the fake Cloud API: layout within WhatsApp's limits,
sending with retries, the 24-hour window and templates, the signed webhook, statuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from earshot.conversations import whatsapp as wa_queries
from earshot.gateway.model import Button, Incoming, Purpose, Reply
from earshot.privacy.identity import user_key
from earshot.settings import Settings
from earshot.storage.db import session_scope
from earshot.storage.spool import Spool
from testkit.whatsapp_api import (
    DEFAULT_PHONE_ID,
    DEFAULT_SECRET,
    DEFAULT_TOKEN,
    FakeWhatsAppAPI,
)
from tests import graph_channels
from tests.graph_channels import adapter_client, choices, no_sleep
from whatsapp import inbound
from whatsapp.api import CloudApi, SendFailed
from whatsapp.channel import WhatsAppChannel
from whatsapp.render import layout
from whatsapp.webhook import Processor, build_webhook_app

pytestmark = pytest.mark.usefixtures("no_config_file")
CUSTOMER = "31611111111"
VERIFY = "verify-me"


# --------------------------------------------------------------------------- layout


def test_three_short_choices_are_reply_buttons() -> None:
    (out,) = layout(Reply("Did that help?", (Button("👍 Yes", "r1"), Button("👎 No", "r2"))))
    assert out.kind == "buttons" and [r.title for r in out.rows] == ["👍 Yes", "👎 No"]


def test_long_titles_or_many_choices_become_lists() -> None:
    long_title = "The Lumen Thermostat keeps switching off at night"
    (out,) = layout(Reply("Which one?", (Button(long_title, "a"), Button("Other", "b"))))
    assert out.kind == "list"
    assert len(out.rows[0].title) <= 24 and out.rows[0].description is not None
    assert out.rows[0].description.startswith("The Lumen Thermostat")
    outs = layout(Reply("Pick a topic", choices(23)), "nl")
    assert [o.kind for o in outs] == ["list", "list", "list"]
    assert [len(o.rows) for o in outs] == [10, 10, 3]
    assert outs[0].text == "Pick a topic" and outs[0].title == "Kies"
    assert [r.id for o in outs for r in o.rows] == [f"ref{i}" for i in range(23)]


def test_long_text_is_split_and_the_choices_ride_on_the_last_part() -> None:
    text = ("word " * 1500).strip()  # 7,499 characters
    outs = layout(Reply(text, choices(2)))
    assert [o.kind for o in outs][-1] == "buttons"
    assert all(len(o.text) <= 4096 for o in outs) and len(outs[-1].text) <= 1024
    assert " ".join(" ".join(o.text for o in outs).split()) == text


def test_links_become_a_website_button_or_addresses_in_the_text() -> None:
    (cta,) = layout(Reply("Our manuals", (Button("Open manuals", url="https://x.example/m"),)))
    assert cta.kind == "cta_url" and cta.url == "https://x.example/m"
    outs = layout(Reply("Pick", (Button("Website", url="https://x.example"), *choices(2))))
    assert outs[-1].kind == "buttons" and "Website: https://x.example" in outs[-1].text


# --------------------------------------------------------------------------- fake API


@pytest.fixture
def fake() -> Iterator[FakeWhatsAppAPI]:
    with FakeWhatsAppAPI() as api:
        yield api


def cloud(fake: FakeWhatsAppAPI, per_second: float = 0) -> CloudApi:
    return CloudApi(
        phone_number_id=DEFAULT_PHONE_ID,
        token=DEFAULT_TOKEN,
        base_url=fake.base_url,
        per_second=per_second,
        sleep=no_sleep,
    )


async def test_every_layout_is_accepted_by_the_fake(fake: FakeWhatsAppAPI) -> None:
    fake.open_window(CUSTOMER)
    api = cloud(fake)
    replies = [
        Reply("Did that help?", (Button("👍", "r1"), Button("👎", "r2"))),
        Reply("Which topic?", choices(12, "A rather long topic title")),
        Reply("Manuals", (Button("Open manuals", url="https://x.example/m"),)),
        Reply("x " * 3000, image="https://x.example/a.png"),
    ]
    for reply in replies:
        for out in layout(reply):
            await api.send(CUSTOMER, out)
    await api.aclose()
    assert fake.refused == []
    kinds = [m.payload.get("interactive", {}).get("type", m.type) for m in fake.sent]
    assert kinds == ["button", "list", "list", "cta_url", "image", "text", "text"]


async def test_rate_limits_are_retried_permanent_errors_are_not(fake: FakeWhatsAppAPI) -> None:
    fake.open_window(CUSTOMER)
    api = cloud(fake)
    (out,) = layout(Reply("Hello"))
    fake.fail_next(130429, 2)
    fake.fail_next(130429, http_status=429)
    await api.send(CUSTOMER, out)
    assert fake.requests == 4 and len(fake.sent) == 1
    fake.fail_next(131026)
    with pytest.raises(SendFailed) as failed:
        await api.send(CUSTOMER, out)
    assert failed.value.code == 131026 and failed.value.permanent
    assert fake.requests == 5  # tried once: a permanent error is reported, not retried
    await api.aclose()


# --------------------------------------------------------------------------- the window


def settings_for(db_url: str, tmp_path: Path, templates: dict[str, Any] | None = None) -> Settings:
    return Settings(
        database_url=db_url,
        data_dir=tmp_path,
        languages=["en", "nl"],
        whatsapp={"templates": templates or {}},
    )


async def test_proactive_messages_honour_the_window(
    fake: FakeWhatsAppAPI, committing_db: str, tmp_path: Path
) -> None:
    s = settings_for(committing_db, tmp_path, {"campaign": {"nl": "lumen_campaign_nl"}})
    channel = WhatsAppChannel(s, cloud(fake))
    key = channel.key(CUSTOMER)
    ask = [Reply("How is your thermostat doing?")]
    # Closed (never wrote): a campaign goes as the Dutch template, a notice is skipped.
    sent = await channel.send(CUSTOMER, ask, purpose=Purpose.CAMPAIGN, language="nl", ref="w")
    assert sent.skipped is None and fake.sent[-1].text == "[template lumen_campaign_nl]"
    notice = await channel.send(CUSTOMER, ask, purpose=Purpose.NOTICE, language="en")
    assert notice.skipped == "window_closed" and len(fake.sent) == 1
    # The customer writes: the window opens, the notice goes as typed.
    fake.open_window(CUSTOMER)
    with session_scope(committing_db) as session:
        wa_queries.note_inbound(session, customer_key=key)
    notice = await channel.send(CUSTOMER, ask, purpose=Purpose.NOTICE, language="en", ref="LH-1")
    assert notice.message_ids and fake.sent[-1].text == "How is your thermostat doing?"
    # Replies always go (the fake would refuse them outside the window: 131047).
    fake.close_window(CUSTOMER)
    reply = await channel.send(CUSTOMER, ask, purpose=Purpose.REPLY, language="en")
    assert reply.skipped == "window_closed"  # WhatsApp refused: reported, not retried
    # A permanent refusal of a proactive message is an error the outbox records as failed.
    fake.fail_next(131026)
    with pytest.raises(SendFailed):
        await channel.send(CUSTOMER, ask, purpose=Purpose.CAMPAIGN, language="nl", ref="w")
    with session_scope(committing_db) as session:
        assert wa_queries.status_counts(session, kind="campaign", ref="w") == {"accepted": 1}
        assert wa_queries.status_counts(session, kind="notice", ref="LH-1") == {"accepted": 1}
    await channel.api.aclose()


# --------------------------------------------------------------------------- the webhook


@pytest_asyncio.fixture
async def hook(
    fake: FakeWhatsAppAPI, committing_db: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Processor, list[Incoming]]]:
    seen: list[Incoming] = []

    async def handle(msg: Incoming) -> None:
        seen.append(msg)

    s = settings_for(committing_db, tmp_path)
    channel = WhatsAppChannel(s, cloud(fake))
    processor = Processor(handle, committing_db, Spool(tmp_path / "spool" / "whatsapp"))
    app = build_webhook_app(
        path="/whatsapp",
        app_secret=DEFAULT_SECRET,
        verify_token=VERIFY,
        processor=processor,
        key_of=channel.key,
    )
    async with adapter_client(app) as client:
        yield client, processor, seen
    await channel.api.aclose()


async def test_verification_handshake(hook: Any) -> None:
    client, _, _ = hook
    ok = await client.get(
        "/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "42"},
    )
    assert ok.status_code == 200 and ok.text == "42"
    bad = await client.get(
        "/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "42"},
    )
    assert bad.status_code == 403


async def post_signed(client: httpx.AsyncClient, payload: dict[str, Any], signed: str) -> int:
    return await graph_channels.post_signed(client, "/whatsapp", payload, signed, DEFAULT_SECRET)


async def test_forged_or_unsigned_posts_are_refused_and_not_processed(
    hook: Any, fake: FakeWhatsAppAPI, tmp_path: Path
) -> None:
    client, processor, seen = hook
    payload = fake.message_payload(CUSTOMER, {"type": "text", "text": {"body": "hi"}})
    assert await post_signed(client, payload, "none") == 403
    assert await post_signed(client, payload, "wrong") == 403
    await processor.drain()
    assert seen == [] and len(processor.spool) == 0


async def test_messages_are_stored_redacted_then_handed_on(
    hook: Any, fake: FakeWhatsAppAPI, committing_db: str
) -> None:
    client, processor, seen = hook
    texts = [
        {"type": "text", "text": {"body": "mail me at sam@example.com please"}},
        {"type": "text", "text": {"body": "Feedback Lumen Bulb [fb-bulb]"}},
        {"type": "text", "text": {"body": "STOP"}},
        {"type": "text", "text": {"body": "Afmelden"}},
        {"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": "k1"}}},
        {"type": "audio", "audio": {"id": "m1", "voice": True}},
        {"type": "sticker", "sticker": {"id": "m2"}},
        {"type": "location", "location": {"latitude": 1, "longitude": 2}},
    ]
    started = asyncio.Event()
    release = asyncio.Event()
    handle = processor.handle

    async def slow(msg: Incoming) -> None:  # hold processing: the 200 came before it
        started.set()
        await release.wait()
        await handle(msg)

    processor.handle = slow
    for content in texts:
        assert await post_signed(client, fake.message_payload(CUSTOMER, content), "valid") == 200
    await started.wait()
    stored = [e for _, e in processor.spool.entries()]
    assert len(stored) == len(texts)
    assert "sam@example.com" not in str(stored) and "Sam" not in str(stored[0]["message"])
    release.set()
    await processor.drain()
    assert len(processor.spool) == 0
    assert seen[0].text is not None and "sam@example.com" not in seen[0].text
    assert [m.text for m in seen[1:4]] == ["/start fb-bulb", "/stop", "/stop"]
    assert seen[4].button == "k1"
    assert [m.media for m in seen[5:]] == ["voice", "sticker", "location"]
    assert {m.user_id for m in seen} == {CUSTOMER} and seen[0].display_name == "Sam"
    key = inbound.split(fake.message_payload(CUSTOMER, texts[0]), lambda w: "k:" + w)
    assert next(key)["customer_key"] == "k:" + CUSTOMER
    customer_key = user_key(Settings().earshot_secret.get_secret_value(), "whatsapp", CUSTOMER)
    with session_scope(committing_db) as session:  # the customer wrote: the window is open
        assert wa_queries.window_open(session, customer_key=customer_key)


async def test_delivery_statuses_are_recorded(
    hook: Any, fake: FakeWhatsAppAPI, committing_db: str
) -> None:
    client, processor, _ = hook
    with session_scope(committing_db) as session:
        wa_queries.record_send(
            session, message_id="wamid.S1", customer_key="k", kind="campaign", ref="winter"
        )
        wa_queries.record_send(
            session, message_id="wamid.S2", customer_key="k", kind="campaign", ref="winter"
        )
    for mid, status, code in [
        ("wamid.S1", "sent", None),
        ("wamid.S1", "read", None),
        ("wamid.S1", "delivered", None),  # late: a status never moves back
        ("wamid.S2", "failed", 131026),
        ("wamid.unknown", "read", None),  # a reply's status: not tracked
    ]:
        payload = fake.status_payload(mid, status, error_code=code)
        assert await post_signed(client, payload, "valid") == 200
    await processor.drain()
    with session_scope(committing_db) as session:
        counts = wa_queries.status_counts(session, kind="campaign", ref="winter")
        failed = session.get(wa_queries.WhatsAppSend, "wamid.S2")
        assert counts == {"read": 1, "failed": 1} and failed and failed.error_code == 131026


# --------------------------------------------------------------------------- deep links


def test_a_wa_me_link_starts_the_feedback_flow_like_telegrams_start_parameter() -> None:
    from urllib.parse import parse_qs, urlsplit

    from earshot.outreach.links import LinkError, whatsapp_link

    s = Settings(
        languages=["en", "nl"],
        products=[{"key": "bulb", "name": "Lumen Bulb"}],
        campaigns=[{"id": "winter", "question": {"en": "How?"}}],
        whatsapp={"number": "31201234567"},
    )
    for kwargs, start in (
        ({"product": "bulb", "language": "nl"}, "/start fb-bulb"),
        ({"campaign": "winter"}, "/start c-winter"),
    ):
        url = urlsplit(whatsapp_link(s, **kwargs))
        assert url.netloc == "wa.me" and url.path == "/31201234567"
        (prefilled,) = parse_qs(url.query)["text"]
        assert inbound.typed(prefilled) == start
        # The customer may edit the words before the code; it still starts the flow.
        assert inbound.typed("hoi! " + prefilled) == start
    assert "Lumen Bulb" in whatsapp_link(s, product="bulb").replace("%20", " ")
    with pytest.raises(LinkError):
        whatsapp_link(s, product="toaster")
    assert inbound.typed("my lamp does not stop blinking") == "my lamp does not stop blinking"


def test_telegram_html_becomes_whatsapp_markup() -> None:
    (out,) = layout(Reply("Use <b>/language nl</b> &amp; <i>more</i> <u>x</u>"))
    assert out.text == "Use */language nl* & _more_ x"


async def test_a_failed_entry_is_retried_with_its_claim_released(
    tmp_path: Path, committing_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from earshot.webhooks import graph  # the retry is the shared Graph webhook's

    monkeypatch.setattr(graph, "RETRY_DELAYS", (0.0, 0.0))
    calls: list[str] = []
    released: list[str] = []

    async def flaky(msg: Incoming) -> None:
        calls.append(str(msg.text))
        if len(calls) < 3:
            raise RuntimeError("database is locked")

    def release(_session: Any, *, message_id: str) -> None:
        released.append(message_id)

    spool = Spool(tmp_path / "spool")
    processor = Processor(flaky, committing_db, spool, release=release)
    entry = next(
        inbound.split(
            FakeWhatsAppAPI().message_payload(
                CUSTOMER, {"type": "text", "text": {"body": "hello"}}, message_id="wamid.R1"
            ),
            lambda w: "k-" + w,
        )
    )
    processor.start(entry, spool.put(entry))
    await processor.drain()
    assert calls == ["hello"] * 3 and released == ["wamid.R1"] * 2 and len(spool) == 0


def test_reactions_are_not_answered() -> None:
    fake = FakeWhatsAppAPI()
    reaction = {"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "👍"}}
    assert list(inbound.split(fake.message_payload(CUSTOMER, reaction), str)) == []
    with pytest.raises(ValueError):
        list(inbound.split({"object": "page", "entry": []}, str))


def test_whatsapp_settings_are_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from earshot.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match=r"whatsapp.templates.campaign.de"):
        load_settings(languages=["en"], whatsapp={"templates": {"campaign": {"de": "x_de"}}})
    with pytest.raises(ConfigError, match="not a template name"):
        load_settings(languages=["en"], whatsapp={"templates": {"notice": {"en": "Bad Name"}}})
    with pytest.raises(ConfigError, match="WHATSAPP_APP_SECRET"):
        load_settings(whatsapp_access_token="t", whatsapp_phone_number_id="1")
    ok = load_settings(
        whatsapp_access_token="t", whatsapp_phone_number_id="1", whatsapp_app_secret="s"
    )
    assert ok.whatsapp_enabled and ok.whatsapp_messages_per_second == 80


def test_earshot_run_names_a_taken_whatsapp_port(tmp_path: Path) -> None:
    import socket

    from earshot.cli.supervise import busy_port, whatsapp_part

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        s = Settings(
            data_dir=tmp_path,
            whatsapp_access_token="t",
            whatsapp_phone_number_id="1",
            whatsapp_app_secret="s",
            whatsapp_webhook_port=port,
            web_port=0,
            action_server_port=0,
        )
        message = busy_port(s, rasa_port=0)
    assert message is not None and "WHATSAPP_WEBHOOK_PORT" in message
    part = whatsapp_part(s, tmp_path)
    assert part.argv[-2:] == ["-m", "whatsapp"] and part.health_url is not None
    assert part.health_url.endswith(f":{port}/healthz")
