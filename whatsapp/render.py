"""Lay the gateway's replies out within WhatsApp's limits (pure functions, no I/O).

WhatsApp shows at most 3 reply buttons (titles up to 20 characters) or one list of up to
10 rows (titles up to 24, descriptions up to 72); an interactive message's body holds
1,024 characters, a text message 4,096. Every button set the assistant produces fits:
3 short choices become reply buttons, anything else a list, more than 10 choices several
lists of 10. Links become a "visit website" (cta_url) button when a message has exactly
one link and no choices; otherwise their addresses are written into the text.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field, replace

from earshot.gateway.model import Button, Reply

TEXT_LIMIT = 4096
BODY_LIMIT = 1024  # an interactive message's body
BUTTON_TITLE_LIMIT = 20
MAX_REPLY_BUTTONS = 3
ROW_TITLE_LIMIT = 24
ROW_DESCRIPTION_LIMIT = 72
MAX_LIST_ROWS = 10
ID_LIMIT = 200  # a list row id; reply button ids allow 256
LIST_BUTTON = {"en": "Choose", "nl": "Kies"}
MORE_CHOICES = {"en": "More choices", "nl": "Meer keuzes"}


@dataclass(frozen=True)
class Row:
    """A choice in a list: what the customer sees and the id WhatsApp sends back."""

    id: str
    title: str
    description: str | None = None


@dataclass(frozen=True)
class Out:
    """One Cloud API message: kind is text, buttons, list, cta_url, image or template."""

    kind: str
    text: str = ""
    rows: tuple[Row, ...] = ()
    url: str | None = None
    title: str | None = None  # the list's or cta button's label; the template's name
    language: str | None = None  # a template's language
    params: tuple[str, ...] = field(default=())


_BOLD = re.compile(r"<b>(.*?)</b>", re.DOTALL)
_ITALIC = re.compile(r"<i>(.*?)</i>", re.DOTALL)
_TAG = re.compile(r"</?[a-z]+>")


def formatted(text: str) -> str:
    """Texts written for Telegram's HTML in WhatsApp's own markup (*bold*, _italic_)."""
    if "<" not in text and "&" not in text:
        return text
    text = _ITALIC.sub(r"_\1_", _BOLD.sub(r"*\1*", text))
    return html.unescape(_TAG.sub("", text))


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split at paragraph, line or word boundaries into chunks of at most `limit` chars."""
    chunks: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = limit
        for sep in ("\n\n", "\n", " "):
            pos = rest.rfind(sep, 0, limit)
            if pos > limit // 2:
                cut = pos
                break
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        chunks.append(rest)
    return chunks


def _shorten(title: str, limit: int) -> str:
    title = " ".join(title.split())
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


def _row(button: Button) -> Row:
    """A list row; a title too long for the row goes on in the description."""
    title = " ".join(button.title.split())
    if len(title) <= ROW_TITLE_LIMIT:
        return Row(str(button.ref), title)
    head = _shorten(title, ROW_TITLE_LIMIT)
    return Row(str(button.ref), head, _shorten(title, ROW_DESCRIPTION_LIMIT))


def _with_links(text: str, links: list[Button]) -> str:
    lines = [f"{b.title}: {b.url}" for b in links]
    return "\n".join([text, "", *lines]) if text.strip() else "\n".join(lines)


def _body_and_rest(text: str) -> tuple[list[str], str]:
    """Text messages before an interactive one, and the body it carries (≤ 1,024)."""
    chunks = split_text(text, TEXT_LIMIT)
    if not chunks:
        return [], "…"
    *before, last = chunks
    if len(last) <= BODY_LIMIT:
        return before, last
    body = split_text(last, BODY_LIMIT)[-1]
    head = last[: last.rfind(body)].rstrip()  # the body is the end of the last chunk
    return [*before, head] if head else before, body


def layout(reply: Reply, language: str = "en") -> list[Out]:
    """The messages that show one reply, in order."""
    reply = replace(reply, text=formatted(reply.text))
    out: list[Out] = []
    if reply.image:
        out.append(Out("image", url=reply.image))
    choices = [b for b in reply.buttons if not b.is_link and b.ref]
    links = [b for b in reply.buttons if b.is_link]
    if not choices:
        if len(links) == 1 and len(links[0].title) <= BUTTON_TITLE_LIMIT and reply.text.strip():
            before, body = _body_and_rest(reply.text)
            out += [Out("text", c) for c in before]
            out.append(Out("cta_url", body, url=links[0].url, title=links[0].title))
            return out
        text = _with_links(reply.text, links) if links else reply.text
        out += [Out("text", c) for c in split_text(text)]
        return out
    text = _with_links(reply.text, links) if links else reply.text
    before, body = _body_and_rest(text)
    out += [Out("text", c) for c in before]
    fits = len(choices) <= MAX_REPLY_BUTTONS and all(
        len(" ".join(b.title.split())) <= BUTTON_TITLE_LIMIT for b in choices
    )
    if fits:
        rows = tuple(Row(str(b.ref), " ".join(b.title.split())) for b in choices)
        out.append(Out("buttons", body, rows=rows))
        return out
    label = LIST_BUTTON.get(language, LIST_BUTTON["en"])
    for start in range(0, len(choices), MAX_LIST_ROWS):
        rows = tuple(_row(b) for b in choices[start : start + MAX_LIST_ROWS])
        shown = body if start == 0 else MORE_CHOICES.get(language, MORE_CHOICES["en"])
        out.append(Out("list", shown, rows=rows, title=label))
    return out


def layout_all(replies: list[Reply], language: str = "en") -> list[Out]:
    """The messages for a turn's replies."""
    return [o for r in replies for o in layout(r, language)]
