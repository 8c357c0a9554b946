"""Helpers shared by the actions: settings, database sessions and tracker metadata."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rasa_sdk import Tracker
from sqlalchemy.orm import Session

from earshot.settings import Settings, get_settings
from earshot.storage.db import session_scope


def settings() -> Settings:
    return get_settings()


@contextmanager
def db() -> Iterator[Session]:
    with session_scope(settings().db_url) as session:
        yield session


def metadata(tracker: Tracker) -> dict[str, Any]:
    """Channel metadata of the latest user message (language, channel, chat type)."""
    meta = (tracker.latest_message or {}).get("metadata") or {}
    return meta if isinstance(meta, dict) else {}


def customer_key(tracker: Tracker) -> str:
    """The sender id is already the pseudonymous key: front ends never send raw ids."""
    return str(tracker.sender_id)


def language(tracker: Tracker) -> str:
    """The conversation's language: the `language` slot the channel keeps up to date."""
    s = settings()
    lang = tracker.get_slot("language") or metadata(tracker).get("language")
    return lang if lang in s.languages else s.default_language


def channel(tracker: Tracker) -> str:
    return str(metadata(tracker).get("channel") or "unknown")
