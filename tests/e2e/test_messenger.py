"""The Telegram journeys on Facebook Messenger (and Instagram): `earshot run` with the
Messenger webhook on a fake Messenger Platform, real Rasa and action server. English and
Dutch; one stack for the module."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from earshot.conversations import messenger as m_queries
from earshot.conversations import queries
from earshot.outreach import campaigns
from earshot.storage.db import session_scope
from earshot.storage.models import (
    CampaignSend,
    Feedback,
    MessengerSend,
    MessengerWindow,
    Notification,
    utcnow,
)
from testkit.messenger_api import FakeMessengerAPI, SentMessengerMessage
from testkit.stack import SUPPORT_CHAT_ID, write_config
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
_ids = itertools.count(7_200_000_000_000_001)
VERIFY = "e2e-verify-token"
FbStack = ChannelStack[FakeMessengerAPI]


@pytest.fixture(scope="module")
def fb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FbStack]:
    workdir = tmp_path_factory.mktemp("fb-stack")
    config = write_config(
        workdir / "fb-config.yml",
        messenger={"page": "lumenhome.example", "notice_tag": "ACCOUNT_UPDATE"},
    )

    def env(fake: FakeMessengerAPI, port: int) -> dict[str, str]:
        return {
            "EARSHOT_CONFIG": str(config),
            "MESSENGER_PAGE_ACCESS_TOKEN": fake.token,
            "MESSENGER_APP_SECRET": fake.app_secret,
            "MESSENGER_VERIFY_TOKEN": VERIFY,
            "MESSENGER_API_BASE_URL": fake.base_url,
            "MESSENGER_WEBHOOK_PORT": str(port),
            "INSTAGRAM_ENABLED": "true",
        }

    with running_channel(
        workdir,
        name="Messenger",
        path="messenger",
        fake=lambda url: FakeMessengerAPI(webhook_url=url),
        env=env,
    ) as stack:
        yield stack


class FbCustomer(ChannelCustomer[SentMessengerMessage]):
    """A simulated Messenger (or Instagram) customer: types, taps, opens links, reads."""

    def __init__(self, fb: FbStack, platform: str = "messenger") -> None:
        super().__init__(fb.fake, platform, str(next(_ids)))
        self.fb, self.platform, self.psid = fb, platform, self.address

    def _push_text(self, text: str) -> None:
        self.fb.fake.push_text(self.psid, text, platform=self.platform)

    def _press(self, title: str) -> None:
        self.fb.fake.press_title(self.psid, title, platform=self.platform)


def titles(messages: list[SentMessengerMessage]) -> list[str]:
    return [t for m in messages for _, t in m.choices]


def close_window(fb: FbStack, me: FbCustomer) -> None:
    """The customer last wrote 25 hours ago (on both sides)."""
    fb.fake.close_window(me.psid)
    with session_scope(fb.stack.db_url) as session:
        session.execute(
            update(MessengerWindow)
            .where(MessengerWindow.customer_key == me.key)
            .values(last_inbound_at=utcnow() - timedelta(hours=25))
        )


def queue_campaign(fb: FbStack, me: FbCustomer) -> None:
    with session_scope(fb.stack.db_url) as session:
        session.add(CampaignSend(campaign_id="thermostat-winter", customer_key=me.key))


def send_row(fb: FbStack, me: FbCustomer) -> CampaignSend:
    return eventually(
        lambda: handled_campaign_send(fb.stack, me.key), "the campaign ask was not handled"
    )


def give_feedback(me: FbCustomer) -> str:
    """The shortest feedback flow; returns its reference code."""
    me.say("/feedback")
    me.press("Not about a product")
    me.press("Other")
    me.say("The app should show energy use per room")
    me.press("Skip")
    me.press("No")
    return ref_in(me.press("Confirm"))


# --------------------------------------------------------------------------- the doors


def test_the_verification_handshake(fb: FbStack) -> None:
    assert fb.fake.verify(VERIFY, "8472").text == "8472"
    assert fb.fake.verify("guessed").status_code == 403


def test_a_forged_signature_is_refused_and_nothing_processed(fb: FbStack) -> None:
    me = FbCustomer(fb)
    payload = fb.fake.event_payload(me.psid, {"message": {"mid": "m_forged", "text": "hello"}})
    fb.fake.open_window(me.psid)
    assert fb.fake.post_webhook(payload, signed="wrong").status_code == 403
    assert fb.fake.post_webhook(payload, signed="none").status_code == 403
    assert me.settle(2.0) == []
    with session_scope(fb.stack.db_url) as session:
        assert m_queries.window_open(session, customer_key=me.key) is False


def test_a_redelivered_webhook_is_answered_once(fb: FbStack) -> None:
    me = FbCustomer(fb)
    payload = fb.fake.event_payload(me.psid, {"message": {"mid": f"m_{me.psid}", "text": "hi"}})
    fb.fake.open_window(me.psid)
    assert fb.fake.post_webhook(payload).status_code == 200
    me._new(1)
    assert fb.fake.post_webhook(payload).status_code == 200  # Meta retries: the same mid
    assert me.settle(2.5) == []


# --------------------------------------------------------------------------- service


def test_a_service_question_with_its_votes_in_english(fb: FbStack) -> None:
    me = FbCustomer(fb)
    answer = me.say("Where is my order? I want to track my parcel")
    assert "Did that help?" in texts(answer)
    assert {"👍 Yes", "👎 No"} <= set(titles(answer))
    assert answer[-1].payload["messaging_type"] == "RESPONSE"
    assert (me.psid, "typing_on") in fb.fake.actions  # shown while Rasa was answering
    thanks = me.press("👍 Yes")
    assert "glad" in texts(thanks).lower()


def test_a_service_question_and_a_thumbs_down_in_dutch(fb: FbStack) -> None:
    me = FbCustomer(fb)
    answer = me.say("Hoe kan ik mijn bestelling retourneren en mijn geld terugkrijgen?")
    assert "Heb je hier iets aan gehad?" in texts(answer)
    assert "Retourportaal: https://www.lumenhome.example/returns" in texts(answer)
    assert len(answer) == 1 and answer[0].type == "quick_replies"  # a long answer, one message
    sorry = me.press("👎 Nee")
    assert any(t.startswith("Met een medewerker") for t in titles(sorry)), titles(sorry)


def test_voice_notes_images_and_stickers_get_an_answer(fb: FbStack) -> None:
    me = FbCustomer(fb)
    me.say("hello")
    for kind in ("audio", "image", "sticker"):
        fb.fake.push_media(me.psid, kind)
        assert texts(me._new(1)).strip()


def test_a_handoff_reaches_the_support_chat_and_the_customer_is_told(fb: FbStack) -> None:
    me = FbCustomer(fb)
    me.say("My Lumen Hub is offline and the lights do not respond")
    told = me.say("I want to talk to a human please")
    assert "support team" in texts(told) and "get back to you here" in texts(told)
    forwarded = fb.stack.fake.wait_for_messages(SUPPORT_CHAT_ID, 1, timeout=15)
    text = " ".join(m.text or "" for m in forwarded)
    assert "asked to talk to a person on Messenger" in text and "Hub is offline" in text
    assert "answer in the Page's inbox" in text and me.psid not in text


def test_instagram_direct_messages_through_the_same_webhook(fb: FbStack) -> None:
    me = FbCustomer(fb, "instagram")
    answer = me.say("Where is my order? I want to track my parcel")
    assert {"👍 Yes", "👎 No"} <= set(titles(answer))
    assert all(len(m.text) <= 1000 for m in answer)
    assert "glad" in texts(me.press("👍 Yes")).lower()
    with session_scope(fb.stack.db_url) as session:
        row = queries.get_customer(session, user_key=me.key)
        assert row is not None and row.channel == "instagram"


# --------------------------------------------------------------------------- feedback


def test_the_feedback_flow_to_its_reference_code(fb: FbStack) -> None:
    me = FbCustomer(fb)
    products = me.say("/feedback")
    assert "Which product" in texts(products)
    assert products[-1].type == "quick_replies" and len(titles(products)) > 3
    me.press("Lumen Thermostat")
    me.press("Idea")
    me.say("A holiday mode that keeps the house at 15 degrees")
    me.press("Skip")  # what would it let you do
    me.press("Nice to have")
    summary = me.press("No")  # may we contact you
    assert {"Confirm", "Cancel"} <= set(titles(summary))
    done = me.press("Confirm")
    with session_scope(fb.stack.db_url) as session:
        row = session.scalar(select(Feedback).where(Feedback.ref == ref_in(done)))
        assert row is not None
        assert (row.channel, row.product, row.type, row.customer_key) == (
            "messenger",
            "thermostat",
            "idea",
            me.key,
        )


def test_an_m_me_link_starts_feedback_for_its_product_in_dutch(fb: FbStack) -> None:
    me = FbCustomer(fb)
    me.say("/language nl")
    fb.fake.push_referral(me.psid, "fb-doorbell")  # m.me/lumenhome.example?ref=fb-doorbell
    kind = me._new(1)
    assert "Lumen Doorbell" in texts(kind)
    assert "Idee" in titles(kind)


def test_get_started_from_an_m_me_link_in_english(fb: FbStack) -> None:
    me = FbCustomer(fb)
    fb.fake.push_get_started(me.psid, "fb-bulb")  # a new customer's first tap
    kind = me._new(1)
    assert "Lumen Bulb" in texts(kind) and "Idea" in titles(kind)


def test_stop_in_dutch_stops_feedback_asks(fb: FbStack) -> None:
    me = FbCustomer(fb)
    me.say("Hallo, ik heb een vraag over mijn bestelling")
    me.settle(0.5)
    me.say("stoppen")

    def do_not_ask() -> bool:
        with session_scope(fb.stack.db_url) as session:
            row = queries.get_customer(session, user_key=me.key)
            return bool(row and row.do_not_ask)

    eventually(do_not_ask, "STOP did not stop feedback asks", 10)


# --------------------------------------------------------------------------- outreach


def test_a_campaign_inside_the_window_is_asked_as_an_update(fb: FbStack) -> None:
    me = FbCustomer(fb)
    me.say("Hello")
    me.settle(0.5)
    queue_campaign(fb, me)
    question = me._new(1)
    assert "Winter is here!" in texts(question) and "Answer" in titles(question)
    assert question[-1].payload["messaging_type"] == "UPDATE"
    assert send_row(fb, me).status == "sent"
    kind = me.press("Answer")
    assert "What kind of feedback" in texts(kind)


def test_a_campaign_outside_the_window_is_skipped_and_counted(fb: FbStack) -> None:
    dutch, english = FbCustomer(fb), FbCustomer(fb)
    dutch.say("Hallo, hoe gaat het met mijn thermostaat bestelling?")
    english.say("Hello, how is my thermostat order doing?")
    for me in (dutch, english):
        me.settle(0.5)
        close_window(fb, me)
        queue_campaign(fb, me)
    for me in (dutch, english):  # promotional: no message tag allows it
        skipped = send_row(fb, me)
        assert skipped.status == "skipped" and skipped.skipped_reason == "window_closed"
        assert me.settle(0.3) == []
    with session_scope(fb.stack.db_url) as session:
        status = campaigns.campaign_status(session, campaign_id="thermostat-winter")
        assert status.skipped >= 2


def test_a_status_notice_outside_the_window_goes_tagged_and_is_read(fb: FbStack) -> None:
    me = FbCustomer(fb)
    ref = give_feedback(me)
    close_window(fb, me)
    with session_scope(fb.stack.db_url) as session:
        item = session.scalar(select(Feedback).where(Feedback.ref == ref))
        assert item is not None
        item.status = "planned"
        session.add(Notification(feedback_id=item.id, customer_key=me.key, status="planned"))
    notice = me._new(1)
    assert ref in texts(notice)
    assert (notice[0].payload["messaging_type"], notice[0].payload["tag"]) == (
        "MESSAGE_TAG",
        "ACCOUNT_UPDATE",
    )

    def status() -> str | None:
        with session_scope(fb.stack.db_url) as session:
            row = session.get(MessengerSend, notice[0].id)
            return f"{row.status} {row.ref}" if row is not None else None

    # Recorded once the Send API accepted it; then Meta reports it delivered and read.
    assert eventually(status, "the notice was not recorded") == f"accepted {ref}"
    fb.fake.push_receipt(me.psid, "delivered", mids=[notice[0].id])
    fb.fake.push_receipt(me.psid, "read")
    eventually(lambda: status() == f"read {ref}", "the read receipt was not recorded")


# --------------------------------------------------------------------------- erasure


def test_delete_my_data_on_messenger_leaves_nothing_personal(fb: FbStack) -> None:
    me = FbCustomer(fb)
    me.say("Where is my parcel? It was order Quokka8842")
    me.settle(0.5)
    ask = me.say("/deletemydata")
    assert "personal data" in texts(ask)
    confirm = me.press("Delete my personal")
    assert "cannot be undone" in texts(confirm)
    done = me.press("Yes, delete")
    assert texts(done).startswith("Done")
    assert found_everywhere(fb.stack, me.psid, me.key, "Quokka8842") == []


def test_spool_is_empty_after_the_journeys(fb: FbStack) -> None:
    assert spooled(fb.stack, "messenger") == []
