"""The background deliverer: sends outbox events to webhook endpoints and Slack.

It runs as an asyncio task in the dashboard process (`earshot web`, started by
`earshot run`), never in the bot's: the bot only writes events to the database. The
database work runs in worker threads, the HTTP calls on one httpx.AsyncClient with at
most `webhook_concurrency` in flight, so the event loop stays responsive while it
delivers (scripts/bench_webhooks.py measures both).

A round: make the deliveries of new events (`deliveries.dispatch`), claim the due ones,
send each (signed), record each attempt with its outcome and next try.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import httpx
from sqlalchemy.orm import Session, sessionmaker

from earshot.integrations import deliveries, slack
from earshot.integrations.deliveries import Job, Result
from earshot.integrations.events import emit
from earshot.integrations.signing import SIGNATURE_HEADER, sign
from earshot.settings import Settings
from earshot.storage.models import IntegrationEvent, utcnow

log = logging.getLogger("earshot.integrations")
T = TypeVar("T")
USER_AGENT = "Earshot-Webhooks/1"
# 408 Request Timeout and 429 Too Many Requests are worth another try; other 4xx are not.
RETRY_4XX = frozenset({408, 429})


def with_links(value: Any, base_url: str) -> Any:
    """A copy of a payload with each item's dashboard `url` beside its `ref`."""
    if isinstance(value, dict):
        out = {k: with_links(v, base_url) for k, v in value.items()}
        if isinstance(value.get("ref"), str) and "url" not in value:
            out["url"] = f"{base_url}/items/{value['ref']}"
        return out
    if isinstance(value, list):
        return [with_links(v, base_url) for v in value]
    return value


def webhook_body(job: Job, base_url: str) -> bytes:
    """The JSON a webhook endpoint receives."""
    doc = {
        "id": f"evt_{job.event_id}",
        "type": job.kind,
        "created_at": job.event_at.astimezone(timezone.utc).isoformat(),
        "data": with_links(job.payload, base_url),
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def digest_week(now: datetime, settings: Settings) -> tuple[str, datetime] | None:
    """(ISO week key, when this week's digest is due) or None when the digest is off."""
    if not settings.slack_digest_weekday:
        return None
    year, week, weekday = now.isocalendar()
    day = now.date() + timedelta(days=settings.slack_digest_weekday - weekday)
    due = datetime(day.year, day.month, day.day, settings.slack_digest_hour, tzinfo=timezone.utc)
    return f"{year}-W{week:02d}", due


def schedule_digest(
    session: Session, *, settings: Settings, now: datetime
) -> IntegrationEvent | None:
    """Emit this week's digest.weekly event once it is due (once per ISO week)."""
    found = digest_week(now, settings)
    if found is None or now < found[1]:
        return None
    week, due = found
    payload = {"since": (due - timedelta(days=7)).isoformat(), "until": due.isoformat()}
    return emit(session, kind="digest.weekly", payload=payload, key=f"digest.weekly:{week}")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


class Deliverer:
    """Delivers due events; `run` until stopped, or `tick` once (tests, benchmarks)."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        http: httpx.AsyncClient | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.base_url = settings.dashboard_base
        self.environ = os.environ if environ is None else environ
        self.http = http or httpx.AsyncClient(
            timeout=settings.webhook_timeout_s,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=settings.webhook_concurrency),
            headers={"User-Agent": USER_AGENT},
        )
        self._own_http = http is None
        self._slack: Any = None
        # Claimed work waits at most two sends' time for a slot, then its own send.
        self.lease = timedelta(seconds=3 * settings.webhook_timeout_s + 60)
        self.in_flight: set[asyncio.Task[Result]] = set()
        self.sent = 0
        self._last_housekeeping = 0.0

    # --- database, in worker threads ---------------------------------------------------

    async def _db(self, fn: Callable[[Session], T]) -> T:
        def run() -> T:
            with self.sessions() as session:
                try:
                    out = fn(session)
                    session.commit()
                    return out
                except BaseException:
                    session.rollback()
                    raise

        return await asyncio.to_thread(run)

    def _claim(self, session: Session, limit: int) -> list[Job]:
        now = utcnow()
        deliveries.dispatch(session, settings=self.settings, now=now)
        jobs = deliveries.claim_due(session, now=now, limit=limit, lease=self.lease)
        return [self._prepare(session, job) for job in jobs]

    def _prepare(self, session: Session, job: Job) -> Job:
        """What the sender needs that takes the database (the digest) or CPU (JSON)."""
        if job.target == deliveries.SLACK:
            if job.kind == "digest.weekly":
                message = self._digest(session, job.payload)
            elif job.kind == "theme.emerging":
                message = slack.theme_message(job.payload, self.base_url)
            else:
                message = slack.item_message(job.kind, job.payload, self.base_url)
            job.extra["message"] = message
        else:
            job.extra["body"] = webhook_body(job, self.base_url)
        return job

    def _digest(self, session: Session, payload: dict[str, Any]) -> slack.Message:
        from earshot.insights.digest import build_digest

        names = {p.key: p.name for p in self.settings.products}
        d = build_digest(
            session,
            since=datetime.fromisoformat(payload["since"]),
            until=datetime.fromisoformat(payload["until"]),
            catalogue_names=names,
        )
        return slack.digest_message(d, self.base_url)

    # --- sending -------------------------------------------------------------------------

    async def send(self, job: Job) -> Result:
        """One attempt of one delivery; never raises."""
        start = time.perf_counter()
        try:
            if job.target == deliveries.SLACK:
                result = await self._send_slack(job)
            else:
                result = await self._send_webhook(job)
        except Exception as exc:  # a bug must not stop the deliverer; retried later
            log.exception("delivery %s failed unexpectedly", job.delivery_id)
            result = Result(
                job.delivery_id, job.attempt, "retry", error=f"{type(exc).__name__}: {exc}"
            )
        ms = (time.perf_counter() - start) * 1000
        return Result(**{**result.__dict__, "duration_ms": ms})

    async def _send_webhook(self, job: Job) -> Result:
        endpoint = next(
            (w for w in self.settings.webhooks if f"webhook:{w.name}" == job.target), None
        )
        if endpoint is None:
            return Result(
                job.delivery_id, job.attempt, "failed", error="endpoint no longer configured"
            )
        secret = self.environ.get(endpoint.secret_env, "")
        if not secret:
            return Result(
                job.delivery_id, job.attempt, "retry", error=f"{endpoint.secret_env} is not set"
            )
        body: bytes = job.extra["body"]
        headers = {
            "Content-Type": "application/json",
            "X-Earshot-Event": job.kind,
            "X-Earshot-Delivery": str(job.delivery_id),
            "X-Earshot-Attempt": str(job.attempt),
            SIGNATURE_HEADER: sign(secret, body),
        }
        try:
            response = await self.http.post(endpoint.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Result(job.delivery_id, job.attempt, "retry", error="timed out")
        except httpx.TransportError as exc:
            return Result(job.delivery_id, job.attempt, "retry", error=f"connection failed: {exc}")
        code = response.status_code
        if 200 <= code < 300:
            return Result(job.delivery_id, job.attempt, "delivered", code)
        error = f"HTTP {code}: {response.text[:200]}"
        if code >= 500 or code in RETRY_4XX:
            return Result(
                job.delivery_id,
                job.attempt,
                "retry",
                code,
                error=error,
                retry_after_s=_retry_after(response),
            )
        return Result(job.delivery_id, job.attempt, "failed", code, error=error)

    def slack_client(self) -> Any:
        """slack-sdk's AsyncWebClient for SLACK_BOT_TOKEN and SLACK_API_BASE_URL."""
        if self._slack is None:
            from slack_sdk.web.async_client import AsyncWebClient

            token = self.settings.slack_bot_token
            base = self.settings.slack_api_base_url
            self._slack = AsyncWebClient(
                token=token.get_secret_value() if token else None,
                base_url=base if base.endswith("/") else base + "/",
                timeout=int(self.settings.webhook_timeout_s),
            )
        return self._slack

    async def _send_slack(self, job: Job) -> Result:
        import aiohttp
        from slack_sdk.errors import SlackApiError

        try:
            await slack.post(self.slack_client(), channel=job.url, message=job.extra["message"])
        except SlackApiError as exc:
            outcome, code, error, wait = slack.classify_error(exc)
            return Result(
                job.delivery_id, job.attempt, outcome, code, error=error, retry_after_s=wait
            )
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return Result(
                job.delivery_id, job.attempt, "retry", error=f"connection failed: {exc!r}"
            )
        return Result(job.delivery_id, job.attempt, "delivered", 200)

    # --- rounds --------------------------------------------------------------------------

    async def tick(self) -> list[Result]:
        """One round: dispatch, claim what is due, send it all, record the attempts."""
        limit = self.settings.webhook_concurrency * 4
        jobs = await self._db(lambda s: self._claim(s, limit))
        sem = asyncio.Semaphore(self.settings.webhook_concurrency)

        async def one(job: Job) -> Result:
            async with sem:
                return await self.send(job)

        results = list(await asyncio.gather(*(one(j) for j in jobs)))
        if results:
            await self._record(results)
        return results

    async def _record(self, results: list[Result]) -> None:
        await self._db(
            lambda s: deliveries.record(s, results=results, settings=self.settings, now=utcnow())
        )
        self.sent += len(results)
        for r in results:
            if r.outcome != "delivered":
                log.info(
                    "delivery %s attempt %s: %s %s", r.delivery_id, r.attempt, r.outcome, r.error
                )

    async def _housekeeping(self) -> None:
        """Once a minute: this week's Slack digest when due, and the old log purged."""
        if time.monotonic() - self._last_housekeeping < 60:
            return
        self._last_housekeeping = time.monotonic()
        now = utcnow()
        cutoff = now - timedelta(days=self.settings.webhook_log_days)
        slack_on = any(t.name == deliveries.SLACK for t in deliveries.targets(self.settings))

        def work(session: Session) -> None:
            if slack_on:
                schedule_digest(session, settings=self.settings, now=now)
            deliveries.purge(session, before=cutoff)

        await self._db(work)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set. Every `webhook_poll_s` one database round trip
        records the finished attempts and claims due work, up to twice
        `webhook_concurrency` ahead; a semaphore keeps `webhook_concurrency` sends in
        flight, so a freed slot starts the next send without waiting for the database.
        Sooner than the poll when a full batch was claimed (more is waiting)."""
        poll = self.settings.webhook_poll_s
        sem = asyncio.Semaphore(self.settings.webhook_concurrency)
        ahead = 2 * self.settings.webhook_concurrency
        done: list[Result] = []

        async def limited(job: Job) -> Result:
            async with sem:
                return await self.send(job)

        def finished(task: asyncio.Task[Result]) -> None:
            self.in_flight.discard(task)
            if not task.cancelled():
                done.append(task.result())

        while not stop.is_set():
            busy = False
            try:
                await self._housekeeping()
                batch, done[:] = list(done), []
                free = ahead - len(self.in_flight)
                jobs = await self._db(functools.partial(self._cycle, results=batch, limit=free))
                self.sent += len(batch)
                for job in jobs:
                    task = asyncio.create_task(limited(job))
                    self.in_flight.add(task)
                    task.add_done_callback(finished)
                busy = bool(jobs) and len(jobs) == free
            except Exception:  # e.g. the database is down: try again next round
                log.exception("deliverer round failed; retrying")
            if busy and len(self.in_flight) < ahead:
                continue
            try:
                await asyncio.wait_for(stop.wait(), poll)
            except asyncio.TimeoutError:
                pass
        if self.in_flight:
            await asyncio.wait(self.in_flight, timeout=2 * self.settings.webhook_timeout_s)
        if done:
            await self._record(list(done))

    def _cycle(self, session: Session, *, results: list[Result], limit: int) -> list[Job]:
        """One database round trip: record `results`, then claim up to `limit` jobs."""
        if results:
            deliveries.record(session, results=results, settings=self.settings, now=utcnow())
            for r in results:
                if r.outcome != "delivered":
                    log.info(
                        "delivery %s attempt %s: %s %s",
                        r.delivery_id,
                        r.attempt,
                        r.outcome,
                        r.error,
                    )
        return self._claim(session, limit) if limit > 0 else []

    async def aclose(self) -> None:
        """Close the HTTP clients this deliverer made."""
        if self._own_http:
            await self.http.aclose()
        if self._slack is not None and getattr(self._slack, "session", None):
            await self._slack.session.close()
