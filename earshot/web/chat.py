"""The web chat: a gateway adapter, the same assistant as on every other channel.

The page posts a message or a pressed button's reference; the gateway answers it (commands,
/deletemydata, language, redaction, handoff) and `WebChannel` collects the replies as the
JSON the page's script shows. Button payloads stay server-side: the page only ever gets
references bound to the visitor, so a visitor cannot post intents of their own making.
"""

from __future__ import annotations

from typing import Any

from earshot.gateway.model import Purpose, Reply, Sent

MAX_MESSAGE = 4000


class WebChannel:
    """The gateway's `Channel` for one /chat/send request: replies become the response."""

    name = "web"
    proactive = False  # the page only hears the answer to its own request
    merge_texts = False  # each of Rasa's messages is a bubble of its own

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def send(
        self, chat_id: str, replies: list[Reply], *, purpose: Purpose, language: str
    ) -> Sent:
        for r in replies:
            buttons = [
                {"title": b.title, "url": b.url} if b.is_link else {"title": b.title, "id": b.ref}
                for b in r.buttons
            ]
            self.messages.append({"text": r.text, "buttons": buttons, "image": r.image})
        return Sent()
