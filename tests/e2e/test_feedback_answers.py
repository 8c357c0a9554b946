"""Answers that carry nothing, through the real Telegram path in English and Dutch: a
"yes" as the description is asked again in other words, words typed at the photo
question are kept and the question moves on after a second try, and "overslaan", "nee",
"stoppen" steer the form like the buttons do."""

from __future__ import annotations

from testkit.stack import Stack
from tests.e2e.helpers import Customer, buttons, feedback_rows, finish, plain, ref_in, texts

REASK_TEXT = "Could you describe it in a sentence or two?"
REASK_PHOTO = "Here I can only take a picture"


def test_yes_as_the_description_is_asked_again_in_other_words(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    me.say("/feedback")
    me.press("Lumen app")
    describe = me.press("Problem")
    assert "What happened?" in texts(describe)
    again = me.say("yes")
    assert REASK_TEXT in plain(again) and "What happened?" not in texts(again)
    assert "Cancel" in buttons(again)
    said = "The app logs me out every night"
    often = me.say(said)
    assert "How often does it happen?" in texts(often)
    me.press("Skip")  # how often
    me.press("Skip")  # photo
    me.press("Skip")  # importance
    summary = me.press("No")  # consent
    assert f'"{said}"' in plain(summary) and '"yes"' not in plain(summary)
    [row] = feedback_rows(stack, ref=ref_in(me.press("Confirm")))
    assert row.description == said and row.complete


def test_a_second_empty_description_ends_without_storing_anything(
    stack: Stack, user_id: int
) -> None:
    me = Customer(stack, user_id)
    me.say("/start fb-plug")
    me.press("Idea")
    assert REASK_TEXT in plain(me.say("ok"))
    stopped = me.say("🤷")
    assert "I've stopped" in texts(stopped) and "What's your idea?" not in texts(stopped)
    assert feedback_rows(stack, customer_key=me.key) == []
    assert "Lumen Home assistant" in texts(me.say("/start"))  # the form is over


def test_typing_at_the_photo_question_twice_moves_on_and_keeps_the_words(
    stack: Stack, user_id: int
) -> None:
    me = Customer(stack, user_id)
    me.say("/feedback")
    me.press("Lumen Plug")
    me.press("Problem")
    me.say("The plug switches itself off around noon")
    photo = me.press("Daily")
    assert "screenshot or photo" in texts(photo)
    first = me.say("it also shows a red light after the last update")
    assert "added that to your description" in texts(first)
    assert REASK_PHOTO in texts(first) and {"Skip", "Cancel"} <= set(buttons(first))
    second = me.say("yes")
    assert "let's skip that one" in texts(second)
    assert "How important is this for you?" in texts(second)
    me.press("Important")
    [row] = feedback_rows(stack, ref=finish(me, consent="No"))
    assert row.description == (
        "The plug switches itself off around noon\nit also shows a red light after the last update"
    )
    assert row.attachments == [] and row.frequency == "daily" and row.importance == "important"


def test_no_at_the_photo_question_skips_it(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    me.say("/feedback")
    me.press("Lumen Strip")
    me.press("Problem")
    me.say("The strip flickers green while the dishwasher runs")
    me.press("Once")
    importance = me.say("no I don't")
    assert "How important is this for you?" in texts(importance)
    assert REASK_PHOTO not in texts(importance)


def test_dutch_overslaan_nee_and_stoppen(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id, language_code="nl")
    me.say("/feedback")
    me.press("Lumen Thermostat")
    describe = me.press("Probleem")
    assert "Wat is er gebeurd?" in texts(describe)
    again = me.say("ja")
    assert "Kun je het in een of twee zinnen beschrijven?" in plain(again)
    said = "De thermostaat springt 's nachts naar 25 graden"
    often = me.say(said)
    assert "Hoe vaak gebeurt het?" in texts(often)
    photo = me.say("overslaan")
    assert "screenshot of foto" in texts(photo)
    first = me.say("het display knippert dan ook")
    assert "aan je beschrijving toegevoegd" in texts(first)
    assert "Hier kan ik alleen een afbeelding ontvangen" in texts(first)
    second = me.say("weet ik niet")
    assert "die slaan we over" in texts(second)
    assert "Hoe belangrijk is dit voor je?" in texts(second)
    consent = me.say("nee")  # importance skipped
    assert "Mag ons productteam hierover contact met je opnemen?" in texts(consent)
    stopped = me.say("stoppen")
    assert "ik stop ermee" in texts(stopped)
    [row] = feedback_rows(stack, ref=ref_in(stopped))
    assert row.description == f"{said}\nhet display knippert dan ook"
    assert (row.language, row.frequency, row.importance) == ("nl", None, None)
    assert not row.complete and not row.consent
