"""Scale out: two Rasa servers sharing one PostgreSQL tracker store and one Redis lock store.

The topology of docker-compose.yml on loopback ports: two action servers, two Rasa servers
(each with its own action server) on one random-named PostgreSQL database (app data and
Rasa's tracker store) and the machine's Redis as the lock store, under a random key prefix.
Customers talk to Rasa's `earshot` channel directly, as the bot does: each message goes to
the other server than the one before, and some of a customer's messages go to both at
once. The lock store must keep every conversation's turns whole and in order, and every
feedback flow must end in exactly one stored row.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis
from sqlalchemy import func, select

from earshot.cli.supervise import Part, build_parts, wait_healthy
from earshot.settings import Settings, load_settings
from earshot.storage.db import engine_for, migrate, session_scope
from earshot.storage.models import Feedback
from testkit.stack import MODEL, stack_env
from testkit.telegram_api import FakeBotAPI
from tests.conftest import _pg_available, create_pg_database, drop_pg_database
from tests.e2e.helpers import REF

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

REDIS_URL = os.environ.get("EARSHOT_TEST_REDIS", "redis://127.0.0.1:6379/0")
SERVERS = 2
CUSTOMERS = 8
STARTUP_TIMEOUT_S = 300.0
TURN_TIMEOUT_S = 180.0  # a loaded 2-core machine; never a timing assertion
META = {"channel": "telegram", "language_code": "en", "language": "en", "chat_type": "private"}
WORDS = ("amber", "birch", "cedar", "dune", "ember", "fjord", "glade", "heath", "iris", "juniper")


@dataclass
class Cluster:
    rasa_urls: list[str]
    token: str
    db_url: str
    parts: list[Part]

    @property
    def log(self) -> str:
        """Each part's errors (Rasa's log is mostly start-up warnings), and where its log is."""
        out = []
        for part in self.parts:
            lines = part.tail(400).splitlines()
            errors = [line for line in lines if "ERROR" in line or "Error" in line]
            out.append(f"--- {part.name} ({part.log_path}) ---\n" + "\n".join(errors[-15:]))
        return "\n".join(out)


def _redis_available() -> bool:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def _settings(env: dict[str, str]) -> Settings:
    """Settings as the started processes will read them from `env`."""
    old = dict(os.environ)
    os.environ.update(env)
    try:
        return load_settings()
    finally:
        os.environ.clear()
        os.environ.update(old)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    missing = [
        name
        for name, up in (("PostgreSQL", _pg_available()), ("Redis", _redis_available()))
        if not up
    ]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{' and '.join(missing)} required in CI (127.0.0.1)")
        pytest.skip(f"{' and '.join(missing)} not running on 127.0.0.1")
    if not MODEL.exists():
        raise RuntimeError(f"no trained model at {MODEL}: run `make train` (make test does)")
    workdir = tmp_path_factory.mktemp("scale-out")
    # Letters and digits only: Rasa's Redis lock store refuses other prefixes.
    prefix = f"earshotscale{uuid.uuid4().hex[:12]}"
    db_url = create_pg_database()
    try:
        migrate(db_url)
        with FakeBotAPI() as fake:  # stack_env wants one; no bot runs in this test
            parts: list[Part] = []
            urls: list[str] = []
            for i in range(SERVERS):
                node = workdir / f"node{i}"
                node.mkdir()
                env = stack_env(fake, node, db_url, REDIS_URL=REDIS_URL)
                settings = _settings(env)
                log_dir = node / "logs"
                log_dir.mkdir()
                actions, rasa, _web = build_parts(
                    settings,
                    rasa_port=urlsplit(settings.rasa_url).port or 5005,
                    log_dir=log_dir,
                    base_env=env,
                    lock_key_prefix=prefix,
                )
                parts += [actions, rasa]
                urls.append(settings.rasa_url)
                token = settings.rasa_token.get_secret_value()
            try:
                for part in parts:
                    part.start()
                wait_healthy(parts, STARTUP_TIMEOUT_S)
                yield Cluster(urls, token, db_url, parts)
            finally:
                for part in reversed(parts):
                    part.stop()
    finally:
        engine_for.cache_clear()
        drop_pg_database(db_url)
        _forget_locks(prefix)


def _forget_locks(prefix: str) -> None:
    """Remove whatever this run left under its key prefix (normally nothing)."""
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
    except redis.RedisError:
        pass


# --------------------------------------------------------------------------- conversations


@dataclass
class Turn:
    text: str
    server: int
    status: int
    replies: list[dict[str, Any]]

    @property
    def texts(self) -> list[str | None]:
        return [m.get("text") for m in self.replies]

    def joined(self) -> str:
        return "\n".join(t or "" for t in self.texts)


@dataclass
class Talker:
    """One customer talking to the Rasa servers, as the bot would on their behalf."""

    http: httpx.AsyncClient
    cluster: Cluster
    index: int
    sender: str = ""
    sent: int = 0
    # What was said, in order; turns sent at the same time share a group.
    groups: list[list[Turn]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sender = f"scale-{uuid.uuid4().hex[:16]}-{self.index}"

    def _next_server(self) -> int:
        server = (self.index + self.sent) % SERVERS  # the other server each time
        self.sent += 1
        return server

    async def _post(self, text: str, server: int) -> Turn:
        url = self.cluster.rasa_urls[server] + "/webhooks/earshot/webhook"
        body = {"sender": self.sender, "message": text, "metadata": META}
        try:
            resp = await self.http.post(url, json=body)
        except httpx.HTTPError as exc:  # e.g. a turn waiting forever for the conversation lock
            raise AssertionError(
                f"{self.sender} {text!r} on server {server}: no answer ({exc!r})"
            ) from None
        data = resp.json() if resp.status_code == 200 else []
        turn = Turn(text, server, resp.status_code, data if isinstance(data, list) else [])
        assert turn.status == 200, f"{self.sender} {text!r} on server {server}: {resp.text}"
        assert turn.replies, f"{self.sender} {text!r} on server {server}: no reply"
        return turn

    async def say(self, text: str) -> Turn:
        turn = await self._post(text, self._next_server())
        self.groups.append([turn])
        return turn

    async def press(self, title: str, on: Turn) -> Turn:
        """Press the button titled `title` of the replies `on`: send its payload."""
        payloads = [b["payload"] for m in on.replies for b in m.get("buttons") or []]
        titles = [b["title"] for m in on.replies for b in m.get("buttons") or []]
        assert title in titles, f"{self.sender}: no {title!r} button in {on.replies}"
        return await self.say(payloads[titles.index(title)])

    async def at_once(self, *texts: str) -> list[Turn]:
        """Send several messages at the same time, one to each server."""
        turns = await asyncio.gather(
            *(self._post(text, i % SERVERS) for i, text in enumerate(texts))
        )
        self.groups.append(list(turns))
        return list(turns)


@dataclass(frozen=True)
class Expected:
    sender: str
    type: str
    product: str | None
    text: str
    ref: str


async def feedback_customer(talker: Talker) -> Expected:
    """Greet twice at once, ask a service question, give feedback, look it up."""
    i = talker.index
    word = WORDS[i % len(WORDS)]
    greeting, helped = await talker.at_once("/start", "/help")
    assert "Lumen Home assistant" in greeting.joined(), greeting.replies
    assert "/privacy" in helped.joined(), helped.replies

    answer = await talker.say("How do I set up my Lumen Hub?")
    assert len(answer.replies) >= 2, answer.replies  # the answer, then "did this help?"

    product = await talker.say("/give_feedback")
    assert "Which product" in product.joined(), product.replies
    if i % 2 == 0:  # other, about no product: type, text, importance, consent, confirm
        text = f"Please print the {word} colour on the box so it is easy to find"
        kind = await talker.press("Not about a product", product)
        await talker.press("Other", kind)
        importance = await talker.say(text)
        consent = await talker.press("Skip", importance)
        expected_type, expected_product = "other", None
    else:  # praise of a product: type, text, consent, confirm (no importance)
        text = f"The doorbell chime with the {word} melody sounds lovely"
        kind = await talker.press("Lumen Doorbell", product)
        await talker.press("Praise", kind)
        consent = await talker.say(text)
        expected_type, expected_product = "praise", "doorbell"
    assert "May our product team contact you" in consent.joined(), consent.replies
    summary = await talker.press("No", consent)
    done = await talker.press("Confirm", summary)
    assert "Thank you" in done.joined(), done.replies
    found = REF.search(done.joined())
    assert found, done.replies
    ref = found.group(0)

    mine, _privacy = await talker.at_once("/my_feedback", "/privacy_policy")
    assert ref in mine.joined(), mine.replies
    return Expected(talker.sender, expected_type, expected_product, text, ref)


# --------------------------------------------------------------------------- the tracker


def conversation(events: list[dict[str, Any]]) -> list[tuple[str, list[str | None], str | None]]:
    """The tracker's turns: (user text, bot texts, last action) from each user event to
    the next; a turn of another message in between would show up here."""
    turns: list[tuple[str, list[str | None], str | None]] = []
    for event in events:
        kind = event.get("event")
        if kind == "user":
            turns.append((str(event.get("text")), [], None))
        elif turns and kind == "bot":
            turns[-1][1].append(event.get("text"))
        elif turns and kind == "action":
            text, bots, _ = turns[-1]
            turns[-1] = (text, bots, event.get("name"))
    return turns


def check_conversation(talker: Talker, events: list[dict[str, Any]]) -> None:
    stored = conversation(events)
    said = Counter(t.text for group in talker.groups for t in group)
    kept = Counter(t[0] for t in stored)
    assert kept == said, (
        f"{talker.sender}: every message exactly once; lost {list((said - kept).elements())}, "
        f"extra {list((kept - said).elements())}"
    )
    pos = 0
    for group in talker.groups:
        window = stored[pos : pos + len(group)]
        pos += len(group)
        key = [(t.text, t.texts) for t in group]
        got = [(text, bots) for text, bots, _ in window]
        # Sequential turns in the order sent; simultaneous ones in either order, but each
        # whole: its user event, then only its own replies.
        assert sorted(got, key=repr) == sorted(key, key=repr), (
            f"{talker.sender}: turns interleaved or out of order\nexpected {key}\ngot {got}"
        )
        for text, _bots, last_action in window:
            assert last_action == "action_listen", f"{talker.sender} {text!r}: turn not complete"


async def tracker_events(
    http: httpx.AsyncClient, cluster: Cluster, server: int, sender: str
) -> list[dict[str, Any]]:
    url = f"{cluster.rasa_urls[server]}/conversations/{sender}/tracker"
    resp = await http.get(
        url, params={"include_events": "ALL"}, headers={"X-Earshot-Token": cluster.token}
    )
    assert resp.status_code == 200, resp.text
    events = resp.json()["events"]
    assert isinstance(events, list)
    return events


# --------------------------------------------------------------------------- the test


async def test_customers_spread_over_two_rasa_servers_lose_and_mix_nothing(
    cluster: Cluster,
) -> None:
    limits = httpx.Limits(max_connections=4 * CUSTOMERS, max_keepalive_connections=4 * CUSTOMERS)
    timeout = httpx.Timeout(TURN_TIMEOUT_S, connect=10.0)
    headers = {"X-Earshot-Token": cluster.token}  # Rasa's channel checks the shared secret
    async with httpx.AsyncClient(timeout=timeout, limits=limits, headers=headers) as http:
        talkers = [Talker(http, cluster, i) for i in range(CUSTOMERS)]
        results = await asyncio.gather(
            *(feedback_customer(t) for t in talkers), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise AssertionError(f"{len(failed)} customer(s) failed: {failed[0]!r}\n{cluster.log}")
        expected = [r for r in results if isinstance(r, Expected)]

        servers_used = {t.server for talker in talkers for g in talker.groups for t in g}
        assert servers_used == set(range(SERVERS))

        for talker in talkers:
            # Both servers read the same shared tracker store.
            first = await tracker_events(http, cluster, 0, talker.sender)
            second = await tracker_events(http, cluster, 1, talker.sender)
            assert first == second, f"{talker.sender}: the servers disagree on the tracker"
            check_conversation(talker, first)

    with session_scope(cluster.db_url) as session:
        for want in expected:
            rows = session.scalars(
                select(Feedback).where(Feedback.customer_key == want.sender)
            ).all()
            assert len(rows) == 1, f"{want.sender}: {len(rows)} feedback rows, want 1"
            row = rows[0]
            assert (row.ref, row.type, row.product, row.description) == (
                want.ref,
                want.type,
                want.product,
                want.text,
            )
            assert row.complete and not row.consent and row.source == "command"
        total = session.scalar(select(func.count()).select_from(Feedback))
    assert total == CUSTOMERS, f"{total} feedback rows for {CUSTOMERS} flows"
