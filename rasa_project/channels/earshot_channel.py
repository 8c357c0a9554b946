"""Rasa input channel for Earshot's own front ends (Telegram bot, terminal, web chat).

Unlike Rasa's REST channel it
- passes request metadata on, so actions see the channel, language and chat type;
- answers 503 instead of a silent empty 200 when the turn cannot be processed (the
  action server is down, or the tracker store fails), so the front end can keep the
  message and replay it later instead of losing it.
Replies come back in the HTTP response, as with the REST channel.

It also installs small adaptations of Rasa internals (see `install_patches`):
- the customer's language, chosen by the front end and sent as metadata, becomes the
  `language` entity of every message (payloads too), so the `language` slot picks
  the response variations;
- a custom action that fails (action server down or erroring) is noted for this turn, so
  the turn answers 503 precisely when it happened (Rasa itself only logs it);
- custom action results are validated with a compiled JSON schema: Rasa recompiles and
  re-checks the schema on every call, which cost over half of a turn's CPU time. Each
  event is checked against the one `oneOf` branch its `event` name selects (the 23
  branches differ by that constant), not against all of them: the same verdict in a
  quarter of the time (2.3 -> 0.65 ms for a typical result of 7 events);
- a conversation session that has grown past `EARSHOT_SESSION_MAX_EVENTS` events (set by
  `earshot run` from config.yml's `session_max_events`; default 200, about 25 turns) is
  closed at the next message, unless a form is active or the last bot message has buttons
  waiting for a press, and a new one starts with the slots carried over
  (`carry_over_slots_to_new_session`). With `session_expiration_time: 0` a returning
  customer's session never ends, and Rasa loads the whole current session every turn and
  sends it to the action server with each custom action. The tracker store keeps every
  session;
- a new session carries each slot's last value once: Rasa's `action_session_start` copies
  every SlotSet of the old session, earlier copies included, so sessions snowballed (in a
  300-turn conversation, 126,000 slot events and a new session on nearly every turn);
- an event's class is looked up by its type name once: Rasa walks every subclass of
  `Event` (with an `inspect.isabstract` each) for every event it loads, so reading the
  session back cost about 5% of a turn's CPU;
- Rasa's HTTP API takes its token in the `X-Earshot-Token` header (from the RASA_TOKEN
  environment variable), not in a `?token=` query string (which lands in access logs) or
  an `--auth-token` process argument (which any local user can read);
- calls to the action server (and other endpoints) reuse pooled keep-alive connections:
  Rasa's `EndpointConfig.request` opens a new aiohttp session, and so a new TCP
  connection, for every custom action and every form validation, one to three per turn.
"""

import asyncio
import contextvars
import functools
import hmac
import inspect
import logging
import os
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

import aiohttp
import sqlalchemy
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)

HEALTH_TTL_S = 0.5
# The shared secret of Earshot's internal services (front ends -> Rasa -> action server).
TOKEN_HEADER = "X-Earshot-Token"
DEFAULT_TOKEN = "dev-only-rasa-token"  # earshot.settings' default; refused in production


def token_ok(request: Request) -> bool:
    """The request carries the shared secret (RASA_TOKEN) in the X-Earshot-Token header."""
    expected = os.environ.get("RASA_TOKEN") or DEFAULT_TOKEN
    given = request.headers.get(TOKEN_HEADER, "")
    return hmac.compare_digest(given.encode(), expected.encode())


def _unauthorized() -> HTTPResponse:
    return response.json(
        {"status": "failure", "reason": "NotAuthenticated", "code": 401,
         "message": f"missing or wrong {TOKEN_HEADER} header"},
        status=401,
    )  # fmt: skip


def requires_header_auth(app: Any, token: Optional[Text] = None) -> Callable[[Any], Any]:
    """Replaces `rasa.server.requires_auth`: the token travels in a header only."""

    def decorator(f: Any) -> Any:
        @functools.wraps(f)
        async def decorated(request: Request, *args: Any, **kwargs: Any) -> Any:
            if not token_ok(request):
                return _unauthorized()
            result = f(request, *args, **kwargs)
            return await result if inspect.isawaitable(result) else result

        return decorated

    return decorator
LANGUAGE_ENTITY = "language"
SESSION_MAX_EVENTS_DEFAULT = 200


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
    pending: Optional[bool] = None
    for event in reversed(tracker.events):
        kind = getattr(event, "type_name", None)
        if kind == "session_started":
            break
        if pending is None and kind == "bot":
            data = getattr(event, "data", None) or {}
            buttons = [*(data.get("buttons") or []), *(data.get("quick_replies") or [])]
            # Links are buttons whose payload is a URL (earshot.kb): they wait for nothing.
            pending = any(
                not str(b.get("payload", "")).startswith(("https://", "http://")) for b in buttons
            )
        count += 1
    return count > limit and not pending


def compile_action_result_check(schema: Dict[Text, Any]) -> Callable[[Any], None]:
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
        name: validator_class({"allOf": [base, branch]}) for name, branch in zip(names, branches)
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
_POOLED: Dict[Any, aiohttp.ClientSession] = {}
_ORIGINAL_SESSION: Optional[Callable[[Any], Any]] = None  # Rasa's, kept by install_patches


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


class _Turn:
    """What the patches learn about the turn being processed."""

    def __init__(self) -> None:
        self.failed_actions: List[str] = []


_TURN: "contextvars.ContextVar[Optional[_Turn]]" = contextvars.ContextVar(
    "earshot_turn", default=None
)
_PATCHED = False


def install_patches() -> None:
    """Install the adaptations described in the module docstring (idempotent)."""
    global _PATCHED, _ORIGINAL_SESSION
    if _PATCHED:
        return
    from jsonschema import ValidationError
    from rasa.core.actions.action import (
        ActionExecutionRejection,
        ActionSessionStart,
        RemoteAction,
    )
    from rasa.shared.core.events import Event, SlotSet
    import rasa.server
    from rasa.core.processor import MessageProcessor
    from rasa.utils.endpoints import EndpointConfig

    check = compile_action_result_check(RemoteAction.action_response_format_spec())

    def validate_action_result(self: Any, result: Dict[Text, Any]) -> bool:
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
            turn = _TURN.get()
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

    def carried_slots(tracker: Any) -> List[Any]:
        # Rasa copies every SlotSet of the ending session, copies included, so each new
        # session started longer than the last; the last value of each slot is the same
        # state in one event per slot.
        last: Dict[Text, Any] = {}
        for event in tracker.applied_events():
            if isinstance(event, SlotSet):
                last.pop(event.key, None)
                last[event.key] = event
        return [SlotSet(key=e.key, value=e.value, metadata=e.metadata) for e in last.values()]

    original_resolve = Event.resolve_by_type
    event_classes: Dict[Text, Any] = {}

    @functools.wraps(original_resolve)
    def resolve_by_type(type_name: Text, default: Optional[Any] = None) -> Optional[Any]:
        cls = event_classes.get(type_name)
        if cls is None:
            cls = original_resolve(type_name, default)
            if cls is not None and cls is not default:  # misses keep Rasa's answer
                event_classes[type_name] = cls
        return cls

    Event.resolve_by_type = staticmethod(resolve_by_type)  # type: ignore[method-assign]
    ActionSessionStart._slot_set_events_from_tracker = staticmethod(carried_slots)  # type: ignore[method-assign]
    RemoteAction._validate_action_result = validate_action_result  # type: ignore[assignment]
    MessageProcessor._has_session_expired = has_session_expired  # type: ignore[assignment]
    RemoteAction.run = run  # type: ignore[assignment]
    MessageProcessor.parse_message = parse_message  # type: ignore[assignment]
    # Channels are created before the API's routes, so this decorates every API route.
    rasa.server.requires_auth = requires_header_auth
    _ORIGINAL_SESSION = EndpointConfig.session
    EndpointConfig.session = pooled_session  # type: ignore[assignment]
    _PATCHED = True


class EarshotInput(RestInput):
    """POST /webhooks/earshot/webhook {"sender", "message", "metadata"}."""

    def __init__(self) -> None:
        self._healthy_until = 0.0
        self._session: Optional[aiohttp.ClientSession] = None
        install_patches()

    @classmethod
    def name(cls) -> Text:
        return "earshot"

    def get_metadata(self, request: Request) -> Optional[Dict[Text, Any]]:
        body = request.json or {}
        metadata = body.get("metadata")
        return metadata if isinstance(metadata, dict) else None

    async def _actions_healthy(self, request: Request) -> bool:
        """Check the action server before taking a turn that may need it (cached 1 s)."""
        now = time.monotonic()
        if now < self._healthy_until:
            return True
        endpoint = getattr(request.app.ctx.agent, "action_endpoint", None)
        url = getattr(endpoint, "url", None)
        if not url:
            return True
        health = url.rsplit("/webhook", 1)[0] + "/health"
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=2),
                connector=aiohttp.TCPConnector(keepalive_timeout=POOL_KEEPALIVE_S),
            )
        problem = ""
        for _ in range(2):  # once more on a fresh connection if a kept-alive one was closing
            try:
                async with self._session.get(health) as resp:
                    if resp.status == 200:
                        self._healthy_until = now + HEALTH_TTL_S
                        return True
                    problem = f"answered {resp.status}"
                    break
            except aiohttp.ServerDisconnectedError as exc:
                problem = repr(exc)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                problem = repr(exc)
                break
        logger.warning("action server health check failed (%s) at %s", problem, health)
        return False

    @staticmethod
    def _tracker_store_healthy(request: Request) -> bool:
        """Rasa's FailSafeTrackerStore turns a database error into an empty conversation;
        check the database first so a turn is never taken without its history."""
        store = getattr(request.app.ctx.agent, "tracker_store", None)
        engine = getattr(getattr(store, "_tracker_store", store), "engine", None)
        if engine is None:
            return True
        try:
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text("SELECT 1"))
        except Exception:
            logger.warning("tracker store unavailable; asking the front end to keep the message")
            return False
        return True

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("earshot_webhook", __name__)

        @bp.listener("after_server_stop")
        async def close_pools(*_: Any) -> None:
            await close_pooled_sessions()

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not token_ok(request):
                return _unauthorized()
            sender_id = await self._extract_sender(request)
            text = self._extract_message(request)
            if not sender_id or text is None:
                return response.json({"error": "sender and message are required"}, status=400)
            if not await self._actions_healthy(request):
                return response.json({"error": "action server unavailable"}, status=503)
            if not self._tracker_store_healthy(request):
                return response.json({"error": "tracker store unavailable"}, status=503)
            collector = CollectingOutputChannel()
            turn = _Turn()
            token = _TURN.set(turn)
            try:
                await on_new_message(
                    UserMessage(
                        text,
                        collector,
                        sender_id,
                        input_channel=self.name(),
                        metadata=self.get_metadata(request),
                    )
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("could not process a message from the earshot channel")
                return response.json({"error": "message not processed"}, status=503)
            finally:
                _TURN.reset(token)
            if turn.failed_actions:
                # Rasa swallows a failed custom action; the turn is incomplete, so let the
                # front end keep the message and replay it when the action server is back.
                self._healthy_until = 0.0
                logger.warning("custom action(s) failed: %s", ", ".join(turn.failed_actions))
                return response.json({"error": "action server unavailable"}, status=503)
            return response.json(collector.messages)

        return bp
