"""How Rasa's messages become Telegram messages: the gateway's reply model (merging,
buttons, links), then Telegram's escaping and splitting."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from bot.render import TELEGRAM_TEXT_LIMIT, split_escaped
from earshot.gateway.model import Button
from earshot.gateway.replies import parse


@dataclass
class Shown:
    """A reply as the Telegram adapter lays it out: escaped chunks, photo, buttons."""

    chunks: list[str]
    image: str | None
    buttons: list[Button]


def to_replies(messages: list[dict[str, Any]]) -> list[Shown]:
    return [
        Shown(split_escaped(r.text) if r.text else [], r.image, list(r.buttons))
        for r in parse(messages).replies
    ]


def test_html_special_characters_are_escaped() -> None:
    [reply] = to_replies([{"text": "<b>5 > 3 & 'x'</b>"}])
    assert reply.chunks == ["&lt;b&gt;5 &gt; 3 &amp; 'x'&lt;/b&gt;"]


def test_long_text_is_split_within_the_limit_and_loses_nothing() -> None:
    text = "\n\n".join(f"Paragraph {i}: " + "word & more " * 60 for i in range(30))
    chunks = split_escaped(text)
    assert len(chunks) > 1
    assert all(len(c) <= TELEGRAM_TEXT_LIMIT for c in chunks)
    assert "".join(html.unescape(c) for c in chunks).replace("\n", "").replace(
        " ", ""
    ) == text.replace("\n", "").replace(" ", "")


def test_split_never_cuts_an_html_entity() -> None:
    text = "&" * 5000
    chunks = split_escaped(text)
    assert all(len(c) <= TELEGRAM_TEXT_LIMIT for c in chunks)
    assert all(c.count("&") == c.count("&amp;") for c in chunks)
    assert sum(c.count("&amp;") for c in chunks) == 5000


def test_a_4096_character_message_fits_in_one_chunk() -> None:
    assert len(split_escaped("a" * 4096)) == 1


def test_buttons_and_links_are_kept() -> None:
    [reply] = to_replies(
        [
            {
                "text": "Pick one",
                "buttons": [
                    {"title": "Yes", "payload": "/affirm"},
                    {"title": "Site", "payload": "https://example.org"},
                ],
            }
        ]
    )
    assert [(b.title, b.is_link) for b in reply.buttons] == [("Yes", False), ("Site", True)]


def test_image_only_message_becomes_a_photo() -> None:
    [reply] = to_replies([{"image": "https://example.org/a.png"}])
    assert reply.image == "https://example.org/a.png" and reply.chunks == []


def test_texts_of_one_turn_become_one_message_with_the_last_buttons() -> None:
    replies = to_replies(
        [
            {"text": "Orders ship in 2 days."},
            {"text": "Was this helpful?", "buttons": [{"title": "👍", "payload": "/up"}]},
            {"text": "Next question after buttons stays separate."},
            {"image": "https://example.org/a.png", "text": "A photo starts its own message."},
        ]
    )
    assert [r.chunks for r in replies] == [
        ["Orders ship in 2 days.\n\nWas this helpful?"],
        ["Next question after buttons stays separate."],
        ["A photo starts its own message."],
    ]
    assert [b.title for b in replies[0].buttons] == ["👍"]
    assert replies[1].buttons == [] and replies[2].image == "https://example.org/a.png"


def test_buttons_without_text_ride_on_the_text_before_them() -> None:
    [reply] = to_replies([{"text": "Pick one"}, {"buttons": [{"title": "A", "payload": "/a"}]}])
    assert reply.chunks == ["Pick one"] and [b.ref for b in reply.buttons] == ["/a"]


def test_a_text_after_links_joins_them_and_its_buttons_follow_the_links() -> None:
    [reply] = to_replies(
        [
            {"text": "Sign up here.", "buttons": [{"title": "Sign up", "payload": "https://x.io"}]},
            {"text": "Did that help?", "buttons": [{"title": "👍 Yes", "payload": "/up"}]},
        ]
    )
    assert reply.chunks == ["Sign up here.\n\nDid that help?"]
    assert [(b.title, b.is_link) for b in reply.buttons] == [("Sign up", True), ("👍 Yes", False)]
