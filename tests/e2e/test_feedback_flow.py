"""Feedback capture through the real Telegram path: every way in, every type, skip,
cancel, abandoned flows, "me too", asking politely and /myfeedback."""

from __future__ import annotations

from sqlalchemy import select

from earshot.feedback import service as core
from earshot.outreach import campaigns
from earshot.storage.db import session_scope
from earshot.storage.models import AskLog, CampaignSend, Feedback, Supporter
from earshot.storage.models import Customer as CustomerRow
from testkit.stack import Stack
from testkit.telegram_api import SentMessage
from tests.e2e.helpers import (
    REF,
    Customer,
    buttons,
    feedback_rows,
    finish,
    give_feedback,
    plain,
    ref_in,
    texts,
)

TYPE_BUTTONS = {"Problem", "Idea", "Complaint", "Praise", "Other", "Cancel"}


class Me(Customer):
    """A customer who can also send a photo."""

    def send_photo(self) -> tuple[str, list[SentMessage]]:
        """Send a photo; returns the file id the bot sees (the largest size) and replies."""
        update_id = self.fake.send_media(self.user_id, "photo")
        update = self.fake._history[update_id]  # what the fake delivered
        file_id = str(update["message"]["photo"][-1]["file_id"])
        return file_id, self._new(lambda m: len(m) >= 1, 30.0)


def only_row(stack: Stack, ref: str) -> Feedback:
    rows = feedback_rows(stack, ref=ref)
    assert len(rows) == 1
    return rows[0]


def asks(stack: Stack, key: str) -> list[AskLog]:
    with session_scope(stack.db_url) as session:
        return list(
            session.scalars(
                select(AskLog).where(AskLog.customer_key == key).order_by(AskLog.id)
            ).all()
        )


def customer_row(stack: Stack, key: str) -> CustomerRow:
    with session_scope(stack.db_url) as session:
        row = session.scalar(select(CustomerRow).where(CustomerRow.user_key == key))
        assert row is not None
        return row


# --------------------------------------------------------------------------- ways in and types


def test_other_feedback_in_the_fewest_steps(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    ref = give_feedback(me, "The hub should show which bulbs are offline")
    row = only_row(stack, ref)
    assert (row.type, row.product, row.category, row.source) == (
        "other",
        None,
        "service",
        "command",
    )
    assert row.description == "The hub should show which bulbs are offline"
    assert row.complete and row.customer_key == me.key and row.importance is None


def test_spontaneous_idea_is_captured_without_asking_for_it_again(
    stack: Stack, user_id: int
) -> None:
    me = Customer(stack, user_id)
    said = "it would be great if the app had a vacation mode"
    asked = me.say(said)
    assert "I think it's an idea" in texts(asked)
    assert buttons(asked)[0] == "Idea" and set(buttons(asked)) == TYPE_BUTTONS
    benefit = me.press("Idea")
    assert "What would it let you do?" in texts(benefit)  # the idea itself is not asked again
    importance = me.say("Make it look like someone is home while we travel")
    assert {"Nice to have", "Important", "Blocking me", "Skip", "Cancel"} <= set(
        buttons(importance)
    )
    consent = me.press("Important")
    assert "May our product team contact you about this?" in texts(consent)
    summary = me.press("Yes")
    shown = plain(summary)
    for part in ("Product: Lumen app", "Kind: Idea", said, "Importance: Important"):
        assert part in shown
    done = me.press("Confirm")
    row = only_row(stack, ref_in(done))
    assert row.description == said
    assert row.benefit == "Make it look like someone is home while we travel"
    assert (row.source, row.channel, row.language) == ("chat", "telegram", "en")
    assert (row.product, row.type, row.category) == ("app", "idea", "innovation")
    assert (row.importance, row.frequency, row.attachments) == ("important", None, [])
    assert row.consent and row.consent_version == core.CONSENT_VERSION and row.consent_at
    assert row.complete and row.status == "new" and row.supporters == 1
    assert row.customer_key == me.key and row.campaign_id is None
    assert row.sentiment is not None


def test_problem_via_feedback_command_with_a_photo(stack: Stack, user_id: int) -> None:
    me = Me(stack, user_id)
    product = me.say("/feedback")
    assert "Which product" in texts(product)
    assert {"Lumen Doorbell", "Lumen app", "Not about a product", "Cancel"} <= set(buttons(product))
    kind = me.press("Lumen Doorbell")
    assert "What kind of feedback is it?" in texts(kind)
    describe = me.press("Problem")
    assert "What happened?" in texts(describe)
    often = me.say("The chime stays silent when a visitor presses the button")
    assert {"Always", "Daily", "Weekly", "Rarely", "Once", "Skip"} <= set(buttons(often))
    photo = me.press("Daily")
    assert "screenshot or photo" in texts(photo)
    file_id, after_photo = me.send_photo()
    assert "thanks for the photo" in texts(after_photo)
    assert "Blocking me" in buttons(after_photo)
    me.press("Blocking me")
    ref = finish(me, consent="No")
    row = only_row(stack, ref)
    assert row.description == "The chime stays silent when a visitor presses the button"
    assert (row.source, row.product, row.type, row.category) == (
        "command",
        "doorbell",
        "problem",
        "service",
    )
    assert (row.frequency, row.importance, row.attachments) == ("daily", "blocking", [file_id])
    assert not row.consent and row.consent_at is None and row.consent_version is None
    assert row.complete and row.benefit is None


def test_complaint_asks_the_product_and_what_should_have_happened(
    stack: Stack, user_id: int
) -> None:
    me = Customer(stack, user_id)
    said = "the courier was rude and threw my parcel over the fence"
    product = me.say(said)
    assert "Which product" in texts(product)
    kind = me.press("Not about a product")
    assert "I think it's a complaint" in texts(kind)
    should = me.press("Complaint")
    assert "What should have happened?" in texts(should)
    me.say("Ring the bell and hand it over")
    me.press("Nice to have")
    row = only_row(stack, finish(me))
    assert (row.product, row.type, row.category, row.description) == (
        None,
        "complaint",
        "reputation",
        said,
    )
    assert (row.benefit, row.importance, row.consent) == (
        "Ring the bell and hand it over",
        "nice_to_have",
        True,
    )
    assert row.sentiment is not None and row.sentiment < 0


def test_praise_needs_no_follow_up_or_importance(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    said = "the video quality of the doorbell is superb"
    kind = me.say(said)
    assert "I think it's praise" in texts(kind) and buttons(kind)[0] == "Praise"
    consent = me.press("Praise")
    assert "May our product team contact you" in texts(consent)
    row = only_row(stack, finish(me, consent="No"))
    assert (row.product, row.type, row.category, row.description) == (
        "doorbell",
        "praise",
        "reputation",
        said,
    )
    assert row.importance is None and row.benefit is None and row.complete


def test_deep_link_to_a_product_and_skipping_questions(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    kind = me.say("/start fb-doorbell")
    assert "your Lumen Doorbell" in texts(kind) and "Which product" not in texts(kind)
    assert "What kind of feedback" in texts(kind)
    me.press("Idea")
    me.say("Show a snapshot of the visitor on my smartwatch")
    importance = me.press("Skip")  # what would it let you do?
    assert "How important" in texts(importance)
    consent = me.press("Skip")
    assert "May our product team contact you" in texts(consent)
    summary = me.say("skip")  # typed; skipping consent means no
    assert "We may contact you about it: No" in plain(summary)
    row = only_row(stack, ref_in(me.press("Confirm")))
    assert (row.source, row.product, row.type) == ("deep_link", "doorbell", "idea")
    assert row.benefit is None and row.importance is None and not row.consent
    assert row.description == "Show a snapshot of the visitor on my smartwatch"


def test_deep_link_to_a_campaign(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    kind = me.say("/start c-thermostat-winter")
    assert "Winter is here!" in texts(kind) and "What kind of feedback" in texts(kind)
    me.press("Problem")
    me.say("It heats the living room long after the schedule ended")
    me.press("Skip")  # how often
    me.press("Skip")  # photo
    me.press("Important")
    row = only_row(stack, finish(me))
    assert (row.source, row.campaign_id, row.product) == (
        "campaign",
        "thermostat-winter",
        "thermostat",
    )
    assert row.frequency is None and row.attachments == [] and row.importance == "important"


def test_unknown_deep_links_greet_normally(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    for link in ("/start fb-toaster", "/start c-summer-sale", "/start hello"):
        reply = me.say(link)
        assert "Lumen Home assistant" in texts(reply), link
        assert "Share feedback" in buttons(reply)
    assert feedback_rows(stack, customer_key=me.key) == []


# --------------------------------------------------------------------------- leaving the flow


def test_cancel_before_anything_was_said_stores_nothing(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    me.say("/feedback")
    stopped = me.press("Cancel")
    assert "I've stopped" in texts(stopped) and not REF.search(texts(stopped))
    assert feedback_rows(stack, customer_key=me.key) == []
    again = me.say("/start")  # the form is over: back to normal
    assert "Lumen Home assistant" in texts(again)


def test_cancel_after_the_description_keeps_it_as_incomplete(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    said = "the app keeps freezing on the energy screen"
    me.say(said)
    stopped = me.say("cancel")  # typed, at the type question
    assert "I've stopped" in texts(stopped)
    row = only_row(stack, ref_in(stopped))
    assert (row.description, row.product, row.type) == (said, "app", "problem")
    assert not row.complete and not row.consent and row.customer_key == me.key


def test_starting_something_else_keeps_the_abandoned_feedback(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    said = "it would be nice if the bulbs could sync with music"
    me.say(said)
    me.press("Idea")  # -> what would it let you do?
    left = me.say("/help")
    assert "/privacy" in texts(left), "the help text answers the new request"
    row = only_row(stack, ref_in(left))
    assert (row.description, row.type, row.complete) == (said, "idea", False)
    # The form is over: a plain answer now is not taken as the benefit.
    greeting = me.say("/start")
    assert "Lumen Home assistant" in texts(greeting)
    assert len(feedback_rows(stack, customer_key=me.key)) == 1


def test_typed_answers_stale_buttons_and_garbled_text(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    me.say("/feedback")
    kind = me.say("the plug")  # typed instead of pressed: the product keyboard stays
    assert "What kind of feedback" in texts(kind)
    stale = me.press("Lumen Hub")  # a button of the earlier question
    assert "choose one of the buttons" in texts(stale)
    assert "What kind of feedback" in texts(stale)
    garbled = me.say("qwzx")
    assert "choose one of the buttons" in texts(garbled)
    describe = me.say("an idea")
    assert "What's your idea?" in texts(describe)
    stopped = me.press("Cancel")
    assert "I've stopped" in texts(stopped)
    assert feedback_rows(stack, customer_key=me.key) == []


# --------------------------------------------------------------------------- "me too"


def test_a_similar_idea_gets_a_supporter_instead_of_a_duplicate(stack: Stack, user_id: int) -> None:
    first = Customer(stack, user_id)
    first.say("/feedback")
    first.press("Lumen app")
    first.press("Idea")
    first.say("Let me rename scenes in the app")
    first.press("Skip")
    first.press("Skip")
    ref = finish(first)

    second = Customer(stack, user_id + 500_000)
    second.say("/feedback")
    second.press("Lumen app")
    second.press("Idea")
    similar = second.say("please allow renaming my scenes")
    assert "Someone suggested" in texts(similar)
    assert "Let me rename scenes in the app" in plain(similar)
    plus_one = second.press("Yes, that's it")
    assert ref in texts(plus_one) and "2 customers" in texts(plus_one)
    assert feedback_rows(stack, customer_key=second.key) == []
    row = only_row(stack, ref)
    assert row.supporters == 2
    with session_scope(stack.db_url) as session:
        supporters = session.scalars(
            select(Supporter.customer_key).where(Supporter.feedback_id == row.id)
        ).all()
    assert list(supporters) == [second.key]

    # /myfeedback: the second customer sees the item they support, the first their own.
    theirs = second.say("/myfeedback")
    assert ref in texts(theirs) and "you support" in texts(theirs)
    mine = first.say("/myfeedback")
    assert ref in texts(mine) and "received" in texts(mine) and "you said" in texts(mine)

    # A third customer who means something else says so and gets an item of their own.
    third = Customer(stack, user_id + 600_000)
    third.say("/feedback")
    third.press("Lumen app")
    third.press("Idea")
    third.say("rename my scenes from the widget")
    own = third.press("No, mine is different")
    assert "What would it let you do?" in texts(own)
    third.press("Skip")
    third.press("Skip")
    new_ref = finish(third, consent="No")
    assert new_ref != ref and only_row(stack, ref).supporters == 2


def test_my_feedback_when_there_is_none(stack: Stack, user_id: int) -> None:
    reply = Customer(stack, user_id).say("/myfeedback")
    assert "haven't sent us any feedback" in texts(reply)


# --------------------------------------------------------------------------- asking


def test_after_a_thumbs_up_one_question_about_the_product(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    me.say("How do I set up my Lumen Hub?")
    ask = me.press("👍 Yes")
    assert "one quick thing about your Lumen Hub" in texts(ask)
    assert buttons(ask)[-3:] == ["Yes", "Not now", "Don't ask me again"]
    kind = me.press("Yes")
    assert "What kind of feedback" in texts(kind)  # the product is known
    me.press("Problem")
    me.say("The hub loses its settings after a power cut")
    me.press("Once")
    me.press("Skip")
    me.press("Important")
    row = only_row(stack, finish(me, consent="No"))
    assert (row.source, row.product, row.type) == ("after_service", "hub", "problem")
    logged = asks(stack, me.key)
    assert [(a.trigger, a.product, a.outcome) for a in logged] == [
        ("after_service", "hub", "answered")
    ]
    assert logged[0].answered_at is not None
    # Asked once per interval: another 👍 brings no second question.
    me.say("Where is my order?")
    again = me.press("👍 Yes")
    again += me.settle(1.0)
    assert "one quick thing" not in texts(again)


def test_dont_ask_me_again_is_honoured(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    me.say("Where is my order?")
    ask = me.press("👍 Yes")
    assert "one quick thing about our products" in texts(ask)
    stopped = me.press("Don't ask me again")
    assert "won't ask you for feedback again" in texts(stopped)
    assert customer_row(stack, me.key).do_not_ask
    assert [(a.trigger, a.outcome) for a in asks(stack, me.key)] == [("after_service", "declined")]


def test_stop_asking_in_words_before_any_question(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    stopped = me.say("never ask me for feedback again")
    assert "won't ask you for feedback again" in texts(stopped)
    assert customer_row(stack, me.key).do_not_ask
    me.say("How do I update the firmware?")
    after = me.press("👍 Yes")
    after += me.settle(1.0)
    assert "glad" in texts(after).lower() and "one quick thing" not in texts(after)
    assert asks(stack, me.key) == []
    # Feedback the customer offers is still welcome.
    assert "Which product" in texts(me.say("/feedback"))


def test_not_now_declines_the_question(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    me.say("How do I place an order?")
    me.press("👍 Yes")
    reply = me.press("Not now")
    assert "No problem" in texts(reply)
    assert [a.outcome for a in asks(stack, me.key)] == ["declined"]
    assert not customer_row(stack, me.key).do_not_ask


def test_a_campaign_question_is_sent_and_answered(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    me.say("/start")  # the bot now knows the chat
    with session_scope(stack.db_url) as session:
        # Queue this customer only: enqueueing everyone would disturb parallel conversations.
        session.add(CampaignSend(campaign_id="thermostat-winter", customer_key=me.key))
    question = me._new(lambda m: len(m) >= 1, 30.0)  # sent by the bot's outbox worker
    assert "Winter is here!" in texts(question)
    assert buttons(question) == ["Answer", "Not now", "Don't ask me again"]
    kind = me.press("Answer")
    assert "What kind of feedback" in texts(kind)
    me.press("Idea")
    me.say("Preheat the bathroom before my alarm goes off")
    me.press("Skip")
    me.press("Nice to have")
    row = only_row(stack, finish(me))
    assert (row.source, row.campaign_id, row.product, row.type) == (
        "campaign",
        "thermostat-winter",
        "thermostat",
        "idea",
    )
    assert [(a.trigger, a.campaign_id, a.outcome) for a in asks(stack, me.key)] == [
        ("campaign", "thermostat-winter", "answered")
    ]
    with session_scope(stack.db_url) as session:
        send = session.scalar(select(CampaignSend).where(CampaignSend.customer_key == me.key))
        assert send is not None and send.status == "sent" and send.sent_at is not None
        status = campaigns.campaign_status(session, campaign_id="thermostat-winter")
    assert status.answered >= 1 and status.items >= 1
