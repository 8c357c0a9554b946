"""The Telegram journeys on X direct messages: `earshot run` with the X webhook on a fake X
API, real Rasa and action server. English and Dutch; one stack for the module."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from earshot.conversations import queries as conversations
from earshot.outreach import campaigns
from earshot.outreach.links import x_link
from earshot.settings import load_settings
from earshot.storage.db import session_scope
from earshot.storage.models import CampaignSend, Feedback, Notification
from testkit.stack import SUPPORT_CHAT_ID
from testkit.x_api import FakeXAPI, SentMessage
from tests.e2e.channel_stack import (
    ChannelCustomer,
    ChannelStack,
    eventually,
    found_everywhere,
    handled_campaign_send,
    ref_in,
    running_channel,
    spooled,
    texts,
)

pytestmark = pytest.mark.e2e
_users = itertools.count(4_200_000_001)
XStack = ChannelStack[FakeXAPI]


@pytest.fixture(scope="module")
def xs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XStack]:
    with running_channel(
        tmp_path_factory.mktemp("x-stack"),
        name="X",
        path="x",
        fake=lambda url: FakeXAPI(webhook_url=url),
        env=lambda fake, port: {**fake.env(), "X_WEBHOOK_PORT": str(port)},
    ) as stack:
        yield stack


class XCustomer(ChannelCustomer[SentMessage]):
    """A simulated X user: writes DMs, chooses quick replies, reads our DMs."""

    def __init__(self, xs: XStack) -> None:
        super().__init__(xs.fake, "x", str(next(_users)))
        self.xs, self.user_id = xs, self.address

    def _press(self, title: str) -> None:
        self.xs.fake.press_label(self.user_id, title)


def labels(messages: list[SentMessage]) -> list[str]:
    return [label for m in messages for label, _ in m.options]


def give_feedback(me: XCustomer, text: str) -> str:
    me.say("/feedback")
    me.press("Not about a product")
    me.press("Other")
    me.say(text)
    me.press("Skip")
    me.press("No")
    return ref_in(me.press("Confirm"))


# --------------------------------------------------------------------------- the doors


def test_the_crc_challenge_is_answered(xs: XStack) -> None:
    assert xs.fake.crc_passes("first-crc-token")
    assert xs.fake.crc_passes("hourly-crc-token")


def test_a_forged_signature_is_refused_and_nothing_answered(xs: XStack) -> None:
    me = XCustomer(xs)
    payload = xs.fake.dm_payload(me.user_id, "hello")
    assert xs.fake.post_webhook(payload, signed="wrong").status_code == 403
    assert xs.fake.post_webhook(payload, signed="none").status_code == 403
    assert me.settle(2.0) == []


def test_a_redelivered_event_is_answered_once_and_our_echo_not_at_all(xs: XStack) -> None:
    me = XCustomer(xs)
    payload = xs.fake.dm_payload(me.user_id, "hi")
    assert xs.fake.post_webhook(payload).status_code == 200
    (answer,) = me._new(1)
    assert xs.fake.post_webhook(payload).status_code == 200  # X retries: same event id
    xs.fake.push_echo(answer)  # X's copy of our own answer
    xs.fake.push_typing(me.user_id)
    xs.fake.push_typing(me.user_id, read=True)
    assert me.settle(2.5) == []


# --------------------------------------------------------------------------- service


def test_a_service_question_with_its_votes_in_english(xs: XStack) -> None:
    me = XCustomer(xs)
    answer = me.say("Where is my order? I want to track my parcel")
    assert "Did that help?" in texts(answer)
    assert {"👍 Yes", "👎 No"} <= set(labels(answer))
    thanks = me.press("👍 Yes")
    assert "glad" in texts(thanks).lower()


def test_a_service_question_and_a_thumbs_down_in_dutch(xs: XStack) -> None:
    me = XCustomer(xs)
    answer = me.say("Hoe kan ik mijn bestelling retourneren en mijn geld terugkrijgen?")
    assert "Heb je hier iets aan gehad?" in texts(answer)
    assert "https://www.lumenhome.example/returns" in texts(answer)  # a link, written out
    sorry = me.press("👎 Nee")
    assert any(t.startswith("Met een medewerker") for t in labels(sorry)), labels(sorry)


def test_a_photo_gets_an_answer(xs: XStack) -> None:
    me = XCustomer(xs)
    me.say("hello")
    xs.fake.push_media(me.user_id, "photo")
    assert texts(me._new(1)).strip()


def test_a_rate_limited_answer_goes_out_after_the_reset(xs: XStack) -> None:
    me = XCustomer(xs)
    xs.fake.fail_next(88, status=429, reset_in=2)
    answer = me.say("Where is my order? I want to track my parcel")
    assert "Did that help?" in texts(answer)
    assert any(e["errors"][0]["code"] == 88 for e in xs.fake.refused)


def test_a_handoff_reaches_the_support_chat_and_the_customer_is_told(xs: XStack) -> None:
    me = XCustomer(xs)
    me.say("My Lumen Hub is offline and the lights do not respond")
    told = me.say("I want to talk to a human please")
    assert "support team" in texts(told) and "get back to you here" in texts(told)

    def forwarded() -> str | None:
        text = " ".join(m.text or "" for m in xs.stack.fake.sent_messages(SUPPORT_CHAT_ID))
        return text if me.user_id in text else None

    text = eventually(forwarded, "no handoff in the support chat")
    assert "asked to talk to a person on X (Twitter)" in text and "Hub is offline" in text
    assert f"recipient_id={me.user_id}" in text  # how the colleague reaches the customer


# --------------------------------------------------------------------------- feedback


def test_the_feedback_flow_to_its_reference_code(xs: XStack) -> None:
    me = XCustomer(xs)
    products = me.say("/feedback")
    assert "Which product" in texts(products) and "Lumen Thermostat" in labels(products)
    me.press("Lumen Thermostat")
    me.press("Idea")
    me.say("A holiday mode that keeps the house at 15 degrees")
    me.press("Skip")
    me.press("Nice to have")
    summary = me.press("No")
    assert {"Confirm", "Cancel"} <= set(labels(summary))
    ref = ref_in(me.press("Confirm"))
    with session_scope(xs.stack.db_url) as session:
        row = session.scalar(select(Feedback).where(Feedback.ref == ref))
        assert row is not None
        assert (row.channel, row.product, row.type, row.customer_key) == (
            "x",
            "thermostat",
            "idea",
            me.key,
        )


def test_a_deep_link_starts_feedback_for_its_product_in_dutch(xs: XStack) -> None:
    settings = load_settings(x_user_id=xs.fake.user_id, **_config(xs))
    link = x_link(settings, product="doorbell", language="nl")
    query = parse_qs(urlsplit(link).query)
    assert query["recipient_id"] == [xs.fake.user_id]
    me = XCustomer(xs)
    kind = me.say(query["text"][0])  # what the customer sends from the prefilled box
    assert "Lumen Doorbell" in texts(kind) or "Lumen Deurbel" in texts(kind)
    assert "Idee" in labels(kind)  # the link was made for Dutch customers


def _config(xs: XStack) -> dict[str, object]:
    import yaml

    data = yaml.safe_load(Path(xs.stack.env["EARSHOT_CONFIG"]).read_text(encoding="utf-8"))
    return {k: data[k] for k in ("products", "campaigns", "languages", "default_language")}


def test_stop_in_dutch_stops_feedback_asks(xs: XStack) -> None:
    me = XCustomer(xs)
    me.say("Hallo, ik heb een vraag over mijn bestelling")
    me.settle(0.5)
    me.say("stoppen")

    def stopped() -> bool | None:
        with session_scope(xs.stack.db_url) as session:
            row = conversations.get_customer(session, user_key=me.key)
            return True if row is not None and row.do_not_ask else None

    eventually(stopped, "STOP did not stop feedback asks", timeout=10)


# --------------------------------------------------------------------------- outreach


def test_a_campaign_ask_goes_to_who_wrote_and_closed_dms_are_skipped(xs: XStack) -> None:
    me, closed = XCustomer(xs), XCustomer(xs)
    me.say("Hello")
    closed.say("Hello, how is my thermostat order doing?")
    me.settle(0.5)
    closed.settle(0.5)
    xs.fake.close_dms(closed.user_id)
    with session_scope(xs.stack.db_url) as session:
        for who in (me, closed):
            session.add(CampaignSend(campaign_id="thermostat-winter", customer_key=who.key))
    question = me._new(1)
    assert "Winter is here!" in texts(question) and "Answer" in labels(question)

    def handled(who: XCustomer) -> Callable[[], CampaignSend | None]:
        return lambda: handled_campaign_send(xs.stack, who.key)

    assert eventually(handled(me), "ask not handled").status == "sent"
    skipped = eventually(handled(closed), "ask not handled")
    assert (skipped.status, skipped.skipped_reason) == ("skipped", "dm_closed")
    with session_scope(xs.stack.db_url) as session:
        assert campaigns.campaign_status(session, campaign_id="thermostat-winter").skipped >= 1
    kind = me.press("Answer")
    assert "What kind of feedback" in texts(kind)


def test_a_status_notice_and_a_skipped_one(xs: XStack) -> None:
    me, other = XCustomer(xs), XCustomer(xs)
    ref = give_feedback(me, "The app should show energy use per room")
    other.say("Hello")
    other.settle(0.5)
    xs.fake.close_dms(other.user_id)
    with session_scope(xs.stack.db_url) as session:
        item = session.scalar(select(Feedback).where(Feedback.ref == ref))
        assert item is not None
        item.status = "planned"
        for who in (me, other):
            session.add(Notification(feedback_id=item.id, customer_key=who.key, status="planned"))
    assert ref in texts(me._new(1))

    def reason() -> str | None:
        with session_scope(xs.stack.db_url) as session:
            row = session.scalar(select(Notification).where(Notification.customer_key == other.key))
            return row.skipped_reason if row is not None else None

    assert eventually(reason, "the notice was not handled") == "dm_closed"
    assert other.settle(0.5) == []


# --------------------------------------------------------------------------- erasure


def test_delete_my_data_on_x_leaves_nothing_personal(xs: XStack) -> None:
    me = XCustomer(xs)
    me.say("Where is my parcel? It was order Quokka8842")
    me.settle(0.5)
    ask = me.say("delete my data")
    assert "personal data" in texts(ask)
    confirm = me.press("Delete my personal data")
    assert "cannot be undone" in texts(confirm)
    done = me.press("Yes, delete")
    assert texts(done).startswith("Done")
    assert found_everywhere(xs.stack, me.user_id, me.key, "Quokka8842") == []


def test_the_spool_is_empty_after_the_journeys(xs: XStack) -> None:
    assert spooled(xs.stack, "x") == []
