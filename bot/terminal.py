"""A local terminal chat with the assistant: no Telegram token needed."""

from __future__ import annotations

import asyncio
import getpass
import sys
from typing import Any

from bot.rasa_client import RasaClient, RasaUnavailable
from earshot.cli.progress import phase
from earshot.privacy.identity import user_key
from earshot.privacy.redaction import redact
from earshot.settings import ConfigError, load_settings

HELP = "Type a message. Numbers pick a button. /quit ends the chat."


def render(messages: list[dict[str, Any]]) -> list[str]:
    """Print the assistant's messages; return the button payloads, numbered from 1."""
    payloads: list[str] = []
    for msg in messages:
        if msg.get("text"):
            print(f"bot> {msg['text']}")
        if msg.get("image"):
            print(f"bot> [image] {msg['image']}")
        for b in msg.get("buttons") or []:
            payloads.append(str(b.get("payload", "")))
            print(f"     {len(payloads)}. {b.get('title', '')}")
    return payloads


async def chat(lines: Any = None) -> int:
    """Read lines (stdin by default), relay them to Rasa, print what it answers."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"earshot: {exc}", file=sys.stderr)
        return 2
    rasa = RasaClient(
        settings.rasa_url, settings.rasa_timeout_s, settings.rasa_token.get_secret_value()
    )
    sender = user_key(settings.earshot_secret.get_secret_value(), "terminal", getpass.getuser())
    meta = {"channel": "terminal", "language": settings.default_language, "chat_type": "private"}
    payloads: list[str] = []
    source = lines if lines is not None else sys.stdin
    try:
        greeting = await rasa.send(sender, "/start", meta)
        phase(f"chat ready ({settings.company.name} assistant). {HELP}")
        payloads = render(greeting)
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
            if not text:
                continue
            if text.isdigit() and 1 <= int(text) <= len(payloads):
                text = payloads[int(text) - 1]
            else:  # typed text: personal details never reach Rasa's tracker as typed
                text = redact(text)
            try:
                payloads = render(await rasa.send(sender, text, meta))
            except RasaUnavailable:
                print("bot> I can't answer right now. Please try again in a moment.")
    except RasaUnavailable as exc:
        print(f"earshot: Rasa is not reachable at {settings.rasa_url}: {exc}", file=sys.stderr)
        return 1
    finally:
        await rasa.aclose()


def main() -> None:
    try:
        sys.exit(asyncio.run(chat()))
    except KeyboardInterrupt:  # Ctrl-C: the supervisor stops the rest
        print()
        sys.exit(0)


if __name__ == "__main__":
    main()
