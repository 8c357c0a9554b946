"""Every change Earshot makes to Rasa 3.6's own code, in one place.

`install_patches()` (called when Rasa builds the `earshot` channel, addons/channel.py)
replaces seven Rasa methods. `PATCHES` lists each: what it replaces, what Rasa does there
and what we do instead, and the test that fails when the replacement breaks or drifts
from Rasa's result. `tests/test_layering.py` checks that every test named here exists,
and `tests/rasa_side/patches_check.py` that installing replaces exactly these targets.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hmac
import inspect
import os
from collections.abc import Callable
from typing import Any

import aiohttp

LANGUAGE_ENTITY = "language"
SESSION_MAX_EVENTS_DEFAULT = 200
# The shared secret of Earshot's internal services (front ends -> Rasa -> action server).
TOKEN_HEADER = "X-Earshot-Token"
DEFAULT_TOKEN = "dev-only-rasa-token"  # earshot.settings' default; refused in production

# (Rasa target, what Rasa does -> what we do instead, the test that proves it).
PATCHES = (
    (
        "rasa.core.processor.MessageProcessor.parse_message",
        "Rasa knows nothing of the language the front end chose; the metadata's language "
        "becomes the `language` entity of every message (payloads too), so the `language` "
        "slot picks the response variations.",
        "tests/e2e/test_language.py::test_a_customer_switches_language_mid_conversation",
    ),
    (
        "rasa.core.actions.action.RemoteAction.run",
        "Rasa logs a failed custom action and answers the turn anyway; the failure is "
        "noted for the turn, so the channel answers 503 and the front end keeps the "
        "message and replays it.",
        "tests/chaos/test_chaos.py::test_action_server_killed_mid_flow",
    ),
    (
        "rasa.core.actions.action.RemoteAction._validate_action_result",
        "Rasa recompiles its JSON schema and checks each event against all 23 `oneOf` "
        "branches on every call (over half a turn's CPU); one compiled validator per event "
        "name gives the same verdict.",
        "tests/test_rasa_patches.py::test_action_results_get_the_verdict_of_rasas_full_schema",
    ),
    (
        "rasa.core.processor.MessageProcessor._has_session_expired",
        "Rasa ends a session only after a time of silence, so a returning customer's session "
        "grows forever and is loaded whole every turn; a session past "
        "EARSHOT_SESSION_MAX_EVENTS events also ends at the next message, unless a form or "
        "buttons are waiting for an answer.",
        "tests/e2e/test_long_conversation.py::"
        "test_a_long_conversation_keeps_its_memory_across_session_rollovers",
    ),
    (
        "rasa.core.actions.action.ActionSessionStart._slot_set_events_from_tracker",
        "Rasa carries over every SlotSet of the old session, earlier copies included, so "
        "each session starts longer than the last; we carry each slot's last value once.",
        "tests/e2e/test_long_conversation.py::"
        "test_a_long_conversation_keeps_its_memory_across_session_rollovers",
    ),
    (
        "rasa.shared.core.events.Event.resolve_by_type",
        "Rasa walks every Event subclass for every event it loads (about 5% of a turn's "
        "CPU); each type name is looked up once and remembered.",
        "tests/test_rasa_patches.py::test_every_event_type_resolves_as_rasa_resolves_it",
    ),
    (
        "rasa.server.requires_auth",
        "Rasa takes its API token in a `?token=` query string (which lands in access logs) "
        "or an `--auth-token` process argument (which any local user can read); the token "
        "travels in the X-Earshot-Token header only, from the RASA_TOKEN environment variable.",
        "tests/e2e/test_doors.py::test_rasa_channel_and_api_want_the_secret_in_a_header",
    ),
    (
        "rasa.utils.endpoints.EndpointConfig.session",
        "Rasa opens a new aiohttp session, and TCP connection, for every custom action and "
        "form validation; we lend one pooled keep-alive session per event loop and auth.",
        "tests/test_rasa_patches.py::"
        "test_action_server_calls_reuse_one_connection_with_the_same_answers",
    ),
)


def token_ok(headers: Any) -> bool:
    """The request carries the shared secret (RASA_TOKEN) in the X-Earshot-Token header."""
    expected = os.environ.get("RASA_TOKEN") or DEFAULT_TOKEN
    given = headers.get(TOKEN_HEADER, "")
    return hmac.compare_digest(given.encode(), expected.encode())


def unauthorized() -> Any:
    """Rasa's own 401 shape, naming the header."""
    from sanic import response

    return response.json(
        {"status": "failure", "reason": "NotAuthenticated", "code": 401,
         "message": f"missing or wrong {TOKEN_HEADER} header"},
        status=401,
    )  # fmt: skip


def requires_header_auth(app: Any, token: str | None = None) -> Callable[[Any], Any]:
    """Replaces `rasa.server.requires_auth`: the token travels in a header only."""

    def decorator(f: Any) -> Any:
        @functools.wraps(f)
        async def decorated(request: Any, *args: Any, **kwargs: Any) -> Any:
            if not token_ok(request.headers):
                return unauthorized()
            result = f(request, *args, **kwargs)
            return await result if inspect.isawaitable(result) else result

        return decorated

    return decorator


def session_max_events() -> int:
    """Events after which a session is rolled over (0 disables it)."""
    return int(os.environ.get("EARSHOT_SESSION_MAX_EVENTS", SESSION_MAX_EVENTS_DEFAULT))


def may_roll_over(tracker: Any, limit: int) -> bool:
    """The session is longer than ``limit`` events and nothing is pending an answer.

    A pending answer is an active form or fallback loop, or buttons under the last bot
    message: their rules need the preceding turn, which a new session would not have.
    """
    # len(events) bounds the session's length: skip the walk for short conversations.
    if limit <= 0 or len(tracker.events) <= limit or tracker.active_loop_name:
        return False
    count = 0
    pending: bool | None = None
    for event in reversed(tracker.events):
        kind = getattr(event, "type_name", None)
        if kind == "session_started":
            break
        if pending is None and kind == "bot":
            data = getattr(event, "data", None) or {}
            buttons = [*(data.get("buttons") or []), *(data.get("quick_replies") or [])]
            # Links (buttons whose payload is a URL, earshot.knowledge.kb) wait for nothing.
            pending = any(
                not str(b.get("payload", "")).startswith(("https://", "http://")) for b in buttons
            )
        count += 1
    return count > limit and not pending


def compile_action_result_check(schema: dict[str, Any]) -> Callable[[Any], None]:
    """A validator for Rasa's action response schema that raises jsonschema's
    ValidationError exactly when the full schema would.

    Each event must match exactly one of the schema's `oneOf` branches, and every branch
    fixes `event` to its own constant, so only the branch named by the event can match.
    """
    from jsonschema import ValidationError, validators

    validator_class = validators.validator_for(schema)
    events = (schema.get("properties") or {}).get("events") or {}
    item = events.get("items") or {}
    branches = item.get("oneOf") or []
    names = [((b.get("properties") or {}).get("event") or {}).get("const") for b in branches]
    if not branches or None in names or len(set(names)) != len(names):
        return validator_class(schema).validate  # not the shape this shortcut relies on
    base = {k: v for k, v in item.items() if k != "oneOf"}
    outer_schema = {
        **schema,
        "properties": {**schema["properties"], "events": {**events, "items": base}},
    }
    outer = validator_class(outer_schema)
    per_event = {
        name: validator_class({"allOf": [base, branch]})
        for name, branch in zip(names, branches, strict=False)
    }

    def check(result: Any) -> None:
        outer.validate(result)  # the shape, and what every event needs (an "event" name)
        found = result.get("events") if isinstance(result, dict) else None
        for event in found if isinstance(found, list) else ():
            branch = per_event.get(event["event"])
            if branch is None:
                raise ValidationError(f"{event} is not valid under any of the given schemas")
            branch.validate(event)

    return check


# Pooled connections are dropped after this many idle seconds: before the action server
# (Sanic, 5 s keep-alive) closes them, so a request never meets a connection closing.
POOL_KEEPALIVE_S = 2.0
_POOLED: dict[Any, aiohttp.ClientSession] = {}
_ORIGINAL_SESSION: Callable[[Any], Any] | None = None  # Rasa's, kept by install_patches


class _Lent:
    """`async with` that lends a pooled session and leaves it open."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self._session

    async def __aexit__(self, *exc: Any) -> None:
        return None


def pooled_session(endpoint: Any) -> Any:
    """What `EndpointConfig.session()` returns: one shared session per event loop and
    headers/auth, instead of a new session (and connection) per request."""
    from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no loop to pool on: Rasa's own session
        assert _ORIGINAL_SESSION is not None
        return _ORIGINAL_SESSION(endpoint)
    key = (id(loop), repr(sorted((endpoint.headers or {}).items())), repr(endpoint.basic_auth))
    session = _POOLED.get(key)
    if session is None or session.closed:
        basic = endpoint.basic_auth
        session = aiohttp.ClientSession(  # Rasa's settings, plus the keep-alive limit
            headers=endpoint.headers,
            auth=aiohttp.BasicAuth(basic["username"], basic["password"]) if basic else None,
            timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
            connector=aiohttp.TCPConnector(keepalive_timeout=POOL_KEEPALIVE_S),
        )
        _POOLED[key] = session
    return _Lent(session)


async def close_pooled_sessions() -> None:
    """Close this event loop's pooled sessions (server shutdown)."""
    loop = id(asyncio.get_running_loop())
    for key in [k for k in _POOLED if k[0] == loop]:
        await _POOLED.pop(key).close()


class Turn:
    """What the patches learn about the turn being processed."""

    def __init__(self) -> None:
        self.failed_actions: list[str] = []


TURN: contextvars.ContextVar[Turn | None] = contextvars.ContextVar("earshot_turn", default=None)
_PATCHED = False


def install_patches() -> None:
    """Install the replacements listed in `PATCHES` (idempotent)."""
    global _PATCHED, _ORIGINAL_SESSION
    if _PATCHED:
        return
    import rasa.server
    from jsonschema import ValidationError
    from rasa.core.actions.action import (
        ActionExecutionRejection,
        ActionSessionStart,
        RemoteAction,
    )
    from rasa.core.processor import MessageProcessor
    from rasa.shared.core.events import Event, SlotSet
    from rasa.utils.endpoints import EndpointConfig

    check = compile_action_result_check(RemoteAction.action_response_format_spec())

    def validate_action_result(self: Any, result: dict[str, Any]) -> bool:
        try:
            check(result)
        except ValidationError as e:
            e.message += ". Failed to validate Action server response from API."
            raise
        return True

    original_run = RemoteAction.run

    @functools.wraps(original_run)
    async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original_run(self, *args, **kwargs)
        except ActionExecutionRejection:
            raise  # a form rejecting input is part of the dialogue, not a failure
        except Exception:
            turn = TURN.get()
            if turn is not None:
                turn.failed_actions.append(self.name())
            raise

    original_parse = MessageProcessor.parse_message

    @functools.wraps(original_parse)
    async def parse_message(self: Any, message: Any, *args: Any, **kwargs: Any) -> Any:
        parse_data = await original_parse(self, message, *args, **kwargs)
        language = (message.metadata or {}).get(LANGUAGE_ENTITY)
        entities = parse_data.setdefault("entities", [])
        if isinstance(language, str) and not any(
            e.get("entity") == LANGUAGE_ENTITY for e in entities
        ):
            entities.append(
                {"entity": LANGUAGE_ENTITY, "value": language, "extractor": "EarshotInput"}
            )
        return parse_data

    original_expired = MessageProcessor._has_session_expired
    limit = session_max_events()

    @functools.wraps(original_expired)
    def has_session_expired(self: Any, tracker: Any) -> bool:
        if original_expired(self, tracker):
            return True
        return bool(self.domain.session_config.carry_over_slots and may_roll_over(tracker, limit))

    def carried_slots(tracker: Any) -> list[Any]:
        # The last value of each slot is the same state in one event per slot.
        last: dict[str, Any] = {}
        for event in tracker.applied_events():
            if isinstance(event, SlotSet):
                last.pop(event.key, None)
                last[event.key] = event
        return [SlotSet(key=e.key, value=e.value, metadata=e.metadata) for e in last.values()]

    original_resolve = Event.resolve_by_type
    event_classes: dict[str, Any] = {}

    @functools.wraps(original_resolve)
    def resolve_by_type(type_name: str, default: Any | None = None) -> Any | None:
        cls = event_classes.get(type_name)
        if cls is None:
            cls = original_resolve(type_name, default)
            if cls is not None and cls is not default:  # misses keep Rasa's answer
                event_classes[type_name] = cls
        return cls

    MessageProcessor.parse_message = parse_message
    RemoteAction.run = run
    RemoteAction._validate_action_result = validate_action_result
    MessageProcessor._has_session_expired = has_session_expired
    ActionSessionStart._slot_set_events_from_tracker = staticmethod(carried_slots)
    Event.resolve_by_type = staticmethod(resolve_by_type)
    # Channels are created before the API's routes, so this decorates every API route.
    rasa.server.requires_auth = requires_header_auth
    _ORIGINAL_SESSION = EndpointConfig.session
    EndpointConfig.session = pooled_session
    _PATCHED = True
