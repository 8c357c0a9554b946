"""The Telegram journeys on WhatsApp: `earshot run` with the WhatsApp webhook on a fake
Cloud API, real Rasa and action server. English and Dutch; one stack for the module."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from earshot.conversations import whatsapp as wa_queries
from earshot.outreach import campaigns
from earshot.storage.db import session_scope
from earshot.storage.models import (
    CampaignSend,
    Feedback,
    Notification,
    WhatsAppSend,
    WhatsAppWindow,
    utcnow,
)
from testkit.stack import SUPPORT_CHAT_ID, write_config
from testkit.whatsapp_api import FakeWhatsAppAPI, SentMessage
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
_numbers = itertools.count(31_600_000_001)
VERIFY = "e2e-verify-token"
WaStack = ChannelStack[FakeWhatsAppAPI]


@pytest.fixture(scope="module")
def wa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WaStack]:
    workdir = tmp_path_factory.mktemp("wa-stack")
    config = write_config(
        workdir / "wa-config.yml",
        whatsapp={
            "number": "31201234567",
            # Dutch only: an English campaign ask outside the window is skipped.
            "templates": {"campaign": {"nl": "lumen_campaign_nl"}, "notice": {}},
        },
    )

    def env(fake: FakeWhatsAppAPI, port: int) -> dict[str, str]:
        return {
            "EARSHOT_CONFIG": str(config),
            "WHATSAPP_ACCESS_TOKEN": fake.token,
            "WHATSAPP_APP_SECRET": fake.app_secret,
            "WHATSAPP_VERIFY_TOKEN": VERIFY,
            "WHATSAPP_PHONE_NUMBER_ID": fake.phone_number_id,
            "WHATSAPP_API_BASE_URL": fake.base_url,
            "WHATSAPP_WEBHOOK_PORT": str(port),
        }

    with running_channel(
        workdir,
        name="WhatsApp",
        path="whatsapp",
        fake=lambda url: FakeWhatsAppAPI(webhook_url=url),
        env=env,
    ) as stack:
        yield stack


class WaCustomer(ChannelCustomer[SentMessage]):
    """A simulated WhatsApp customer: types, presses reply buttons and list rows, reads."""

    def __init__(self, wa: WaStack) -> None:
        super().__init__(wa.fake, "whatsapp", str(next(_numbers)))
        self.wa, self.number = wa, self.address

    def _press(self, title: str) -> None:
        self.wa.fake.press_title(self.number, title)


def titles(messages: list[SentMessage]) -> list[str]:
    return [t for m in messages for _, t in m.choices]


def feedback(wa: WaStack, ref: str) -> Feedback:
    with session_scope(wa.stack.db_url) as session:
        row = session.scalar(select(Feedback).where(Feedback.ref == ref))
        assert row is not None
        session.expunge(row)
        return row


def close_window(wa: WaStack, me: WaCustomer) -> None:
    """The customer last wrote 25 hours ago (on both sides)."""
    wa.fake.close_window(me.number)
    with session_scope(wa.stack.db_url) as session:
        session.execute(
            update(WhatsAppWindow)
            .where(WhatsAppWindow.customer_key == me.key)
            .values(last_inbound_at=utcnow() - timedelta(hours=25))
        )


def queue_campaign(wa: WaStack, me: WaCustomer) -> None:
    with session_scope(wa.stack.db_url) as session:
        session.add(CampaignSend(campaign_id="thermostat-winter", customer_key=me.key))


def send_row(wa: WaStack, me: WaCustomer) -> CampaignSend:
    return eventually(
        lambda: handled_campaign_send(wa.stack, me.key), "the campaign ask was not handled"
    )


# --------------------------------------------------------------------------- the doors


def test_the_verification_handshake(wa: WaStack) -> None:
    assert wa.fake.verify(VERIFY, "8472").text == "8472"
    assert wa.fake.verify("guessed").status_code == 403


def test_a_forged_signature_is_refused_and_nothing_processed(wa: WaStack) -> None:
    me = WaCustomer(wa)
    payload = wa.fake.message_payload(me.number, {"type": "text", "text": {"body": "hello"}})
    wa.fake.open_window(me.number)
    assert wa.fake.post_webhook(payload, signed="wrong").status_code == 403
    assert wa.fake.post_webhook(payload, signed="none").status_code == 403
    assert me.settle(2.0) == []
    with session_scope(wa.stack.db_url) as session:
        assert wa_queries.window_open(session, customer_key=me.key) is False


def test_a_redelivered_webhook_is_answered_once(wa: WaStack) -> None:
    me = WaCustomer(wa)
    payload = wa.fake.message_payload(me.number, {"type": "text", "text": {"body": "hi"}})
    wa.fake.open_window(me.number)
    assert wa.fake.post_webhook(payload).status_code == 200
    me._new(1)
    assert wa.fake.post_webhook(payload).status_code == 200  # Meta retries: same message id
    assert me.settle(2.5) == []


# --------------------------------------------------------------------------- service


def test_a_service_question_with_its_votes_in_english(wa: WaStack) -> None:
    me = WaCustomer(wa)
    answer = me.say("Where is my order? I want to track my parcel")
    assert "Did that help?" in texts(answer)
    assert {"👍 Yes", "👎 No"} <= set(titles(answer))
    assert answer[-1].payload["interactive"]["type"] == "button"
    thanks = me.press("👍 Yes")
    assert "glad" in texts(thanks).lower()


def test_a_service_question_and_a_thumbs_down_in_dutch(wa: WaStack) -> None:
    me = WaCustomer(wa)
    answer = me.say("Hoe kan ik mijn bestelling retourneren en mijn geld terugkrijgen?")
    assert "Heb je hier iets aan gehad?" in texts(answer)
    assert "Retourportaal: https://www.lumenhome.example/returns" in texts(answer)
    sorry = me.press("👎 Nee")
    assert any(t.startswith("Met een medewerker") for t in titles(sorry)), titles(sorry)


def test_voice_notes_images_and_stickers_get_an_answer(wa: WaStack) -> None:
    me = WaCustomer(wa)
    me.say("hello")
    for kind, voice in (("audio", True), ("image", False), ("sticker", False)):
        wa.fake.push_media(me.number, kind, voice=voice)
        assert texts(me._new(1)).strip()


def test_a_handoff_reaches_the_support_chat_and_the_customer_is_told(wa: WaStack) -> None:
    me = WaCustomer(wa)
    me.say("My Lumen Hub is offline and the lights do not respond")
    told = me.say("I want to talk to a human please")
    assert "support team" in texts(told) and "get back to you here" in texts(told)
    forwarded = wa.stack.fake.wait_for_messages(SUPPORT_CHAT_ID, 1, timeout=15)
    text = " ".join(m.text or "" for m in forwarded)
    assert "asked to talk to a person on WhatsApp" in text and "Hub is offline" in text
    assert f"https://wa.me/{me.number}" in text  # how the colleague reaches the customer


# --------------------------------------------------------------------------- feedback


def test_the_feedback_flow_to_its_reference_code(wa: WaStack) -> None:
    me = WaCustomer(wa)
    products = me.say("/feedback")
    assert "Which product" in texts(products)
    assert products[-1].payload["interactive"]["type"] == "list"  # more than 3 choices
    me.press("Lumen Thermostat")
    me.press("Idea")
    me.say("A holiday mode that keeps the house at 15 degrees")
    me.press("Skip")  # what would it let you do
    me.press("Nice to have")
    summary = me.press("No")  # may we contact you
    assert {"Confirm", "Cancel"} <= set(titles(summary))
    done = me.press("Confirm")
    row = feedback(wa, ref_in(done))
    assert (row.channel, row.product, row.type, row.customer_key) == (
        "whatsapp",
        "thermostat",
        "idea",
        me.key,
    )


def test_a_deep_link_starts_feedback_for_its_product_in_dutch(wa: WaStack) -> None:
    me = WaCustomer(wa)
    kind = me.say("Feedback over Lumen Deurbel [fb-doorbell]")
    assert "Lumen Doorbell" in texts(kind)
    assert "Idee" in titles(kind) or "Idea" in titles(kind)


def test_stop_in_dutch_stops_feedback_asks(wa: WaStack) -> None:
    me = WaCustomer(wa)
    me.say("Hallo, ik heb een vraag over mijn bestelling")
    me.settle(0.5)
    me.say("afmelden")

    def do_not_ask() -> bool:
        with session_scope(wa.stack.db_url) as session:
            from earshot.conversations import queries

            row = queries.get_customer(session, user_key=me.key)
            return bool(row and row.do_not_ask)

    deadline = time.monotonic() + 10
    while not do_not_ask():
        assert time.monotonic() < deadline
        time.sleep(0.2)


# --------------------------------------------------------------------------- outreach


def test_a_campaign_inside_the_window_is_asked_as_typed(wa: WaStack) -> None:
    me = WaCustomer(wa)
    me.say("Hello")
    me.settle(0.5)
    queue_campaign(wa, me)
    question = me._new(1)
    assert "Winter is here!" in texts(question) and "Answer" in titles(question)
    assert send_row(wa, me).status == "sent"
    kind = me.press("Answer")
    assert "What kind of feedback" in texts(kind)


def test_a_campaign_outside_the_window_goes_as_template_or_is_skipped(wa: WaStack) -> None:
    dutch, english = WaCustomer(wa), WaCustomer(wa)
    dutch.say("Hallo, hoe gaat het met mijn thermostaat bestelling?")
    english.say("Hello, how is my thermostat order doing?")
    for me in (dutch, english):
        me.settle(0.5)
        close_window(wa, me)
        queue_campaign(wa, me)
    (template,) = dutch._new(1)
    assert template.type == "template"
    assert template.payload["template"]["name"] == "lumen_campaign_nl"
    assert send_row(wa, dutch).status == "sent"
    skipped = send_row(wa, english)
    assert skipped.status == "skipped" and skipped.skipped_reason == "window_closed"
    assert english.settle(0.5) == []
    with session_scope(wa.stack.db_url) as session:
        status = campaigns.campaign_status(session, campaign_id="thermostat-winter")
        assert status.skipped >= 1
        row = session.scalar(select(WhatsAppSend).where(WhatsAppSend.customer_key == dutch.key))
        assert row is not None and (row.kind, row.ref) == ("campaign", "thermostat-winter")
    # WhatsApp reports the template delivered, then read: recorded for the campaign.
    wa.fake.push_status(template.id, "delivered")
    wa.fake.push_status(template.id, "read")
    deadline = time.monotonic() + 10
    while True:
        with session_scope(wa.stack.db_url) as session:
            counts = wa_queries.status_counts(session, kind="campaign", ref="thermostat-winter")
        if counts.get("read"):
            break
        assert time.monotonic() < deadline, counts
        time.sleep(0.2)


def test_a_status_notice_inside_the_window(wa: WaStack) -> None:
    me = WaCustomer(wa)
    me.say("/feedback")
    me.press("Not about a product")
    me.press("Other")
    me.say("The app should show energy use per room")
    me.press("Skip")
    me.press("No")
    ref = ref_in(me.press("Confirm"))
    with session_scope(wa.stack.db_url) as session:
        item = session.scalar(select(Feedback).where(Feedback.ref == ref))
        assert item is not None
        item.status = "planned"
        session.add(Notification(feedback_id=item.id, customer_key=me.key, status="planned"))
    notice = me._new(1)
    assert ref in texts(notice)
    # A supporter who last wrote 25 hours ago: no notice template configured, so skipped.
    other = WaCustomer(wa)
    other.say("Hello")
    other.settle(0.5)
    close_window(wa, other)
    with session_scope(wa.stack.db_url) as session:
        item = session.scalar(select(Feedback).where(Feedback.ref == ref))
        assert item is not None
        session.add(Notification(feedback_id=item.id, customer_key=other.key, status="planned"))
    deadline = time.monotonic() + 30
    while True:
        with session_scope(wa.stack.db_url) as session:
            row = session.scalar(select(Notification).where(Notification.customer_key == other.key))
            reason = row.skipped_reason if row is not None else None
        if reason:
            break
        assert time.monotonic() < deadline, "the notice was not handled"
        time.sleep(0.3)
    assert reason == "window_closed" and other.settle(0.5) == []


# --------------------------------------------------------------------------- erasure


def test_delete_my_data_on_whatsapp_leaves_nothing_personal(wa: WaStack) -> None:
    me = WaCustomer(wa)
    me.say("Where is my parcel? It was order Quokka8842")
    me.settle(0.5)
    ask = me.say("/deletemydata")
    assert "personal data" in texts(ask)
    confirm = me.press("Delete my personal data")
    assert "cannot be undone" in texts(confirm)
    done = me.press("Yes, delete")
    assert texts(done).startswith("Done")
    assert found_everywhere(wa.stack, me.number, me.key, "Quokka8842") == []


def test_spool_is_empty_after_the_journeys(wa: WaStack) -> None:
    assert spooled(wa.stack, "whatsapp") == []


def test_dutch_feedback_to_its_reference_and_the_status_notice_in_dutch(wa: WaStack) -> None:
    import subprocess
    import sys

    from earshot.settings import ROOT

    me = WaCustomer(wa)
    me.say("Hallo, ik wil graag iets vertellen over mijn thermostaat")
    me.settle(0.5)
    assert "Over welk product gaat het?" in texts(me.say("/feedback"))
    kinds = me.press("Lumen Thermostat")
    assert {"Probleem", "Idee", "Klacht"} <= set(titles(kinds))
    me.press("Idee")
    said = "Een vakantiestand die de verwarming laag zet als we weg zijn"
    me.say(said)
    me.press("Overslaan")
    consent = me.press("Belangrijk")
    assert "contact met je opnemen" in texts(consent)
    summary = me.press("Ja")  # consent: the author hears back about it
    assert "Soort: Idee" in texts(summary)
    done = me.press("Versturen")
    assert "Dankjewel" in texts(done)
    ref = ref_in(done)
    row = feedback(wa, ref)
    assert (row.language, row.type, row.channel) == ("nl", "idea", "whatsapp") and row.consent
    # The team plans it: the customer hears so on WhatsApp, in Dutch.
    cmd = [sys.executable, "-m", "earshot", "triage", "set-status", ref, "planned"]
    out = subprocess.run(
        cmd, env=wa.stack.env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    told = me._new(1, timeout=60)
    assert ref in texts(told) and "Goed nieuws" in texts(told)
