"""`Channel.send` for WhatsApp: the 24-hour customer-service window, approved templates
outside it, and the record of proactive messages whose delivery statuses follow.

Replies (Purpose.REPLY) always go: they answer a message the customer just sent. A
feedback ask, campaign question or status notice goes as typed only while the customer's
window is open (they wrote in the last 24 hours); after that WhatsApp accepts only an
approved template, named per language in config.yml (`whatsapp.templates`). Without one
the message is not sent: `Sent(skipped="window_closed")`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from earshot.conversations import whatsapp as wa_queries
from earshot.gateway.model import Purpose, Reply, Sent
from earshot.privacy.identity import user_key
from earshot.settings import Settings
from earshot.storage.db import session_scope
from whatsapp.api import CloudApi, SendFailed
from whatsapp.render import Out, layout_all

log = logging.getLogger("earshot.whatsapp")
TEMPLATE_KEYS = {
    Purpose.FEEDBACK_ASK: "feedback_ask",
    Purpose.CAMPAIGN: "campaign",
    Purpose.NOTICE: "notice",
}


class WhatsAppChannel:
    """What the gateway sends WhatsApp messages through."""

    name = "whatsapp"
    proactive = True  # the business may write later (inside the window, or by template)

    def __init__(self, settings: Settings, api: CloudApi) -> None:
        self.settings, self.api = settings, api
        self._secret = settings.earshot_secret.get_secret_value()

    def key(self, wa_id: str) -> str:
        """The customer's pseudonymous key for a WhatsApp id (the phone number)."""
        return user_key(self._secret, "whatsapp", wa_id)

    async def _db(self, fn: Any, /, **kwargs: Any) -> Any:
        def run() -> Any:
            with session_scope(self.settings.db_url) as session:
                return fn(session, **kwargs)

        return await asyncio.to_thread(run)

    def template_for(self, purpose: Purpose, language: str) -> tuple[str, str] | None:
        """The approved template (name, language) for a proactive purpose, if configured."""
        names = getattr(self.settings.whatsapp.templates, TEMPLATE_KEYS[purpose])
        for lang in (language, self.settings.default_language):
            if names.get(lang):
                return names[lang], lang
        return None

    async def send(
        self,
        chat_id: str,
        replies: list[Reply],
        *,
        purpose: Purpose,
        language: str,
        ref: str | None = None,
    ) -> Sent:
        """Show the replies; proactive ones honour the window. `ref` (a campaign id or
        feedback reference) is recorded with proactive sends for their delivery statuses."""
        key = self.key(chat_id)
        template = None
        outs = layout_all(replies, language)
        if purpose is not Purpose.REPLY and not await self._db(
            wa_queries.window_open, customer_key=key
        ):
            found = self.template_for(purpose, language)
            if found is None:
                log.info("%s not sent: the customer's window has closed", purpose.value)
                return Sent(skipped="window_closed")
            template = found[0]
            outs = [Out("template", title=found[0], language=found[1])]
        sent = Sent()
        for out in outs:
            try:
                sent.message_ids.append(await self.api.send(chat_id, out))
            except SendFailed as exc:
                log.warning("WhatsApp refused a %s message: %s", purpose.value, exc)
                if exc.code == 131047:  # re-engagement: the window closed meanwhile
                    sent.skipped = "window_closed"
                elif purpose is Purpose.REPLY:  # nothing to record: reported in the log
                    sent.skipped = f"failed_{exc.code}"
                else:  # the outbox records a campaign ask or notice that failed as failed
                    raise
                break
        if purpose is not Purpose.REPLY and sent.message_ids:
            if ref is None:  # the gateway's outreach does not say: the claimed outbox row
                ref = await self._db(wa_queries.proactive_ref, customer_key=key, kind=purpose.value)
            await self._db(
                _record, ids=sent.message_ids, key=key, purpose=purpose, ref=ref, template=template
            )
        return sent


def _record(
    session: Any,
    *,
    ids: list[str],
    key: str,
    purpose: Purpose,
    ref: str | None,
    template: str | None,
) -> None:
    for mid in ids:
        wa_queries.record_send(
            session,
            message_id=mid,
            customer_key=key,
            kind=purpose.value,
            ref=ref,
            template=template,
        )
