"""What the journeys on the webhook channels (WhatsApp, Messenger and Instagram, X) share:
`earshot run` with the channel's webhook process on its fake API (real Rasa and action
server), a simulated customer on that fake, and the checks every channel makes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import httpx
from sqlalchemy import select

from earshot.privacy.erasure import search_everywhere
from earshot.privacy.identity import user_key
from earshot.storage.db import make_engine, session_scope
from earshot.storage.models import CampaignSend
from testkit.stack import SECRET, Stack, free_port, running_stack
from tests.e2e.helpers import REF

F = TypeVar("F")
M = TypeVar("M", bound="Shown")
T = TypeVar("T")


@dataclass
class ChannelStack(Generic[F]):
    stack: Stack
    fake: F
    port: int


@contextmanager
def running_channel(
    workdir: Path,
    *,
    name: str,
    path: str,
    fake: Callable[[str], AbstractContextManager[F]],
    env: Callable[[F, int], dict[str, str]],
) -> Iterator[ChannelStack[F]]:
    """The stack with the webhook process of channel `name` on its fake (made for the
    webhook URL, http://127.0.0.1:<port>/<path>), once that process answers /healthz."""
    port = free_port()
    with fake(f"http://127.0.0.1:{port}/{path}") as api:
        with running_stack(workdir, **env(api, port)) as stack:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    log = workdir / "data" / "logs" / f"{path}.log"
                    raise TimeoutError(f"no {name} webhook\n{log.read_text(errors='replace')}")
                time.sleep(0.3)
            yield ChannelStack(stack, api, port)


class Shown(Protocol):
    """A message the channel's fake accepted (what the customer reads)."""

    @property
    def text(self) -> str: ...


class ChatFake(Protocol[M]):
    """The customer's side of a channel's fake API."""

    def sent_to(self, address: str, /) -> list[M]: ...

    def wait_for_sent(self, address: str, count: int, /, timeout: float) -> object: ...

    def push_text(self, address: str, text: str, /) -> object: ...


class ChannelCustomer(Generic[M]):
    """A simulated customer on channel `channel` at `address`: types, presses the choice
    shown with a title (`_press`, the channel's way), reads what was sent since."""

    def __init__(self, fake: ChatFake[M], channel: str, address: str) -> None:
        self.fake, self.channel, self.address = fake, channel, address
        self.seen = 0

    @property
    def key(self) -> str:
        return user_key(SECRET, self.channel, self.address)

    def _push_text(self, text: str) -> None:
        self.fake.push_text(self.address, text)

    def _press(self, title: str) -> None:
        raise NotImplementedError

    def _new(self, expect: int, timeout: float = 30.0) -> list[M]:
        self.fake.wait_for_sent(self.address, self.seen + expect, timeout=timeout)
        got = self.fake.sent_to(self.address)
        fresh = got[self.seen :]
        self.seen = len(got)
        return fresh

    def say(self, text: str, *, expect: int = 1) -> list[M]:
        self._push_text(text)
        return self._new(expect)

    def press(self, title: str, *, expect: int = 1) -> list[M]:
        self._press(title)
        return self._new(expect)

    def settle(self, wait: float = 1.0) -> list[M]:
        time.sleep(wait)
        fresh = self.fake.sent_to(self.address)[self.seen :]
        self.seen += len(fresh)
        return fresh


def texts(messages: list[M]) -> str:
    return "\n".join(m.text for m in messages)


def ref_in(messages: list[M]) -> str:
    found = REF.search(texts(messages))
    assert found, texts(messages)
    return found.group(0)


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """What `probe` returns once it is truthy; fails with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (got := probe()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return got


def handled_campaign_send(stack: Stack, customer_key: str) -> CampaignSend | None:
    """The customer's campaign ask once the outbox handled it (sent, skipped, failed)."""
    with session_scope(stack.db_url) as session:
        row = session.scalar(select(CampaignSend).where(CampaignSend.customer_key == customer_key))
        if row is None or row.status in ("pending", "sending"):
            return None
        session.expunge(row)
        return row


def found_everywhere(stack: Stack, *needles: str) -> list[tuple[str, str]]:
    """Where the database still holds any of `needles` (address, key, what was said)."""
    engine = make_engine(stack.db_url)
    try:
        with engine.connect() as conn:
            return search_everywhere(conn, needles)
    finally:
        engine.dispose()


def spooled(stack: Stack, channel: str) -> list[Path]:
    """The webhooks the channel's process kept but has not processed (after a second)."""
    spool = Path(stack.workdir) / "data" / "spool" / channel
    time.sleep(1.0)
    return list(spool.glob("*.json")) if spool.exists() else []
