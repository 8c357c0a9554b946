"""The conversation gateway with a fake Rasa (httpx MockTransport) and a recording channel:
commands, dedupe, ordering per customer, redaction, button references, erasure, handoff,
the inbox and its replay, the inbound limit and skipped proactive sends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from earshot.feedback import queries as feedback_queries
from earshot.feedback.schemas import FeedbackIn
from earshot.gateway import outreach
from earshot.gateway.model import Handoff, Incoming, Purpose, Reply, Sent
from earshot.gateway.rasa import RasaClient
from earshot.gateway.service import Gateway
from earshot.privacy.identity import user_key
from earshot.settings import Settings, load_settings
from earshot.storage.db import migrate, session_scope
from earshot.storage.models import CampaignSend, Customer, Feedback, InboxMessage

SECRET = "gateway-test-secret-0123456789"
HELP_BUTTONS = [
    {"title": "Yes", "payload": '/rate{"helpful": true}'},
    {"title": "No", "payload": '/rate{"helpful": false}'},
    {"title": "Website", "payload": "https://example.com/help"},
]


@dataclass
class FakeRasa:
    """Rasa's earshot channel: records each body; answers "You said: ..." with buttons."""

    received: list[dict[str, Any]] = field(default_factory=list)
    up: bool = True
    hold: dict[str, asyncio.Event] = field(default_factory=dict)  # message -> release
    answers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    async def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path.endswith("/trigger_intent"):
            if not self.up:
                return httpx.Response(503)
            return httpx.Response(200, json={"messages": [{"text": f"asked {body['name']}"}]})
        message = body["message"]
        if message in self.hold:
            await self.hold[message].wait()
        if not self.up:
            return httpx.Response(503, json={"error": "down"})
        self.received.append(body)
        answer = self.answers.get(message) or [
            {"text": f"You said: {message}"},
            {"text": "Did that help?", "buttons": HELP_BUTTONS},
        ]
        return httpx.Response(200, json=answer)

    @property
    def messages(self) -> list[str]:
        return [b["message"] for b in self.received]


@dataclass
class Recorder:
    """A channel that records what the gateway asked it to show."""

    name: str = "test"
    proactive: bool = True
    sent: list[tuple[str, Reply, Purpose]] = field(default_factory=list)
    skip: str | None = None

    async def send(
        self, chat_id: str, replies: list[Reply], *, purpose: Purpose, language: str
    ) -> Sent:
        self.sent += [(chat_id, r, purpose) for r in replies]
        return Sent(skipped=self.skip)

    @property
    def texts(self) -> list[str]:
        return [r.text for _, r, _ in self.sent]

    def refs(self, title: str) -> list[str]:
        return [b.ref or "" for _, r, _ in self.sent for b in r.buttons if b.title == title]


@dataclass
class Desk:
    handoffs: list[Handoff] = field(default_factory=list)
    up: bool = True

    async def hand_off(self, handoff: Handoff) -> bool:
        self.handoffs.append(handoff)
        return self.up


@dataclass
class World:
    settings: Settings
    rasa: FakeRasa
    desk: Desk
    make: Callable[[], Gateway]
    gw: Gateway

    def run(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run(coro)  # type: ignore[arg-type]

    def say(self, text: str, channel: Recorder, user: str = "u1", **kw: Any) -> Any:
        return self.run(
            self.gw.handle(Incoming(channel.name, user, user, text=text, **kw), channel)
        )

    def press(self, ref: str, channel: Recorder, user: str = "u1") -> Any:
        return self.run(self.gw.handle(Incoming(channel.name, user, user, button=ref), channel))


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("EARSHOT_CONFIG", str(tmp_path / "none.yml"))
    url = f"sqlite:///{tmp_path / 'gw.db'}"
    migrate(url)
    settings = load_settings(
        database_url=url,
        data_dir=tmp_path,
        earshot_secret=SECRET,
        languages=["en", "nl"],
        default_language="en",
        rasa_url="http://rasa.test",
        customer_messages_per_minute=0,
    )
    rasa, desk = FakeRasa(), Desk()

    def make() -> Gateway:
        client = RasaClient(settings.rasa_url, transport=httpx.MockTransport(rasa.handler))
        return Gateway(settings, rasa=client, support=desk)

    return World(settings, rasa, desk, make, make())


def key(user: str = "u1", channel: str = "test") -> str:
    return user_key(SECRET, channel, user)


# --- commands ---------------------------------------------------------------------------------


def test_every_command_maps_to_its_intent_and_unknown_ones_stay_here(world: World) -> None:
    ch = Recorder()
    for typed in ("/start", "/help", "/myfeedback", "/feedback", "/privacy", "/stop"):
        world.say(typed, ch)
    world.say("/start@EarshotBot FB-Lamp", ch)
    world.say("/language", ch)
    assert world.rasa.messages == [
        "/start",
        "/help",
        "/my_feedback",
        "/give_feedback",
        "/privacy_policy",
        "/stop_asking",
        '/start{"deep_link": "fb-lamp"}',
        "/set_language",
    ]
    n = len(world.rasa.received)
    outcome = world.say('/rate{"helpful": true}', ch)
    assert outcome.status == "unknown_command" and "don't know that command" in ch.texts[-1]
    assert len(world.rasa.received) == n  # an intent cannot be typed in


def test_a_chosen_language_sticks_over_the_channel_hint(world: World) -> None:
    ch = Recorder()
    world.say("/language nl", ch, language_hint="en")
    assert world.rasa.received[-1]["message"] == '/set_language{"language": "nl"}'
    assert world.rasa.received[-1]["metadata"]["language"] == "nl"
    outcome = world.say("where is my order", ch, language_hint="en")
    assert outcome.language == "nl" and world.rasa.received[-1]["metadata"]["language"] == "nl"
    world.say("/nosuchthing", ch, language_hint="en")
    assert "Dat commando ken ik niet" in ch.texts[-1]  # the gateway's own texts too


# --- dedupe, ordering, redaction ------------------------------------------------------------


def test_a_redelivered_message_is_answered_once_also_after_a_restart(world: World) -> None:
    ch = Recorder()
    first = Incoming("test", "u1", "u1", message_id="wamid.ABC", text="hello")
    assert world.run(world.gw.handle(first, ch)).status == "answered"
    assert world.run(world.gw.handle(first, ch)).status == "duplicate"
    assert world.run(world.make().handle(first, ch)).status == "duplicate"  # a new process
    other = Incoming("other", "u1", "u1", message_id="wamid.ABC", text="hello")
    assert world.run(world.gw.handle(other, Recorder(name="other"))).status == "answered"
    assert world.rasa.messages == ["hello", "hello"]


def test_one_turn_at_a_time_per_customer_others_are_not_held_up(world: World) -> None:
    ch = Recorder()

    async def scenario() -> list[str]:
        release = world.rasa.hold["first"] = asyncio.Event()
        order: list[str] = []
        gw = world.gw

        async def say(user: str, text: str) -> None:
            await gw.handle(Incoming("test", user, user, text=text), ch)
            order.append(text)

        first = asyncio.create_task(say("u1", "first"))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(say("u1", "second"))
        await say("u2", "someone else")  # not held up by u1's slow turn
        await asyncio.sleep(0.05)
        assert order == ["someone else"] and not second.done()
        release.set()
        await asyncio.gather(first, second)
        return order

    assert world.run(scenario()) == ["someone else", "first", "second"]
    mine = [b["message"] for b in world.rasa.received if b["sender"] == key("u1")]
    assert mine == ["first", "second"]


def test_typed_personal_details_are_redacted_before_rasa_sees_them(world: World) -> None:
    world.say("mail me at jan.jansen@example.nl or 06-12345678", Recorder())
    sent = world.rasa.received[-1]
    assert "jan.jansen" not in json.dumps(sent) and "12345678" not in json.dumps(sent)
    assert "[email]" in sent["message"] and "[phone]" in sent["message"]
    assert sent["sender"] == key() and "u1" not in sent["sender"]


# --- buttons ----------------------------------------------------------------------------------


def test_channels_see_references_and_a_press_sends_the_stored_payload(world: World) -> None:
    ch = Recorder()
    world.say("hello", ch)
    buttons = ch.sent[-1][1].buttons
    assert [b.title for b in buttons] == ["Yes", "No", "Website"]
    assert buttons[2].url == "https://example.com/help" and buttons[2].ref is None
    assert all("rate" not in (b.ref or "") for b in buttons)  # payloads stay server-side
    world.press(ch.refs("No")[0], ch)
    assert world.rasa.received[-1]["message"] == '/rate{"helpful": false}'


def test_forged_expired_or_someone_elses_buttons_are_answered_expired(world: World) -> None:
    ch = Recorder()
    world.say("hello", ch)
    ref = ch.refs("Yes")[0]
    n = len(world.rasa.received)
    for forged in ("forged:0", ref.split(":")[0] + ":9", "x" * 80 + ":0"):
        assert world.press(forged, ch).status == "expired"
        assert "expired" in ch.texts[-1]
    assert world.press(ref, ch, user="intruder").status == "expired"
    assert len(world.rasa.received) == n


def test_a_channel_with_a_press_hook_shows_the_notice_itself(world: World) -> None:
    @dataclass
    class Toasting(Recorder):
        notices: list[str | None] = field(default_factory=list)

        async def pressed(self, incoming: Incoming, notice: str | None) -> None:
            self.notices.append(notice)

    ch = Toasting()
    world.say("hello", ch)
    shown = len(ch.sent)
    outcome = world.press("forged:0", ch)
    assert outcome.status == "expired" and "expired" in (outcome.notice or "")
    assert len(ch.sent) == shown and ch.notices == [outcome.notice]  # no extra message
    world.press(ch.refs("Yes")[0], ch)
    assert ch.notices[-1] is None and world.rasa.messages[-1] == '/rate{"helpful": true}'


# --- erasure ----------------------------------------------------------------------------------


def _add_item(world: World, description: str) -> None:
    with session_scope(world.settings.db_url) as s:
        feedback_queries.create_feedback(
            s,
            item=FeedbackIn(description=description, customer_key=key(), channel="test"),
            ref_prefix="GW",
        )


def _items(world: World) -> list[str]:
    with session_scope(world.settings.db_url) as s:
        return list(s.scalars(select(Feedback.description).where(Feedback.customer_key == key())))


def test_deletemydata_chooses_confirms_and_erases_without_rasa(world: World) -> None:
    ch = Recorder()
    world.say("hello", ch)
    _add_item(world, "a sunrise alarm please")
    n = len(world.rasa.received)
    assert world.say("/deletemydata", ch).status == "erasure"
    assert "What would you like me to delete?" in ch.texts[-1] and "<b>" not in ch.texts[-1]
    assert [b.title for b in ch.sent[-1][1].buttons] == [
        "Delete my personal data",
        "Delete everything, my feedback too",
        "Cancel",
    ]
    world.press(ch.refs("Delete everything, my feedback too")[0], ch)
    assert "cannot be undone" in ch.texts[-1]
    world.press(ch.refs("Yes, delete")[0], ch)
    assert ch.texts[-1].startswith("Done: I've deleted everything")
    assert len(world.rasa.received) == n and _items(world) == []
    with session_scope(world.settings.db_url) as s:
        assert s.scalar(select(Customer).where(Customer.user_key == key())) is None


def test_typed_erasure_steps_are_just_text_and_cancel_deletes_nothing(world: World) -> None:
    ch = Recorder()
    _add_item(world, "keep me")
    world.say("erase:do:all", ch)
    assert world.rasa.messages[-1] == "erase:do:all"
    world.say("/deletemydata", ch)
    world.press(ch.refs("Cancel")[0], ch)
    assert "haven't deleted anything" in ch.texts[-1] and _items(world) == ["keep me"]


# --- handoff ----------------------------------------------------------------------------------


def test_a_handoff_reaches_the_support_desk_and_the_customer_is_told(world: World) -> None:
    world.rasa.answers["I want a human"] = [
        {"custom": {"handoff": {"support_chat_id": -100, "topic": "returns", "transcript": "t"}}},
        {"text": "I've passed our conversation on to our support team."},
    ]
    ch = Recorder()
    world.say("I want a human", ch, display_name="Ann")
    [handoff] = world.desk.handoffs
    assert (handoff.customer_key, handoff.channel, handoff.chat_id) == (key(), "test", "u1")
    assert (handoff.display_name, handoff.topic, handoff.transcript) == ("Ann", "returns", "t")
    assert handoff.support_chat_id == "-100"
    assert ch.texts == ["I've passed our conversation on to our support team."]


def test_a_handoff_that_fails_tells_the_customer_how_to_reach_a_person(world: World) -> None:
    world.rasa.answers["I want a human"] = [
        {"custom": {"handoff": {"support_chat_id": -100, "transcript": "t"}}},
        {"text": "I've passed our conversation on to our support team."},
    ]
    world.desk.up = False
    ch = Recorder()
    world.say("I want a human", ch)
    assert len(world.desk.handoffs) == 1
    assert "couldn't reach our support team" in ch.texts[1]


# --- Rasa down: kept, told once, replayed in order ---------------------------------------------


def _pending(world: World) -> list[str]:
    with session_scope(world.settings.db_url) as s:
        rows = s.scalars(select(InboxMessage).where(InboxMessage.done_at.is_(None))).all()
        return [r.text for r in rows]


def test_while_rasa_is_down_messages_are_kept_told_once_and_replayed_in_order(
    world: World,
) -> None:
    ch = Recorder()
    world.rasa.up = False
    assert world.say("first", ch).status == "kept"
    assert world.say("second", ch).status in ("kept", "queued")
    assert sum("can't answer right now" in t for t in ch.texts) == 1  # told once
    assert _pending(world) == ["first", "second"]
    assert world.run(world.gw.replay_inbox([ch])) == 0  # still down: nothing lost
    world.rasa.up = True
    assert world.run(world.gw.replay_inbox([Recorder(name="elsewhere")])) == 0  # not ours
    assert world.run(world.gw.replay_inbox([ch])) == 2
    assert world.rasa.messages == ["first", "second"] and _pending(world) == []
    assert [t for t in ch.texts if t.startswith("You said")] == [
        "You said: first\n\nDid that help?",
        "You said: second\n\nDid that help?",
    ]
    assert world.say("third", ch).status == "answered"


def test_a_channel_that_cannot_write_later_says_try_again_and_keeps_nothing(
    world: World,
) -> None:
    ch = Recorder(proactive=False)
    world.rasa.up = False
    assert world.say("hello", ch).status == "unavailable"
    assert "try again" in ch.texts[-1] and _pending(world) == []


# --- limits and proactive sends ---------------------------------------------------------------


def test_a_flood_gets_one_notice_then_silence(world: World) -> None:
    world.gw.limit.limit = 3
    ch = Recorder()
    outcomes = [world.say(f"msg {i}", ch).status for i in range(5)]
    assert outcomes == ["answered"] * 3 + ["limited"] * 2
    assert sum("very quickly" in t for t in ch.texts) == 1
    assert world.say("hi", ch, user="u2").status == "answered"


def test_a_skipped_campaign_ask_is_counted_as_skipped(world: World) -> None:
    with session_scope(world.settings.db_url) as s:
        for user in ("a", "b"):
            s.add(Customer(user_key=key(user, "test"), channel="test", chat_id=user))
            s.add(CampaignSend(campaign_id="spring", customer_key=key(user, "test")))
    closed = Recorder(skip="window_closed_no_template")
    assert world.run(outreach.send_campaign_asks(world.gw, closed)) == 2
    assert [p for _, _, p in closed.sent] == [Purpose.CAMPAIGN] * 2
    from earshot.outreach.campaigns import campaign_status

    with session_scope(world.settings.db_url) as s:
        status = campaign_status(s, campaign_id="spring")
        reasons = set(s.scalars(select(CampaignSend.skipped_reason)))
    assert (status.skipped, status.sent, status.failed) == (2, 0, 0)
    assert reasons == {"window_closed_no_template"}
