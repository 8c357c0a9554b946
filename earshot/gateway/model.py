"""The gateway's vocabulary: what a channel adapter hands in, and what it gets back to show.

An adapter (Telegram, web chat, terminal, WhatsApp, ...) turns its channel's update into an
`Incoming`, calls `Gateway.handle`, and renders each `Reply` it is given through its own
`Channel.send`. Everything else (keys, dedupe, ordering, commands, Rasa, buttons, language,
redaction, inbox and replay, erasure, handoff) happens once, in the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol


@dataclass(frozen=True)
class Incoming:
    """One customer message as a channel delivered it (raw ids; the gateway pseudonymises)."""

    channel: str  # "telegram", "web", "terminal", "whatsapp", "messenger", "instagram", "x"
    user_id: str  # the channel's user id (turned into the customer key by the gateway)
    chat_id: str  # where replies go on that channel
    message_id: str | None = None  # the channel's own id, for de-duplication
    text: str | None = None  # typed text or a command ("/start fb-lamp"), not yet redacted
    button: str | None = None  # a pressed button's reference as the gateway issued it
    media: str | None = None  # "photo", "voice", "sticker", "document", ... when not text
    media_id: str | None = None
    language_hint: str | None = None  # the messenger's language setting, if it tells
    display_name: str | None = None  # first name, for the support team's handoff header


@dataclass(frozen=True)
class Button:
    """A choice: `ref` is what the channel sends back when pressed; a link has `url` instead."""

    title: str
    ref: str | None = None
    url: str | None = None

    @property
    def is_link(self) -> bool:
        return self.url is not None


@dataclass(frozen=True)
class Reply:
    """One message to show: plain text (channels escape/format it), buttons, an image URL."""

    text: str = ""
    buttons: tuple[Button, ...] = ()
    image: str | None = None


@dataclass(frozen=True)
class Handoff:
    """A customer asked for a person: the transcript goes to the support team."""

    customer_key: str
    channel: str
    chat_id: str
    display_name: str | None
    topic: str | None
    transcript: str
    support_chat_id: str | None


class Purpose(Enum):
    """Why a message goes out: channels with a service window (WhatsApp, Messenger) treat
    replies and proactive messages differently."""

    REPLY = "reply"  # an answer to the customer's own message
    FEEDBACK_ASK = "feedback_ask"  # asking for feedback after a service answer
    CAMPAIGN = "campaign"  # a campaign question, sent unasked
    NOTICE = "notice"  # a status notice about the customer's feedback


@dataclass
class Sent:
    """What a channel did with the replies: channel message ids, or skipped (and why)."""

    message_ids: list[str] = field(default_factory=list)
    skipped: str | None = None  # e.g. "window_closed_no_template"


class Channel(Protocol):
    """What an adapter gives the gateway to reach its customers.

    Optional attributes the gateway reads with a default (a channel need not declare them):
    `proactive` (True: the channel can message a customer later, so a message Rasa could
    not answer is kept and answered on replay; False for request/response channels such as
    the web chat and the terminal, which say "try again" instead); `async pressed(incoming,
    notice)`, called once a pressed button is resolved, before the turn (notice None) or
    with the "expired" text for a forged or expired one, which the gateway then does not
    send (Telegram answers the callback query with it and locks the keyboard); and
    `async typing(chat_id)`, called when an answer takes longer than `typing_after_s`;
    `merge_texts` (default True: a turn's texts become one message, buttons on the last).
    """

    name: str

    async def send(
        self, chat_id: str, replies: list[Reply], *, purpose: Purpose, language: str
    ) -> Sent:
        """Show the replies in the chat (split, escaped and laid out as the channel needs)."""
        ...


class SupportDesk(Protocol):
    """Where handoffs go: the support team's chat (Telegram's support_chat_id today)."""

    async def hand_off(self, handoff: Handoff) -> bool:
        """Post the handoff with its transcript; False if it could not be delivered."""
        ...


@dataclass
class Outcome:
    """What the gateway did with one `Incoming` (adapters of request/response channels
    answer with it; others may ignore it)."""

    status: str  # answered, command, erasure, duplicate, limited, queued, kept,
    # unavailable, expired, unknown_command, empty
    language: str
    sent: Sent | None = None
    notice: str | None = None  # the "expired" text a channel's `pressed` hook showed
