"""A local terminal chat with the assistant (no Telegram token needed): a gateway adapter.

Commands, language, erasure and handoff work as on every channel. Choices are numbered
(typing the number presses it); links are shown with their address and not numbered.
"""

from __future__ import annotations

import asyncio
import getpass
import io
import sys
from typing import Any, TextIO

from earshot.cli.progress import phase
from earshot.gateway.model import Incoming, Purpose, Reply, Sent
from earshot.gateway.service import Gateway
from earshot.gateway.support import support_desk
from earshot.settings import ConfigError, load_settings

HELP = "Type a message. Numbers pick a button. /help lists the commands; /quit ends the chat."


class TerminalChannel:
    """The gateway's `Channel` on a terminal: prints replies, remembers the choices shown."""

    name = "terminal"
    proactive = False  # nobody reads the terminal later: "try again" rather than kept

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out
        self.choices: list[str] = []  # the references of the numbered buttons, from 1

    def _print(self, line: str) -> None:
        print(line, file=self.out or sys.stdout)

    async def send(
        self, chat_id: str, replies: list[Reply], *, purpose: Purpose, language: str
    ) -> Sent:
        choices: list[str] = []
        for reply in replies:
            if reply.text.strip():
                self._print(f"bot> {reply.text}")
            if reply.image:
                self._print(f"bot> [image] {reply.image}")
            for b in reply.buttons:
                if b.is_link:
                    self._print(f"     - {b.title}: {b.url}")
                elif b.ref:
                    choices.append(b.ref)
                    self._print(f"     {len(choices)}. {b.title}")
        if choices or any(r.buttons for r in replies):
            self.choices = choices  # a new turn's buttons replace the old ones
        return Sent()


def to_incoming(text: str, channel: TerminalChannel, user: str) -> Incoming | None:
    """A typed line as the gateway's message: a number presses that choice."""
    if text.isdigit() and 1 <= int(text) <= len(channel.choices):
        return Incoming("terminal", user, user, button=channel.choices[int(text) - 1])
    if not text:
        return None
    return Incoming("terminal", user, user, text=text)


async def chat(
    lines: Any = None, *, gateway: Gateway | None = None, user: str | None = None
) -> int:
    """Read lines (stdin by default), hand them to the gateway, print what it answers."""
    if gateway is None:
        try:
            settings = load_settings()
        except ConfigError as exc:
            print(f"earshot: {exc}", file=sys.stderr)
            return 2
        gateway = Gateway(settings, support=support_desk(settings))
    settings = gateway.settings
    user = user or getpass.getuser()
    held = io.StringIO()  # the greeting shows after the "chat ready" line
    channel = TerminalChannel(out=held)
    source = lines if lines is not None else sys.stdin
    try:
        greeting = await gateway.handle(Incoming("terminal", user, user, text="/start"), channel)
        if greeting.status == "unavailable":
            print(f"earshot: Rasa is not reachable at {settings.rasa_url}", file=sys.stderr)
            return 1
        phase(f"chat ready ({settings.company.name} assistant). {HELP}")
        print(held.getvalue(), end="")
        channel.out = None
        while True:
            print("you> ", end="", flush=True)
            line = await asyncio.to_thread(source.readline)
            if not line:
                print()
                return 0
            text = line.strip()
            if text in ("/quit", "/exit"):
                if not getattr(source, "isatty", lambda: False)():
                    print()  # piped input is not echoed: end the prompt's line
                return 0
            incoming = to_incoming(text, channel, user)
            if incoming is not None:
                await gateway.handle(incoming, channel)
    finally:
        await gateway.aclose()


def main() -> None:
    try:
        sys.exit(asyncio.run(chat()))
    except KeyboardInterrupt:  # Ctrl-C: the supervisor stops the rest
        print()
        sys.exit(0)


if __name__ == "__main__":
    main()
