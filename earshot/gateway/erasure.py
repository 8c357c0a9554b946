"""The /deletemydata steps: choose, confirm, erase, on every channel alike.

Each step is a reply whose buttons carry the next step's payload ("erase:..."), stored
server-side like every button: a step is reachable only from /deletemydata or a button we
showed this customer, never from typed text (typed "erase:do:all" is just text for Rasa).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.orm import Session

from earshot.gateway.model import Button, Reply
from earshot.gateway.replies import say
from earshot.privacy.erasure import erase_customer, erase_spooled

log = logging.getLogger("earshot.gateway")

PREFIX = "erase:"


def is_step(payload: str) -> bool:
    return payload.startswith(PREFIX)


def _button(key: str, language: str, step: str) -> Button:
    return Button(say(key, language).text, ref=PREFIX + step)


def step(
    session: Session, *, payload: str, customer_key: str, language: str, spool_root: Path
) -> list[Reply]:
    """One step of /deletemydata; the erasure itself on "erase:do:personal|all"."""
    cancel = _button("cancel_button", language, "cancel")
    if payload == PREFIX + "choose":
        return [
            say(
                "delete_choose",
                language,
                _button("delete_personal_button", language, "ask:personal"),
                _button("delete_all_button", language, "ask:all"),
                cancel,
            )
        ]
    choice = "all" if payload.endswith(":all") else "personal"
    if payload.startswith(PREFIX + "ask:"):
        yes = _button("delete_yes_button", language, f"do:{choice}")
        return [say(f"delete_confirm_{choice}", language, yes, cancel)]
    if payload.startswith(PREFIX + "do:"):
        report = erase_customer(session, customer_key=customer_key, everything=choice == "all")
        erase_spooled(spool_root, customer_key=customer_key)
        log.info("erased a customer's data (everything=%s, rows=%d)", choice, report.total)
        return [say("deleted_all" if choice == "all" else "deleted_personal", language)]
    return [say("delete_cancelled", language)]
