"""PTB's rate limiter, with Telegram's message limits applied to calls that send messages."""

from __future__ import annotations

from typing import Any

from telegram.ext import AIORateLimiter

# Bot API methods that put a new message in a chat. Telegram's documented limits
# (about 30 messages/s overall, 20/min per group) are limits on these.
SENDING_PREFIXES = ("send", "copyMessage", "forwardMessage")


def sends_message(endpoint: str) -> bool:
    """The Bot API method puts a new message in a chat (sendChatAction does not)."""
    return endpoint.startswith(SENDING_PREFIXES) and endpoint != "sendChatAction"


class MessageRateLimiter(AIORateLimiter):
    """AIORateLimiter whose overall and group buckets count sent messages only.

    Stock AIORateLimiter counts every call that carries a chat id, so removing a pressed
    keyboard (editMessageText) or showing "typing…" used a send slot: with ~0.7 edits per
    turn that cut the bot's ceiling from 30 to ~16 replies/s. Edits and chat actions still
    wait while Telegram has asked us to back off, and a 429 on them is retried like any
    other call (``max_retries``).
    """

    async def process_request(
        self,
        callback: Any,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        """Hide the chat id from the buckets when the call sends no message."""
        if not sends_message(endpoint) and "chat_id" in data:
            # `data` only steers the buckets: the request itself travels in `args`.
            data = {k: v for k, v in data.items() if k != "chat_id"}
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )
