"""PTB's rate limiter, with Telegram's message limits applied to calls that send messages,
and optionally paid broadcasts for the messages over the free limit."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import Forbidden, RetryAfter, TelegramError, TimedOut
from telegram.ext import AIORateLimiter

log = logging.getLogger("earshot.bot")

# Bot API methods that put a new message in a chat. Telegram's documented limits
# (about 30 messages/s overall, 20/min per group) are limits on these.
SENDING_PREFIXES = ("send", "copyMessage", "forwardMessage")
PAID_BROADCAST = "allow_paid_broadcast"
# Telegram charges 0.1 Stars per paid broadcast message (Bot API 7.11).
STARS_PER_PAID_MESSAGE = 0.1
# After Telegram refuses a paid broadcast (an empty Stars balance, most likely), answers
# wait for free slots this long before paying is tried again.
PAID_PAUSE_S = 600.0


# Set while the bot answers a customer who is waiting for it: only those messages may be
# paid for. Campaigns, reminders and replays of kept messages wait for free slots.
_ANSWERING: ContextVar[bool] = ContextVar("earshot_answering", default=False)


@contextmanager
def answering() -> Iterator[None]:
    """Messages sent inside this block answer a waiting customer (paid overflow applies)."""
    token = _ANSWERING.set(True)
    try:
        yield
    finally:
        _ANSWERING.reset(token)


def sends_message(endpoint: str) -> bool:
    """The Bot API method puts a new message in a chat (sendChatAction does not)."""
    return endpoint.startswith(SENDING_PREFIXES) and endpoint != "sendChatAction"


class MessageRateLimiter(AIORateLimiter):
    """AIORateLimiter whose overall bucket counts sent messages only, and which can send
    the messages over that bucket as paid broadcasts instead of holding them.

    Stock AIORateLimiter counts every call that carries a chat id, so removing a pressed
    keyboard (editMessageText) or showing "typing…" used a send slot: with ~0.7 edits per
    turn that cut the bot's ceiling from 30 to ~16 replies/s. Edits and chat actions still
    wait while Telegram has asked us to back off, and a 429 on them is retried like any
    other call (``max_retries``).

    With ``paid_overflow``, a message that answers a waiting customer (`answering`) and
    finds the free bucket empty is sent at once with ``allow_paid_broadcast`` (up to
    1000/s, PTB's own bucket for them; Telegram takes 0.1 Stars from the bot's balance for
    each). Under the free limit nothing is paid, and nothing else is ever paid for. If
    Telegram refuses a paid message, it is sent free (it waits for a slot, as without
    paid overflow) and paying pauses for ``PAID_PAUSE_S``.
    """

    def __init__(
        self,
        overall_max_rate: float = 30,
        overall_time_period: float = 1,
        *,
        paid_overflow: bool = False,
        max_retries: int = 0,
        **kwargs: Any,
    ) -> None:
        # PTB's overall bucket would count every call with a chat id: ours counts sends.
        super().__init__(overall_max_rate=0, max_retries=max_retries, **kwargs)
        self._free: AsyncLimiter | None = None
        if overall_max_rate and overall_time_period:
            # A bucket must hold one whole message: 0.5/s is one per 2 s, not half of one
            # per second (which aiolimiter refuses to acquire).
            per = overall_time_period / min(overall_max_rate, 1.0)
            self._free = AsyncLimiter(max(overall_max_rate, 1.0), per)
        self.paid_overflow = paid_overflow
        self.paid_messages = 0  # sent as paid broadcasts since start
        self._paid_logged = (0, time.monotonic())
        self._paid_paused_until = 0.0

    @property
    def messages_per_second(self) -> float | None:
        """The free sending rate this limiter keeps to (None: unlimited)."""
        return self._free.max_rate / self._free.time_period if self._free else None

    async def process_request(
        self,
        callback: Any,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        """Count sends against the free bucket, or pay for them when it is empty."""
        if not sends_message(endpoint):
            if "chat_id" in data:  # keeps edits out of the per-group buckets too
                # `data` only steers the buckets: the request itself travels in `args`.
                data = {k: v for k, v in data.items() if k != "chat_id"}
            return await super().process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )
        if self._free is None or data.get(PAID_BROADCAST):
            return await super().process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )
        refused: TelegramError | None = None
        if self.may_pay and _ANSWERING.get() and not self._free.has_capacity():
            endpoint_name, params = args
            try:
                result = await super().process_request(
                    callback,
                    (endpoint_name, {**params, PAID_BROADCAST: True}),
                    kwargs,
                    endpoint,
                    {**data, PAID_BROADCAST: True},
                    rate_limit_args,
                )
            except (RetryAfter, TimedOut, Forbidden):
                # Retried as any call is (a timeout may hide a delivered message), or the
                # customer blocked the bot: nothing to do with paying.
                raise
            except TelegramError as exc:
                refused = exc  # send it free, below
            else:
                self._count_paid()
                return result
        async with self._free:
            result = await super().process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )
        if refused is not None:  # the free copy went through: paying was what failed
            self._pause_paying(refused)
        return result

    @property
    def may_pay(self) -> bool:
        """Paid overflow is on and Telegram has not refused a paid message lately."""
        return self.paid_overflow and time.monotonic() >= self._paid_paused_until

    def _pause_paying(self, exc: TelegramError) -> None:
        self._paid_paused_until = time.monotonic() + PAID_PAUSE_S
        log.error(
            "Telegram refused a paid broadcast (%s): answers over the free message limit "
            "wait their turn for the next %.0f minutes. Top up the bot's Stars balance, or "
            "set telegram_paid_overflow: false.",
            exc.message,
            PAID_PAUSE_S / 60,
        )

    def _count_paid(self) -> None:
        """Count a paid message; tell the operator what it costs, at most once a minute."""
        self.paid_messages += 1
        logged, at = self._paid_logged
        now = time.monotonic()
        if now - at >= 60 or logged == 0:
            n = self.paid_messages - logged
            log.warning(
                "over Telegram's free message limit: %d message(s) sent as paid broadcasts "
                "(%.1f Stars) since the last report",
                n,
                n * STARS_PER_PAID_MESSAGE,
            )
            self._paid_logged = (self.paid_messages, now)
