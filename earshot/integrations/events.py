"""The integrations outbox: `emit` records an event in the caller's transaction.

Whatever changes an item calls `emit` in the same Session, before the commit, so the
change and its event land together (a rollback leaves neither). The deliverer
(`earshot.integrations.deliverer`) later sends each event to the webhook endpoints that
subscribe to its kind, and important ones to Slack.

Event kinds and their `data` (every item is `item_payload`: reference, never customer
keys or chat ids; the deliverer adds the item's dashboard `url`):

- item.created: {"item": item}
- item.status_changed: {"item": item, "from": old, "to": new, "by": team member or tracker}
- item.merged: {"item": the duplicate, "into": the kept item, "into_previous_supporters":
  n, "by": team member}
- item.supported: {"item": item, "previous_supporters": n}
- theme.emerging: {"theme": {"id": str, "label": str, "language": str, "size": int,
  "supporters": int, "products": [str], "types": {type: n}, "sentiment": float | None},
  "window": {"recent_weeks": int, "recent": int, "baseline_weeks": int, "baseline": float},
  "items": [ref, ...]}; emit it with key=f"theme.emerging:{theme_id}:{iso_week}" so a
  theme is announced once a week at most.
- digest.weekly (Slack only): {"since": iso, "until": iso}
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from earshot.privacy.redaction import redact
from earshot.settings import WEBHOOK_EVENTS
from earshot.storage.db import insert_ignoring_conflicts
from earshot.storage.models import Feedback, IntegrationEvent, utcnow

KINDS: tuple[str, ...] = (*WEBHOOK_EVENTS, "digest.weekly")
# Never in a payload: who the customer is or how to reach them.
_PRIVATE = frozenset({"customer_key", "chat_id", "user_key", "contact"})


class EventError(ValueError):
    """An event that cannot be recorded (unknown kind, private field)."""


def _check_private(value: Any, path: str = "data") -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if k in _PRIVATE:
                raise EventError(f"{path}.{k}: customer identifiers never go into events")
            _check_private(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_private(v, f"{path}[{i}]")


def emit(
    session: Session, *, kind: str, payload: dict[str, Any], key: str | None = None
) -> IntegrationEvent | None:
    """Record an event of `kind` with `payload` in the caller's transaction (no commit).

    `key` makes the event once-only: a second event with the same key is not recorded
    and None is returned. The payload must be JSON-serialisable and hold no customer
    identifiers (EventError otherwise).
    """
    if kind not in KINDS:
        raise EventError(f"unknown event kind {kind!r}; use one of {', '.join(KINDS)}")
    _check_private(payload)
    item = payload.get("item")
    ref = item.get("ref") if isinstance(item, dict) else None
    if key is not None:
        stmt = (
            insert_ignoring_conflicts(session, IntegrationEvent)
            .values(kind=kind, key=key, ref=ref, payload=payload, created_at=utcnow())
            .returning(IntegrationEvent.id)
        )
        new_id = session.scalar(stmt)
        return None if new_id is None else session.get(IntegrationEvent, new_id)
    event = IntegrationEvent(kind=kind, ref=ref, payload=payload, created_at=utcnow())
    session.add(event)
    return event


def item_payload(item: Feedback) -> dict[str, Any]:
    """What an event says about an item: its reference and redacted text, no identities."""
    return {
        "ref": item.ref,
        "type": item.type,
        "category": item.category,
        "product": item.product,
        "language": item.language,
        "status": item.status,
        "supporters": item.supporters,
        "sentiment": item.sentiment,
        "text": redact(item.description or ""),
        "benefit": redact(item.benefit) if item.benefit else None,
        "channel": item.channel,
        "source": item.source,
        "created_at": item.created_at.isoformat() if item.created_at else None,
        "tags": list(item.tags or []),
    }
