"""Language choice: detection, precedence, the per-customer memory, and the texts the
adapters show outside Rasa existing in every language the product offers."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from earshot import i18n, language
from earshot.conversations import queries as conversations
from earshot.outreach import outbox

LANGS = ("en", "nl")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("waar blijft mijn pakket, ik heb vorige week besteld", "nl"),
        ("ik kan nie inloggen in de app", "nl"),
        ("allee, gij hebt mijn bestelling nog altijd niet verstuurd", "nl"),
        ("where is my parcel, I ordered last week", "en"),
        ("the app doesn't let me log in", "en"),
        ("/start", None),  # payloads and commands say nothing about the language
        ("hallo", None),  # one word is too little
        ("LH-7K3Q 12345", None),
    ],
)
def test_detection(text: str, expected: str | None) -> None:
    assert language.detect(text, LANGS) == expected


def test_detection_only_picks_offered_languages() -> None:
    assert language.detect("waar blijft mijn pakket", ("en",)) is None


def test_precedence() -> None:
    def resolve(**kw: str | None) -> str:
        args = {"chosen": None, "reported": None, "detected": None}
        return language.resolve(**{**args, **kw}, languages=LANGS, default="en")

    assert resolve(chosen="en", reported="nl-BE", detected="nl") == "en"
    assert resolve(reported="nl-BE", detected="en") == "nl"
    assert resolve(reported="de", detected="nl") == "nl"
    assert resolve(reported="de") == "en"
    assert resolve(chosen="fr") == "en"  # not offered


def test_language_command_payloads() -> None:
    assert language.command_payload([]) == "/set_language"
    assert language.command_payload(["NL"]) == '/set_language{"language": "nl"}'
    assert language.command_payload(["nl-BE"]) == '/set_language{"language": "nl"}'
    assert language.command_payload(["{evil}"]) == "/set_language"
    assert language.chosen('/set_language{"language": "nl"}', LANGS) == "nl"
    assert language.chosen('/set_language{"language": "fr"}', LANGS) is None
    assert language.chosen("/set_language", LANGS) is None


def _turn(session: Session, key: str, reported: str | None, text: str) -> tuple[str, bool]:
    return conversations.see_customer(
        session,
        user_key=key,
        channel="telegram",
        chat_id="1",
        reported_language=reported,
        text=text,
        languages=LANGS,
        default_language="en",
    )


def _see(session: Session, key: str, reported: str | None, text: str) -> str:
    return _turn(session, key, reported, text)[0]


def test_customer_language_is_remembered(session: Session) -> None:
    assert _see(session, "k1", "de", "/start") == "en"
    assert _see(session, "k1", "de", "mijn lamp doet het niet meer") == "nl"
    assert _see(session, "k1", "de", "ok thanks") == "nl"  # detected once, then kept
    assert _see(session, "k2", "nl-BE", "hello there, where is my order") == "nl"
    conversations.choose_language(session, user_key="k2", channel="telegram", language="en")
    assert _see(session, "k2", "nl", "waar is mijn bestelling") == "en"
    assert conversations.get_customer_language(session, user_key="k2") == "en"


@pytest.mark.parametrize("lang", LANGS)
def test_every_adapter_text_exists_in_every_language(lang: str) -> None:
    assert set(i18n.TEXTS[lang]) == set(i18n.TEXTS["en"])
    for group, table in i18n.LABELS["en"].items():
        assert set(i18n.LABELS[lang][group]) == set(table), group


def test_missing_language_falls_back_to_english() -> None:
    assert i18n.text("expired", "fr") == i18n.TEXTS["en"]["expired"]
    assert i18n.labels("type", None)["idea"] == "Idea"
    assert i18n.labels("type", "nl")["idea"] == "Idee"


def test_a_turn_notes_a_chosen_language_and_queues_behind_waiting_messages(
    session: Session,
) -> None:
    assert _turn(session, "k3", "en", "where is my order") == ("en", False)
    assert _turn(session, "k3", "en", language.command_payload(["nl"])) == (
        "nl",
        False,
    )  # the choice beats Telegram's
    assert _turn(session, "k3", "en", "thanks") == ("nl", False)
    outbox.keep_in_inbox(session, customer_key="k3", chat_id="3", text="kept", meta={})
    assert _turn(session, "k3", "en", "and now?") == (
        "nl",
        True,
    )  # an older message still waits: queue behind it
