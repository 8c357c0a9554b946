"""Rasa input channel for Earshot's own front ends (Telegram bot, terminal, web chat).

Rasa's REST channel drops request metadata; this one passes it on, so actions see the
channel, the customer's language and chat type. Replies come back in the HTTP response.
"""

from typing import Any, Dict, Optional, Text

from rasa.core.channels.rest import RestInput
from sanic.request import Request


class EarshotInput(RestInput):
    """POST /webhooks/earshot/webhook {"sender", "message", "metadata"}."""

    @classmethod
    def name(cls) -> Text:
        return "earshot"

    def get_metadata(self, request: Request) -> Optional[Dict[Text, Any]]:
        body = request.json or {}
        metadata = body.get("metadata")
        return metadata if isinstance(metadata, dict) else None
