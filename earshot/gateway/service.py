"""The conversation gateway: one path from any channel's message to Rasa and back.

An adapter turns its channel's update into an `Incoming` and calls `Gateway.handle`; the
gateway does the rest, once for every channel: the customer's pseudonymous key,
de-duplication by the channel's message id, the per-customer inbound limit, one turn at a
time per customer, redaction of typed text before anything else sees it, the command map,
button references, /deletemydata, the customer's language, Rasa, the support desk for
handoffs, and the durable inbox (database, else a disk spool) with its replay.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from earshot import language as lang_mod
from earshot.conversations import queries as conversations
from earshot.gateway import buttons, commands, erasure, replies
from earshot.gateway.limits import InboundLimit, Verdict
from earshot.gateway.model import (
    Button,
    Channel,
    Handoff,
    Incoming,
    Outcome,
    Purpose,
    Reply,
    Sent,
    SupportDesk,
)
from earshot.gateway.rasa import RasaClient, RasaUnavailable
from earshot.knowledge.kb import KnowledgeBase, KnowledgeBaseError, load_kb
from earshot.outreach import outbox
from earshot.privacy.identity import user_key
from earshot.privacy.redaction import redact
from earshot.settings import Settings
from earshot.storage.db import session_scope
from earshot.storage.spool import Spool

log = logging.getLogger("earshot.gateway")

Db = Callable[..., Awaitable[Any]]
MAX_TEXT = 4000  # longer typed text is cut: no customer question needs more
MAX_WAITING_PER_CUSTOMER = 20  # past this, a flood is kept for replay, not queued as tasks


def thread_db(db_url: str) -> Db:
    """Run `fn(session, **kwargs)` in a worker thread, in its own transaction."""

    async def db(fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        def run() -> Any:
            with session_scope(db_url) as session:
                return fn(session, **kwargs)

        return await asyncio.to_thread(run)

    return db


class Gateway:
    """Every channel's conversations with the assistant (one per process)."""

    def __init__(
        self,
        settings: Settings,
        *,
        rasa: RasaClient | None = None,
        support: SupportDesk | None = None,
        db: Db | None = None,
        limit: InboundLimit | None = None,
    ) -> None:
        self.settings = settings
        self.rasa = rasa or RasaClient(
            settings.rasa_url, settings.rasa_timeout_s, settings.rasa_token.get_secret_value()
        )
        self.support = support
        self.db: Db = db or thread_db(settings.db_url)
        self.limit = limit or InboundLimit(settings.customer_messages_per_minute)
        self.spool = Spool(settings.data_dir / "spool" / "inbox")
        self._secret = settings.earshot_secret.get_secret_value()
        self._locks: dict[str, asyncio.Lock] = {}
        self._holders: Counter[str] = Counter()
        self._told: set[str] = set()  # told "unavailable" since their last answer
        self._kb: KnowledgeBase | None = None  # loaded when a handoff first needs it

    # --- keys, locks, language ------------------------------------------------------------

    def key(self, channel: str, user_id: str | int) -> str:
        """The customer's pseudonymous key (what Rasa and every table see)."""
        return user_key(self._secret, channel, user_id)

    @asynccontextmanager
    async def customer_lock(self, key: str) -> AsyncIterator[None]:
        """One turn at a time per customer (replies, replays, asks and erasure alike)."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._holders[key] += 1
        try:
            async with lock:
                yield
        finally:
            self._holders[key] -= 1
            if not self._holders[key]:  # nobody waits: forget it, the map stays small
                del self._holders[key]
                self._locks.pop(key, None)

    def waiting(self, key: str) -> int:
        """Turns of this customer running or queued in this process."""
        return self._holders[key]

    def _default_language(self, hint: str | None) -> str:
        s = self.settings
        return lang_mod.resolve(
            chosen=None,
            reported=hint,
            detected=None,
            languages=s.languages,
            default=s.default_language,
        )

    async def language_of(self, key: str, hint: str | None = None) -> str:
        """The language to answer in outside a turn: the stored one, else the channel's."""
        s = self.settings
        stored = None
        try:
            stored = await self.db(conversations.get_customer_language, user_key=key)
        except DBAPIError:
            log.debug("database unavailable; answering in the channel's language")
        return lang_mod.resolve(
            chosen=stored,
            reported=hint,
            detected=None,
            languages=s.languages,
            default=s.default_language,
        )

    async def say(
        self, channel: Channel, chat_id: str, text_key: str, language: str, purpose: Purpose
    ) -> Sent:
        """Send one of Earshot's own texts (a key of earshot/i18n.py)."""
        return await channel.send(
            chat_id, [replies.say(text_key, language)], purpose=purpose, language=language
        )

    # --- one incoming message ---------------------------------------------------------------

    async def handle(self, incoming: Incoming, channel: Channel) -> Outcome:
        """Answer one customer message on `channel` (see the module docstring)."""
        key = self.key(incoming.channel, incoming.user_id)
        hint = incoming.language_hint
        if incoming.message_id and not await self._fresh(incoming, key):
            return Outcome("duplicate", self._default_language(hint))
        verdict = self.limit.hit(key)
        if verdict is not Verdict.OK:
            lang = await self.language_of(key, hint)
            if verdict is Verdict.NOTICE:
                log.info("a customer is over the inbound limit; further messages ignored")
                await self.say(channel, incoming.chat_id, "too_fast", lang, Purpose.REPLY)
            return Outcome("limited", lang)
        text, trusted, early = await self._payload(incoming, key, channel)
        if early is not None:
            return early
        assert text is not None
        if trusted and erasure.is_step(text):  # a stored button or /deletemydata, never typed
            async with self.customer_lock(key):
                return await self._erase(incoming, channel, key, text)
        if self.waiting(key) >= MAX_WAITING_PER_CUSTOMER and getattr(channel, "proactive", True):
            # A flood: keep the message for replay rather than queue more tasks.
            await self._keep(key, incoming, text, self._meta(incoming))
            return Outcome("queued", self._default_language(hint))
        async with self.customer_lock(key):
            return await self._turn(incoming, channel, key, text)

    async def _fresh(self, incoming: Incoming, key: str) -> bool:
        """False for a message the channel already delivered (also across restarts)."""
        assert incoming.message_id
        try:
            fresh = bool(
                await self.db(
                    conversations.claim_message,
                    channel=incoming.channel,
                    message_id=incoming.message_id,
                    customer_key=key,
                )
            )
        except DBAPIError:
            log.warning("database unavailable; message not deduplicated")
            return True
        if not fresh:
            log.info("%s message already processed; skipped", incoming.channel)
        return fresh

    async def _payload(
        self, incoming: Incoming, key: str, channel: Channel
    ) -> tuple[str | None, bool, Outcome | None]:
        """What goes on to Rasa (or the erasure steps), whether it came from us (a stored
        button or a command) rather than typed; or the answer already given."""
        chat_id, hint = incoming.chat_id, incoming.language_hint
        if incoming.button is not None:
            pressed = getattr(channel, "pressed", None)
            try:
                payload = await self.db(buttons.resolve, ref=incoming.button, customer_key=key)
            except DBAPIError:
                lang = self._default_language(hint)
                unavailable = self._unavailable_key(channel)
                if pressed is not None:
                    await pressed(incoming, replies.say(unavailable, lang).text)
                else:
                    await self.say(channel, chat_id, unavailable, lang, Purpose.REPLY)
                return None, False, Outcome("unavailable", lang)
            if payload is None:
                lang = await self.language_of(key, hint)
                notice = replies.say("expired", lang).text
                if pressed is not None:  # the channel shows it its own way (a toast)
                    await pressed(incoming, notice)
                    return None, False, Outcome("expired", lang, notice=notice)
                sent = await self.say(channel, chat_id, "expired", lang, Purpose.REPLY)
                return None, False, Outcome("expired", lang, sent=sent)
            if pressed is not None:
                await pressed(incoming, None)
            return payload, True, None
        if incoming.media is not None and not (incoming.text or "").strip():
            entity = {"media_kind": incoming.media}
            if incoming.media_id:
                entity["file_id"] = incoming.media_id
            return "/media" + json.dumps(entity), True, None
        text = (incoming.text or "").strip()
        command = commands.parse(text)
        if command is not None:
            if command.unknown:
                lang = await self.language_of(key, hint)
                sent = await self.say(channel, chat_id, "unknown_command", lang, Purpose.REPLY)
                return None, False, Outcome("unknown_command", lang, sent=sent)
            return command.local or command.payload, True, None
        # Typed text is redacted before Rasa (and so any table, spool or log) sees it.
        text = redact(text)[:MAX_TEXT].strip()
        if not text:
            return None, False, Outcome("empty", self._default_language(hint))
        return text, False, None

    def _meta(self, incoming: Incoming, language: str | None = None) -> dict[str, Any]:
        hint = incoming.language_hint or ""
        return {
            "channel": incoming.channel,
            "language_code": hint,
            "language": language or self._default_language(hint),
            "chat_type": "private",
        }

    async def _turn(self, incoming: Incoming, channel: Channel, key: str, text: str) -> Outcome:
        """One message to Rasa and its answer to the customer (under the customer's lock)."""
        s, chat_id = self.settings, incoming.chat_id
        proactive = getattr(channel, "proactive", True)
        meta = self._meta(incoming)
        try:
            meta["language"], waiting = await self.db(
                conversations.see_customer,
                user_key=key,
                channel=incoming.channel,
                chat_id=chat_id or None,  # the web chat has none worth keeping
                reported_language=incoming.language_hint,
                text=text,
                languages=s.languages,
                default_language=s.default_language,
            )
        except DBAPIError:
            log.warning("database unavailable; message kept")
            return await self._not_now(incoming, channel, key, text, meta)
        if proactive and (waiting or len(self.spool) > 0):
            # Older messages still wait for Rasa: queue behind them to keep the order.
            await self._keep(key, incoming, text, meta)
            return Outcome("queued", meta["language"])
        typing = self._typing(channel, chat_id)
        try:
            messages = await self.rasa.send(key, text, meta)
        except RasaUnavailable as exc:
            log.warning("Rasa unavailable: %s", exc)
            return await self._not_now(incoming, channel, key, text, meta)
        finally:
            if typing is not None:
                typing.cancel()
        self._told.discard(key)
        sent = await self.deliver(
            key=key,
            chat_id=chat_id,
            messages=messages,
            channel=channel,
            language=meta["language"],
            display_name=incoming.display_name,
        )
        return Outcome("answered", meta["language"], sent=sent)

    def _typing(self, channel: Channel, chat_id: str) -> asyncio.Task[None] | None:
        """Show "typing…" only when the answer takes a while (channels with a `typing`)."""
        typing = getattr(channel, "typing", None)
        if typing is None:
            return None

        async def later() -> None:
            await asyncio.sleep(self.settings.typing_after_s)
            try:
                await typing(chat_id)
            except Exception:  # a cosmetic call: never let it fail a turn
                log.debug("typing indicator failed", exc_info=True)

        return asyncio.create_task(later())

    @staticmethod
    def _unavailable_key(channel: Channel) -> str:
        # Channels that cannot write later say "try again"; the others promise an answer.
        return "unavailable" if getattr(channel, "proactive", True) else "web_unavailable"

    async def _not_now(
        self, incoming: Incoming, channel: Channel, key: str, text: str, meta: dict[str, Any]
    ) -> Outcome:
        """Rasa or the database is down: keep the message and say so once (or, on a channel
        that cannot write later, ask the customer to try again)."""
        lang = str(meta["language"])
        if not getattr(channel, "proactive", True):
            sent = await self.say(channel, incoming.chat_id, "web_unavailable", lang, Purpose.REPLY)
            return Outcome("unavailable", lang, sent=sent)
        await self._keep(key, incoming, text, meta)
        if key in self._told:
            return Outcome("kept", lang)
        self._told.add(key)
        sent = await self.say(channel, incoming.chat_id, "unavailable", lang, Purpose.REPLY)
        return Outcome("kept", lang, sent=sent)

    async def _keep(self, key: str, incoming: Incoming, text: str, meta: dict[str, Any]) -> None:
        """Keep a message for replay: in the database inbox, or on local disk if that is down."""
        # No display name in it: nothing personal is stored unredacted (a handoff replayed
        # from the inbox names "a customer"; Telegram's still links to the chat).
        entry = {"customer_key": key, "chat_id": incoming.chat_id, "text": text, "meta": meta}
        if not len(self.spool):  # while anything is spooled, spool too: replay keeps the order
            try:
                await self.db(outbox.keep_in_inbox, **entry)
                return
            except DBAPIError:
                log.warning("database unavailable; message kept in the local spool")
        await asyncio.to_thread(self.spool.put, entry)

    async def _erase(self, incoming: Incoming, channel: Channel, key: str, step: str) -> Outcome:
        """A /deletemydata step: answered here, never by Rasa."""
        lang = await self.language_of(key, incoming.language_hint)
        try:
            shown = await self.db(
                erasure.step,
                payload=step,
                customer_key=key,
                language=lang,
                spool_root=self.settings.data_dir / "spool",
            )
            if any(not b.is_link for r in shown for b in r.buttons):
                shown = await self.db(buttons.store, replies=shown, customer_key=key)
        except DBAPIError:
            sent = await self.say(
                channel, incoming.chat_id, self._unavailable_key(channel), lang, Purpose.REPLY
            )
            return Outcome("unavailable", lang, sent=sent)
        sent = await channel.send(incoming.chat_id, shown, purpose=Purpose.REPLY, language=lang)
        return Outcome("erasure", lang, sent=sent)

    # --- answers, handoffs, replay ----------------------------------------------------------

    async def deliver(
        self,
        *,
        key: str,
        chat_id: str,
        messages: list[dict[str, Any]],
        channel: Channel,
        language: str,
        purpose: Purpose = Purpose.REPLY,
        display_name: str | None = None,
    ) -> Sent:
        """Rasa's messages to the customer: handoffs to the support desk, buttons stored."""
        parsed = replies.parse(messages, merge=getattr(channel, "merge_texts", True))
        shown: list[Reply] = parsed.replies
        for handoff in parsed.handoffs:
            if not await self._hand_off(handoff, key, channel.name, chat_id, display_name):
                # Nobody was told: the customer must not wait for a colleague in vain.
                shown = [*shown, *self._reach_us("handoff_failed", language)]
            elif not getattr(channel, "proactive", True):
                # A colleague cannot write into this chat later: say how to reach them.
                shown = [*shown, *self._reach_us("handoff_reach_us", language)]
        if any(not b.is_link for r in shown for b in r.buttons):
            shown = await self.db(buttons.store, replies=shown, customer_key=key)
        if not shown:
            return Sent()
        return await channel.send(chat_id, shown, purpose=purpose, language=language)

    async def _hand_off(
        self, raw: dict[str, Any], key: str, channel: str, chat_id: str, name: str | None
    ) -> bool:
        """Post a handoff to the support desk; False if it did not get there."""
        support = raw.get("support_chat_id")
        handoff = Handoff(
            customer_key=key,
            channel=channel,
            chat_id=chat_id,
            display_name=name,
            topic=str(raw["topic"]) if raw.get("topic") else None,
            transcript=str(raw.get("transcript") or ""),
            support_chat_id=str(support) if support else None,
        )
        if self.support is None:
            log.error("a customer asked for a person but this process has no support desk")
            return False
        try:
            ok = await self.support.hand_off(handoff)
        except Exception:
            log.exception("the handoff could not be posted to the support team")
            ok = False
        if not ok:
            log.error("a handoff did not reach the support team")
        return ok

    def _reach_us(self, why: str, language: str) -> list[Reply]:
        """Why, and how to reach customer service directly (kb/company.yml's contact
        options)."""
        shown = [replies.say(why, language)]
        try:
            kb = self._kb or load_kb(Path(self.settings.knowledge_base), self.settings.languages)
        except (KnowledgeBaseError, OSError):
            log.warning("no knowledge base to take the contact options from", exc_info=True)
            return shown
        self._kb = kb
        answer = kb.responses.get("utter_contact_options", {}).get(language)
        if answer is not None:
            links = tuple(Button(link.title, url=link.url) for link in answer.links)
            shown.append(Reply(text=answer.text, buttons=links))
        return shown

    def _unspool(self) -> int:
        """Move messages kept on disk while the database was down into the database inbox."""

        def store(entry: dict[str, Any]) -> None:
            with session_scope(self.settings.db_url) as session:
                outbox.keep_in_inbox(session, **entry)

        return self.spool.drain(store) if len(self.spool) else 0

    async def replay_inbox(self, channels: Iterable[Channel] | Mapping[str, Channel]) -> int:
        """Send kept messages of these channels to Rasa in order and deliver the answers;
        stop at the first failure (the rest wait for the next round)."""
        by_name = dict(channels) if isinstance(channels, Mapping) else {c.name: c for c in channels}
        await asyncio.to_thread(self._unspool)
        kept = await self.db(outbox.pending_inbox, channels=list(by_name))
        done = 0
        for msg in kept:
            channel = by_name.get(str(msg.meta.get("channel") or "telegram"))
            if channel is None:
                continue
            meta = dict(msg.meta)
            async with self.customer_lock(msg.customer_key):
                try:
                    messages = await self.rasa.send(msg.customer_key, msg.text, meta)
                except RasaUnavailable:
                    return done
                await self.db(outbox.finish_inbox, message_id=msg.id)
                self._told.discard(msg.customer_key)
                await self.deliver(
                    key=msg.customer_key,
                    chat_id=msg.chat_id,
                    messages=messages,
                    channel=channel,
                    language=str(meta.get("language") or self.settings.default_language),
                )
            done += 1
        if done:
            log.info("replayed %d kept message(s)", done)
        return done

    async def aclose(self) -> None:
        await self.rasa.aclose()
