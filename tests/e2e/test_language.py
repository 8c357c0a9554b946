"""Dutch and English through the real Telegram path: Telegram's language, an explicit
choice that beats it, detection when Telegram's language is not offered, a complete
feedback flow in Dutch, closing the loop in Dutch, and exports carrying the language."""

from __future__ import annotations

import csv
import html
import io
import subprocess
import sys

from sqlalchemy import select

from earshot.knowledge.kb import load_kb
from earshot.settings import ROOT
from earshot.storage.db import session_scope
from earshot.storage.models import Customer as CustomerRow
from testkit.stack import TEAM_USER_ID, Stack
from tests.e2e.helpers import Customer, buttons, feedback_rows, plain, ref_in, texts

KB = load_kb(ROOT / "kb", languages=("en", "nl"))


def answer(key: str, lang: str) -> str:
    return KB.topic(key).answer[lang].text.strip()


def example(key: str, lang: str) -> str:
    return KB.topic(key).examples[lang][0]


def first_text(messages: list) -> str:
    return html.unescape(messages[0].text or "").strip()


def stored_language(stack: Stack, key: str) -> tuple[str | None, bool]:
    with session_scope(stack.db_url) as session:
        row = session.scalar(select(CustomerRow).where(CustomerRow.user_key == key))
        assert row is not None
        return row.language, row.language_chosen


def test_a_dutch_customer_is_served_and_gives_feedback_in_dutch(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id, language_code="nl")
    start = me.say("/start")
    assert first_text(start) == KB.responses["utter_start"]["nl"].text.strip()
    assert {"Een vraag stellen", "Feedback geven", "English"} <= set(buttons(start))

    reply = me.say(example("order_track", "nl"))
    assert first_text(reply).startswith(answer("order_track", "nl"))
    assert "👍 Ja" in buttons(reply) and "👎 Nee" in buttons(reply)
    thanks = me.press("👍 Ja")  # ...and one polite question about feedback
    assert "fijn dat ik je kon helpen" in texts(thanks)
    assert "Mag ik je één korte vraag stellen" in texts(thanks)
    assert {"Ja", "Nu niet", "Vraag het me niet meer"} <= set(buttons(thanks))
    assert "Geen probleem" in texts(me.press("Nu niet"))
    reply = me.say(example("returns_refunds", "nl"))
    assert first_text(reply).startswith(answer("returns_refunds", "nl"))

    assert "Over welk product gaat het?" in texts(me.say("/feedback"))
    kinds = me.press("Lumen Thermostat")
    assert {"Probleem", "Idee", "Klacht", "Compliment", "Iets anders", "Annuleren"} == set(
        buttons(kinds)
    )
    assert "Wat is je idee?" in texts(me.press("Idee"))
    said = "Ik zou graag een vakantiestand willen die de verwarming laag zet als we weg zijn"
    assert "Wat zou je ermee kunnen?" in texts(me.say(said))
    importance = me.press("Overslaan")
    assert {"Leuk om te hebben", "Belangrijk", "Ik loop erop vast"} <= set(buttons(importance))
    consent = me.press("Belangrijk")
    assert "Mag ons productteam hierover contact met je opnemen?" in texts(consent)
    summary = plain(me.press("Ja"))
    for part in ("Product: Lumen Thermostat", "Soort: Idee", said, "Belang: Belangrijk"):
        assert part in summary, summary
    done = me.press("Versturen")
    assert "Dankjewel" in texts(done)
    ref = ref_in(done)
    [row] = feedback_rows(stack, ref=ref)
    assert (row.language, row.type, row.product) == ("nl", "idea", "thermostat")
    assert row.description == said and row.consent

    mine = texts(me.say("/myfeedback"))
    assert ref in mine and "ontvangen" in mine  # status label in Dutch

    # Closing the loop: the planned-status message reaches them in Dutch.
    cmd = [sys.executable, "-m", "earshot", "triage", "set-status", ref, "planned"]
    out = subprocess.run(cmd, env=stack.env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    told = me._new(lambda m: any(ref in (x.text or "") for x in m), 60)
    assert "Goed nieuws" in texts(told), texts(told)

    # The export carries the language of each item.
    team = Customer(stack, TEAM_USER_ID)
    team.fake.send_text(TEAM_USER_ID, "/export csv")
    doc = stack.fake.wait_for(
        lambda: [u for u in stack.fake.documents if str(u.chat_id) == str(TEAM_USER_ID)] or None,
        timeout=30,
    )[-1]
    exported = list(csv.DictReader(io.StringIO(doc.content.decode("utf-8-sig"))))
    assert [r["language"] for r in exported if r["ref"] == ref] == ["nl"]


def test_a_customer_switches_language_mid_conversation(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id, language_code="en")
    question = example("delivery_time", "en")
    assert first_text(me.say(question)).startswith(answer("delivery_time", "en"))

    offered = me.say("/language")
    assert {"English", "Nederlands"} <= set(buttons(offered))
    assert "vanaf nu praat ik Nederlands" in texts(me.press("Nederlands"))
    assert stored_language(stack, me.key) == ("nl", True)
    # The choice beats Telegram's English, for answers and the bot's own texts alike.
    assert first_text(me.say(question)).startswith(answer("delivery_time", "nl"))
    assert "Dat commando ken ik niet" in texts(me.say("/nosuchcommand"))

    assert "speak English" in texts(me.say("/language en"))
    assert stored_language(stack, me.key) == ("en", True)
    start = me.say("/start")
    assert first_text(start) == KB.responses["utter_start"]["en"].text.strip()
    assert "Nederlands" in buttons(start)


def test_an_unoffered_telegram_language_falls_back_to_detection(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id, language_code="de")
    start = me.say("/start")  # nothing to detect yet: the default language
    assert first_text(start) == KB.responses["utter_start"]["en"].text.strip()
    reply = me.say("Hoi, ik wil graag weten hoe ik mijn wachtwoord kan resetten")
    assert first_text(reply).startswith(answer("password_reset", "nl"))
    assert stored_language(stack, me.key) == ("nl", False)
    # Detection is remembered for the next turns.
    assert first_text(me.say("/help")) == KB.responses["utter_help"]["nl"].text.strip()
