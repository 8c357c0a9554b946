"""The one command map of every channel: what a typed "/command" means.

Most commands become an intent payload for Rasa (the dialogue decides what they do);
/deletemydata is answered by the gateway itself (its steps never reach Rasa); anything
else is an unknown command, answered with a pointer to /help and never sent on (so an
intent such as '/rate{"x": 1}' cannot be typed in).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from earshot import language

# The menu, in the order channels show it (Telegram's command list, /help texts).
COMMANDS = (
    "start",
    "help",
    "feedback",
    "myfeedback",
    "privacy",
    "deletemydata",
    "stop",
    "language",
)
PAYLOADS = {
    "start": "/start",
    "help": "/help",
    "privacy": "/privacy_policy",
    "feedback": "/give_feedback",
    "myfeedback": "/my_feedback",
    "stop": "/stop_asking",
}
ERASE = "erase:choose"  # the first step of /deletemydata (see gateway/erasure.py)
DEEP_LINK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NAME = re.compile(r"^[a-z]{1,32}$")


@dataclass(frozen=True)
class Command:
    """A typed command: `payload` for Rasa, or `local` for the gateway, or unknown."""

    name: str
    payload: str | None = None
    local: str | None = None

    @property
    def unknown(self) -> bool:
        return self.payload is None and self.local is None


def parse(text: str) -> Command | None:
    """The command in `text`, or None when it is no command ("/start@bot x" works too)."""
    if not text.startswith("/"):
        return None
    head, *args = text.split()
    name = head[1:].split("@")[0].lower()
    if not _NAME.match(name):
        return Command(name)
    if name == "deletemydata":
        return Command(name, local=ERASE)
    if name == "language":
        return Command(name, payload=language.command_payload(args))
    if name == "start" and args and DEEP_LINK.match(args[0]):
        return Command(name, payload="/start" + json.dumps({"deep_link": args[0].lower()}))
    payload = PAYLOADS.get(name)
    return Command(name, payload=payload)
