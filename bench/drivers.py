"""Simulated customers: through Telegram (the fake Bot API and our bot) or straight over
HTTP to a Rasa channel, plus the runner that holds N conversations at once."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import yaml

from bench.conversations import Step
from testkit.telegram_api import FakeBotAPI, JSONDict, SentMessage
from testkit.whatsapp_api import FakeWhatsAppAPI
from testkit.whatsapp_api import SentMessage as WaMessage

TURN_TIMEOUT_S = 60.0


@dataclass
class Turn:
    """One customer message and the bot's reply to it."""

    customer: int
    index: int  # 1-based position in the customer's conversation
    cls: str
    ok: bool
    kind: str = "say"  # say (typed) or press (a button)
    latency_s: float | None = None  # served to the bot (or POSTed) -> first reply message
    done_at: float = 0.0  # monotonic time the turn's last message arrived
    messages: int = 0
    texts: list[str] = field(default_factory=list)
    error: str = ""


class BenchFake(FakeBotAPI):
    """The fake Bot API plus a queue of bot messages per chat, and optionally the
    network round trip of the real Bot API.

    FakeBotAPI.wait_for re-scans every sent message on every state change; with 50
    waiting customers that is quadratic and would steal CPU from the system under test.
    """

    def __init__(self, rtt_s: float = 0.0, **kwargs: Any) -> None:
        self._inboxes: dict[int | str, queue.SimpleQueue[SentMessage]] = {}
        self._inbox_lock = threading.Lock()
        self.rtt_s = rtt_s
        super().__init__(**kwargs)

    def _handle_api(
        self, token: str, method: str, params: JSONDict, files: dict[str, Any]
    ) -> tuple[int, JSONDict] | None:
        if not self.rtt_s or method.lower() == "getupdates":
            return super()._handle_api(token, method, params, files)
        # Half the round trip before Telegram records the call, half for the answer.
        # Each request has its own server thread, so sleeping delays only this call.
        time.sleep(self.rtt_s / 2)
        result = super()._handle_api(token, method, params, files)
        time.sleep(self.rtt_s / 2)
        return result

    def inbox(self, chat_id: int | str) -> queue.SimpleQueue[SentMessage]:
        with self._inbox_lock:
            return self._inboxes.setdefault(chat_id, queue.SimpleQueue())

    def _record_sent(
        self, method: str, message: JSONDict, params: JSONDict, text: str | None
    ) -> None:
        with self._cond:  # re-entrant: the same lock super() takes
            super()._record_sent(method, message, params, text)
            sent = self._sent[-1]
        if method != "editMessageText":  # edits only remove a pressed keyboard
            self.inbox(sent.chat_id).put(sent)


class CountBook:
    """How many bot messages each kind of turn produces, learned on first sight.

    Telegram gives no "turn finished" signal, and a customer must not send the next
    message while replies are still arriving (its latency would include that wait).
    The first turn of a kind waits until the chat is quiet for `quiet_s`; later turns of
    that kind wait for exactly that many messages. Extra or late messages are counted
    as drift, so a wrong count shows up in the report instead of skewing it silently.
    """

    def __init__(self, quiet_s: float = 1.0) -> None:
        self.quiet_s = quiet_s
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        self.drift = 0

    def get(self, cls: str) -> int | None:
        with self.lock:
            return self.counts.get(cls)

    def learn(self, cls: str, count: int) -> None:
        with self.lock:
            self.counts.setdefault(cls, count)


class Customer(Protocol):
    def turn(self, step: Step, index: int) -> Turn: ...


class TelegramCustomer:
    """A Telegram user talking to the real bot through the fake Bot API."""

    def __init__(self, fake: BenchFake, book: CountBook, user_id: int, customer: int) -> None:
        self.fake, self.book, self.user_id, self.customer = fake, book, user_id, customer
        self.inbox = fake.inbox(user_id)

    def _drain_late(self) -> None:
        while True:
            try:
                self.inbox.get_nowait()
            except queue.Empty:
                return
            with self.book.lock:
                self.book.drift += 1

    def turn(self, step: Step, index: int) -> Turn:
        self._drain_late()
        try:
            if step.kind == "say":
                update_id = self.fake.send_text(self.user_id, step.text, language_code="en")
            else:
                update_id = self.fake.press_button_by_text(self.user_id, step.text)
        except ValueError as exc:
            return Turn(self.customer, index, step.cls, ok=False, error=str(exc)[:200])
        start = time.monotonic()
        expected = self.book.get(step.cls)
        got: list[SentMessage] = []
        try:
            got.append(self.inbox.get(timeout=TURN_TIMEOUT_S))
            if expected is None:
                while True:
                    try:
                        got.append(self.inbox.get(timeout=self.book.quiet_s))
                    except queue.Empty:
                        break
                self.book.learn(step.cls, len(got))
            else:
                while len(got) < expected:
                    left = start + TURN_TIMEOUT_S - time.monotonic()
                    got.append(self.inbox.get(timeout=max(left, 0.001)))
        except queue.Empty:
            return Turn(
                self.customer,
                index,
                step.cls,
                ok=False,
                messages=len(got),
                error=f"timeout after {len(got)} message(s)",
            )
        served = self.fake.served_at(update_id)
        latency = got[0].time - served if served is not None else None
        return Turn(
            self.customer,
            index,
            step.cls,
            ok=latency is not None,
            latency_s=latency,
            done_at=got[-1].time,
            messages=len(got),
            texts=[m.text or "" for m in got],
        )


class BenchWaFake(FakeWhatsAppAPI):
    """The fake Cloud API plus a queue of sent messages per customer (see BenchFake)."""

    def __init__(self, **kwargs: Any) -> None:
        self._inboxes: dict[str, queue.SimpleQueue[WaMessage]] = {}
        self._inbox_lock = threading.Lock()
        super().__init__(**kwargs)

    def inbox(self, wa_id: str) -> queue.SimpleQueue[WaMessage]:
        with self._inbox_lock:
            return self._inboxes.setdefault(wa_id, queue.SimpleQueue())

    def _accept(self, payload: JSONDict, kind: str) -> JSONDict:
        result = super()._accept(payload, kind)
        with self._lock:
            sent = self.sent[-1]
        self.inbox(sent.to).put(sent)
        return result


class WhatsAppCustomer:
    """A WhatsApp customer talking to our webhook through the fake Cloud API: texts and
    presses arrive as signed webhooks, replies are the sends the fake accepts."""

    def __init__(self, fake: BenchWaFake, book: CountBook, number: str, customer: int) -> None:
        self.fake, self.book, self.number, self.customer = fake, book, number, customer
        self.inbox = fake.inbox(number)
        self.choices: dict[str, str] = {}  # title (or full title) -> id, newest first
        self.sent = 0

    def _payload(self, step: Step) -> JSONDict | None:
        if step.kind == "say":
            return self.fake.message_payload(
                self.number, {"type": "text", "text": {"body": step.text}}
            )
        cid = self.choices.get(step.text)
        if cid is None:
            return None
        reply = {"id": cid, "title": step.text[:24]}
        return self.fake.message_payload(
            self.number,
            {"type": "interactive", "interactive": {"type": "list_reply", "list_reply": reply}},
        )

    def _learn(self, messages: list[WaMessage]) -> None:
        for m in messages:
            inter = m.payload.get("interactive") or {}
            action = inter.get("action") or {}
            found: dict[str, str] = {}
            for b in action.get("buttons") or []:
                found[b["reply"]["title"]] = b["reply"]["id"]
            for section in action.get("sections") or []:
                for r in section["rows"]:
                    found[r["title"]] = r["id"]
                    if r.get("description"):
                        found[r["description"]] = r["id"]
            if found:
                self.choices = found

    def turn(self, step: Step, index: int) -> Turn:
        while True:  # late messages of the previous turn
            try:
                self.inbox.get_nowait()
            except queue.Empty:
                break
            with self.book.lock:
                self.book.drift += 1
        payload = self._payload(step)
        if payload is None:
            return Turn(self.customer, index, step.cls, ok=False, error=f"no choice {step.text!r}")
        self.fake.open_window(self.number)
        served = time.time()
        try:
            resp = self.fake.post_webhook(payload)
        except httpx.HTTPError as exc:
            return Turn(self.customer, index, step.cls, ok=False, error=repr(exc)[:200])
        if resp.status_code != 200:
            return Turn(self.customer, index, step.cls, ok=False, error=f"HTTP {resp.status_code}")
        start = time.monotonic()
        expected = self.book.get("wa:" + step.cls)
        got: list[WaMessage] = []
        try:
            got.append(self.inbox.get(timeout=TURN_TIMEOUT_S))
            if expected is None:
                while True:
                    try:
                        got.append(self.inbox.get(timeout=self.book.quiet_s))
                    except queue.Empty:
                        break
                self.book.learn("wa:" + step.cls, len(got))
            else:
                while len(got) < expected:
                    left = start + TURN_TIMEOUT_S - time.monotonic()
                    got.append(self.inbox.get(timeout=max(left, 0.001)))
        except queue.Empty:
            return Turn(
                self.customer,
                index,
                step.cls,
                ok=False,
                messages=len(got),
                error=f"timeout after {len(got)} message(s)",
            )
        self._learn(got)
        return Turn(
            self.customer,
            index,
            step.cls,
            ok=True,
            latency_s=got[0].at - served,
            done_at=time.monotonic(),
            messages=len(got),
            texts=[m.text for m in got],
        )


def domain_buttons(domain_dir: Path) -> dict[str, str]:
    """Button title -> payload from every response in the domain (the stock fallback)."""
    found: dict[str, str] = {}
    for path in sorted(domain_dir.rglob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for variants in (data.get("responses") or {}).values():
            for variant in variants or []:
                for button in variant.get("buttons") or []:
                    # Rasa fills {slot} templates; doubled braces are literal ones.
                    payload = str(button["payload"]).replace("{{", "{").replace("}}", "}")
                    found.setdefault(str(button["title"]), payload)
    return found


class HttpCustomer:
    """A customer posting straight to a Rasa channel: `rest` (stock) or `earshot` (ours).

    A press sends the button's payload as the message text, as a web widget would. When
    the button was not offered (the stock model may answer differently), the payload
    from the domain is sent anyway so both systems get the same conversation; such
    turns are counted in `diverged`.
    """

    def __init__(
        self,
        client: httpx.Client,
        urls: Sequence[str],
        sender: str,
        customer: int,
        *,
        commands: dict[str, str],
        fallback_buttons: dict[str, str],
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.client, self.urls, self.sender, self.customer = client, urls, sender, customer
        self.commands, self.fallback, self.metadata = commands, fallback_buttons, metadata
        self.buttons: dict[str, str] = {}
        self.diverged = 0
        self.sent = 0
        self.history: list[tuple[str, list[str]]] = []  # (message, reply texts) per turn
        self.failed: str | None = None  # the message whose POST failed (conversation over)

    def message_for(self, step: Step) -> str | None:
        if step.kind == "say":
            word = step.text.split()[0] if step.text.startswith("/") else ""
            return self.commands.get(word.lstrip("/"), step.text) if word else step.text
        if step.text in self.buttons:
            return self.buttons[step.text]
        self.diverged += 1
        return self.fallback.get(step.text)

    def post(self, text: str, url: str | None = None) -> tuple[int, list[JSONDict], float]:
        body: JSONDict = {"sender": self.sender, "message": text}
        if self.metadata is not None:
            body["metadata"] = self.metadata
        target = url or self.urls[self.sent % len(self.urls)]
        self.sent += 1
        start = time.monotonic()
        resp = self.client.post(target, json=body)
        elapsed = time.monotonic() - start
        data = resp.json() if resp.status_code == 200 else []
        return resp.status_code, data if isinstance(data, list) else [], elapsed

    def turn(self, step: Step, index: int) -> Turn:
        text = self.message_for(step)
        if text is None:
            return Turn(self.customer, index, step.cls, ok=False, error=f"no button {step.text!r}")
        try:
            status, messages, elapsed = self.post(text)
        except httpx.HTTPError as exc:
            self.failed = text
            return Turn(self.customer, index, step.cls, ok=False, error=repr(exc)[:200])
        if status != 200:
            self.failed = text
            return Turn(self.customer, index, step.cls, ok=False, error=f"HTTP {status}")
        offered = {
            str(b.get("title")): str(b.get("payload"))
            for m in messages
            for b in m.get("buttons") or []
        }
        if offered:  # like Telegram: the newest keyboard is the one the customer sees
            self.buttons = offered
        texts = [str(m.get("text") or "") for m in messages]
        self.history.append((text, texts))
        return Turn(
            self.customer,
            index,
            step.cls,
            ok=True,
            latency_s=elapsed,
            done_at=time.monotonic(),
            messages=len(messages),
            texts=texts,
        )


@dataclass
class Run:
    """Turns of one load run and its wall-clock span."""

    name: str
    concurrency: int
    turns: list[Turn]
    wall_s: float

    @property
    def ok_turns(self) -> list[Turn]:
        return [t for t in self.turns if t.ok]

    @property
    def errors(self) -> list[Turn]:
        return [t for t in self.turns if not t.ok]


def converse(
    customer: Customer, steps: Sequence[Step], pace_s: float = 0.0, start_s: float = 0.0
) -> list[Turn]:
    """One customer's whole conversation, starting `start_s` from now; stops at the first
    failed turn.

    With `pace_s`, the customer sends at most one message per `pace_s` seconds: it waits
    for the reply, then for the rest of the interval (reading and typing time).
    """
    turns: list[Turn] = []
    next_send = time.monotonic() + start_s
    for index, step in enumerate(steps, start=1):
        time.sleep(max(0.0, next_send - time.monotonic()))
        next_send = time.monotonic() + pace_s
        turn = customer.turn(step, index)
        turn.kind = step.kind
        turns.append(turn)
        if not turn.ok:
            break
    return turns


def run_load(
    name: str,
    customers: Sequence[Customer],
    scripts: Sequence[Sequence[Step]],
    concurrency: int,
    *,
    on_start: Callable[[], None] | None = None,
    pace_s: float = 0.0,
) -> Run:
    """All conversations, at most `concurrency` at a time; customers pause only with
    `pace_s` (see `converse`). Paced customers start spread over the first interval, as
    people do: all sending in the same instant every second would measure a queue that
    real customers never form."""
    start = time.monotonic()
    if on_start:
        on_start()
    offsets = [pace_s * i / max(len(customers), 1) for i in range(len(customers))]
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=name) as pool:
        results = list(
            pool.map(lambda c, s, o: converse(c, s, pace_s, o), customers, scripts, offsets)
        )
    wall = time.monotonic() - start
    return Run(name, concurrency, [t for turns in results for t in turns], wall)
