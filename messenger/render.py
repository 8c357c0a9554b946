"""Lay the gateway's replies out within the Messenger Platform's limits (pure, no I/O).

Messenger shows up to 13 quick replies (titles up to 20 characters) under a message, or
a button template: a text of up to 640 characters with up to 3 buttons (titles up to 20),
postbacks or links. A text message holds 2,000 characters (Instagram: 1,000). Every
button set the assistant produces is shown:

- choices with links, 3 buttons in all, and a text of up to 640 characters: one button
  template (links as web_url buttons); a longer answer keeps its links as addresses in
  the text rather than being split in two;
- up to 13 choices: quick replies on the last part of the text; a title over 20
  characters is shortened on its button and written out in full in the text;
- more than 13 choices: button templates of 3 postback buttons each, in order (quick
  replies would show only the last 13; templates stay tappable, and the gateway's button
  store tells an old one from a forged one);
- links otherwise: their addresses are written into the text.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from earshot.gateway import texts
from earshot.gateway.model import Button, Reply

TEXT_LIMIT = 2000
INSTAGRAM_TEXT_LIMIT = 1000
TEMPLATE_TEXT_LIMIT = 640
TITLE_LIMIT = 20
MAX_QUICK_REPLIES = 13
MAX_TEMPLATE_BUTTONS = 3
PAYLOAD_LIMIT = 1000
MORE_CHOICES = {"en": "More choices:", "nl": "Meer keuzes:"}


@dataclass(frozen=True)
class Out:
    """One Send API message: kind is text, quick_replies, buttons or image. `buttons`
    holds (title, payload, url): a postback has a payload, a link a url."""

    kind: str
    text: str = ""
    buttons: tuple[tuple[str, str | None, str | None], ...] = ()
    url: str | None = None


def _one_line(title: str) -> str:
    return " ".join(title.split())


def _with_lines(text: str, lines: list[str]) -> str:
    return "\n".join([text, "", *lines]) if text.strip() else "\n".join(lines)


def _head_and_last(text: str, limit: int, last_limit: int) -> tuple[list[str], str]:
    """Text messages before the one carrying buttons, and that one's text."""
    chunks = texts.split_text(text, limit)
    if not chunks:
        return [], "…"
    *before, last = chunks
    if len(last) <= last_limit:
        return before, last
    tail = texts.split_text(last, last_limit)
    return [*before, *tail[:-1]], tail[-1]


def _template(text: str, buttons: list[Button], limit: int) -> list[Out]:
    before, body = _head_and_last(text, limit, TEMPLATE_TEXT_LIMIT)
    shown = tuple((_one_line(b.title), b.ref, b.url) for b in buttons)
    return [*(Out("text", c) for c in before), Out("buttons", body, buttons=shown)]


def layout(reply: Reply, language: str = "en", *, text_limit: int = TEXT_LIMIT) -> list[Out]:
    """The messages that show one reply, in order."""
    reply = replace(reply, text=texts.plain(reply.text))
    out: list[Out] = [Out("image", url=reply.image)] if reply.image else []
    choices = [b for b in reply.buttons if not b.is_link and b.ref]
    links = [b for b in reply.buttons if b.is_link]
    short = all(len(_one_line(b.title)) <= TITLE_LIMIT for b in (*choices, *links))
    fits = 0 < len(reply.text.strip()) <= TEMPLATE_TEXT_LIMIT  # one message, not a split answer
    if links and short and len(choices) + len(links) <= MAX_TEMPLATE_BUTTONS and fits:
        in_order = [b for b in reply.buttons if b.is_link or b.ref]
        return out + _template(reply.text, in_order, text_limit)
    text = _with_lines(reply.text, [f"{b.title}: {b.url}" for b in links]) if links else reply.text
    if not choices:
        return out + [Out("text", c) for c in texts.split_text(text, text_limit)]
    if len(choices) > MAX_QUICK_REPLIES:
        more = MORE_CHOICES.get(language, MORE_CHOICES["en"])
        for start in range(0, len(choices), MAX_TEMPLATE_BUTTONS):
            group = choices[start : start + MAX_TEMPLATE_BUTTONS]
            labelled = [replace(b, title=texts.shorten(b.title, TITLE_LIMIT)) for b in group]
            out += _template(text if start == 0 else more, labelled, text_limit)
        return out
    long = [b.title for b in choices if len(_one_line(b.title)) > TITLE_LIMIT]
    if long:
        text = _with_lines(text, [f"• {_one_line(t)}" for t in long])
    before, last = _head_and_last(text, text_limit, text_limit)
    shown = tuple((texts.shorten(b.title, TITLE_LIMIT), b.ref, None) for b in choices)
    return [*out, *(Out("text", c) for c in before), Out("quick_replies", last, buttons=shown)]


def layout_all(
    replies: list[Reply], language: str = "en", *, text_limit: int = TEXT_LIMIT
) -> list[Out]:
    """The messages for a turn's replies."""
    return [o for r in replies for o in layout(r, language, text_limit=text_limit)]


def message(out: Out) -> dict[str, Any]:
    """The Send API's `message` object for one laid-out message."""
    if out.kind == "text":
        return {"text": out.text}
    if out.kind == "quick_replies":
        quick = [
            {"content_type": "text", "title": title, "payload": payload}
            for title, payload, _ in out.buttons
        ]
        return {"text": out.text, "quick_replies": quick}
    if out.kind == "buttons":
        buttons: list[dict[str, Any]] = [
            {"type": "web_url", "url": url, "title": title}
            if url
            else {"type": "postback", "title": title, "payload": payload}
            for title, payload, url in out.buttons
        ]
        payload = {"template_type": "button", "text": out.text, "buttons": buttons}
        return {"attachment": {"type": "template", "payload": payload}}
    if out.kind == "image":
        return {"attachment": {"type": "image", "payload": {"url": out.url, "is_reusable": True}}}
    raise ValueError(f"unknown message kind {out.kind!r}")
