"""What the channels keep about a conversation: the customer's row (pseudonymous key, chat,
language), long button payloads, and the update ids already processed.

Like every query module: keyword-only functions that take the caller's Session and never
commit; the caller owns the transaction (see `session_scope`), so a turn's writes land
together.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from earshot import language as lang
from earshot.outreach.outbox import has_pending_inbox
from earshot.storage.db import insert_ignoring_conflicts
from earshot.storage.models import (
    CallbackPayload,
    Customer,
    ProcessedUpdate,
    utcnow,
)


def touch_customer(
    session: Session,
    *,
    user_key: str,
    channel: str,
    chat_id: str | None = None,
    language: str | None = None,
) -> Customer:
    """Get or create the customer row and note that we saw them now."""
    customer = session.scalar(select(Customer).where(Customer.user_key == user_key))
    if customer is None:
        customer = Customer(user_key=user_key, channel=channel, chat_id=chat_id, language=language)
        session.add(customer)
        session.flush()
        return customer
    customer.last_seen_at = utcnow()
    if chat_id and customer.chat_id != chat_id:
        customer.chat_id = chat_id
    if language and not customer.language_chosen:
        customer.language = language
    return customer


def see_customer(
    session: Session,
    *,
    user_key: str,
    channel: str,
    chat_id: str | None,
    reported_language: str | None,
    text: str,
    languages: Sequence[str],
    default_language: str,
) -> tuple[str, bool]:
    """A customer's message arrived: note that we saw them, and a language they chose in it.

    Returns the language to answer in and whether older messages of theirs still wait in
    the inbox (the new one must queue behind them): one transaction for the bot's turn.
    Language precedence: explicit choice, the messenger's language, detection on the first
    substantive message (remembered), the default.
    """
    chosen = lang.chosen(text, languages)
    if chosen:
        choose_language(session, user_key=user_key, channel=channel, language=chosen)
    customer = touch_customer(session, user_key=user_key, channel=channel, chat_id=chat_id)
    reported = lang.normalise(reported_language)
    if not customer.language_chosen:
        if reported in languages:
            customer.language = reported
        elif customer.language not in languages:
            customer.language = lang.detect(text, languages)
    current = customer.language
    answer_in = current if current is not None and current in languages else default_language
    return answer_in, has_pending_inbox(session, customer_key=user_key)


def choose_language(session: Session, *, user_key: str, channel: str, language: str) -> None:
    """The customer picked a language: it beats every other signal from now on."""
    customer = touch_customer(session, user_key=user_key, channel=channel)
    customer.language = language
    customer.language_chosen = True


def get_customer_language(session: Session, *, user_key: str) -> str | None:
    """The language we last answered this customer in (chosen or detected), if any."""
    return session.scalar(select(Customer.language).where(Customer.user_key == user_key))


def get_customer(session: Session, *, user_key: str) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.user_key == user_key))


def store_payload(session: Session, *, payload: str, customer_key: str | None) -> str:
    """Keep a long button payload server-side; returns the short id to put in callback_data."""
    pid = secrets.token_urlsafe(12)
    session.add(CallbackPayload(id=pid, payload=payload, customer_key=customer_key))
    return pid


def load_payload(
    session: Session, *, pid: str, customer_key: str | None, max_age: timedelta = timedelta(days=7)
) -> str | None:
    """The stored payload, or None when unknown, expired or someone else's."""
    row = session.get(CallbackPayload, pid)
    if row is None or row.customer_key != customer_key:
        return None
    if utcnow() - row.created_at > max_age:
        return None
    return row.payload


def claim_update(
    session: Session, *, update_id: int, customer_key: str | None, bot_id: int = 0
) -> bool:
    """Record a bot's update id; False if it was already processed (a redelivery).

    One INSERT … ON CONFLICT DO NOTHING (SQLite and PostgreSQL alike): it runs for every
    update, and a lookup plus a savepoint cost four statements.
    """
    stmt = (
        insert_ignoring_conflicts(session, ProcessedUpdate)
        .values(bot_id=bot_id, update_id=update_id, customer_key=customer_key)
        .returning(ProcessedUpdate.update_id)
    )
    return session.execute(stmt).first() is not None  # no row back: it was there already


def release_update(session: Session, *, update_id: int, bot_id: int = 0) -> None:
    """Forget an update id, so an update whose processing was cut short runs again."""
    session.execute(
        delete(ProcessedUpdate).where(
            ProcessedUpdate.bot_id == bot_id, ProcessedUpdate.update_id == update_id
        )
    )


def _message_slot(channel: str, message_id: str) -> tuple[int, int]:
    """A channel's message id as a (bot_id, update_id) pair of processed_updates.

    Channels other than Telegram have string ids (WhatsApp "wamid.…"): the channel's name
    hashes to a negative bot id (Telegram's bot ids are positive) and the message id to a
    63-bit update id, so one table and its erasure and retention serve every channel.
    """
    channel_hash = int.from_bytes(hashlib.sha256(channel.encode()).digest()[:4], "big")
    message_hash = int.from_bytes(hashlib.sha256(message_id.encode()).digest()[:8], "big")
    return -(channel_hash + 1), message_hash >> 1


def claim_message(
    session: Session, *, channel: str, message_id: str, customer_key: str | None
) -> bool:
    """Record a channel's message id; False if it was already processed (a redelivery)."""
    bot_id, update_id = _message_slot(channel, message_id)
    return claim_update(session, update_id=update_id, customer_key=customer_key, bot_id=bot_id)


def release_message(session: Session, *, channel: str, message_id: str) -> None:
    """Forget a message id, so a message whose processing was cut short runs again."""
    bot_id, update_id = _message_slot(channel, message_id)
    release_update(session, update_id=update_id, bot_id=bot_id)
