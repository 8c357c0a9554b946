"""A local fake of the Telegram Bot API for tests, demos and benchmarks.

The real python-telegram-bot ``Application`` talks to it over loopback HTTP::

    with FakeBotAPI() as fake:
        app = (
            ApplicationBuilder()
            .token(fake.token)
            .base_url(fake.base_url)
            .base_file_url(fake.base_file_url)
            .build()
        )
        ...
        fake.send_text(42, "hello")
        fake.wait_for_messages(42, 1)

It mimics the parts of the Bot API the assistant uses (long polling, messages,
inline keyboards, callback answers, uploads, webhooks) and, by default, the
validation errors Telegram returns for common bot bugs (bad HTML, over-long
callback data, "message is not modified", ...), so tests fail here rather than
in production.

Standalone (``python -m testkit.telegram_api --port 8081``) it logs bot calls
and also serves a JSON control API for demos/benchmarks in other processes:
``POST /_control/send_text {"user_id", "text", "language_code"?}``,
``POST /_control/press {"user_id", "text"}`` (by button label),
``POST /_control/send_media {"user_id", "kind"}``, ``POST /_control/reset``,
``GET /_control/messages?chat_id=..[&count=N&timeout=S]`` (optionally waits),
``GET /_control/calls`` and ``GET /_control/latency?update_id=..``.

All timestamps are ``time.monotonic()`` (system-wide on Linux, so comparable
across processes on the same host).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import html.parser
import http.client
import itertools
import json
import re
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar

JSONDict = dict[str, Any]
T = TypeVar("T")

DEFAULT_TOKEN = "123456:TEST"

MEDIA_KINDS = ("photo", "voice", "video", "sticker", "document", "location", "contact", "poll")

# Values PTB sends as plain strings (RequestParameter.json_value does not JSON-encode
# str), so they must not be json-decoded: text "123" must stay a string.
_STRING_FIELDS = frozenset(
    {
        "text", "caption", "parse_mode", "callback_query_id", "inline_message_id",
        "file_id", "url", "secret_token", "action", "language_code", "description",
        "short_description", "name", "title", "query", "emoji", "ip_address",
        "photo", "document", "voice", "video", "audio", "animation", "sticker",
        "thumbnail", "phone_number", "first_name", "last_name", "vcard", "address",
        "business_connection_id", "payload", "currency", "provider_token",
        "start_parameter", "game_short_name", "question", "explanation",
    }
)  # fmt: skip

_CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice",
        "upload_voice", "upload_document", "choose_sticker", "find_location",
        "record_video_note", "upload_video_note",
    }
)  # fmt: skip

# Update types Telegram only sends when explicitly listed in allowed_updates.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

_HTML_TAGS = frozenset(
    {
        "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span",
        "tg-spoiler", "a", "code", "pre", "blockquote", "tg-emoji",
    }
)  # fmt: skip

# Outside code/links these MarkdownV2 characters are never markup, so an unescaped
# one is always rejected by Telegram ("Character '.' is reserved ...").
_MDV2_ALWAYS_RESERVED = frozenset(".!-=+#{}")

_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{1,64})?")
_BOT_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_SECRET_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")


def _utf16_len(text: str) -> int:
    # Telegram entity offsets/lengths are in UTF-16 code units.
    return len(text.encode("utf-16-le")) // 2


def _now() -> float:
    return time.monotonic()


def _as_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)


# --------------------------------------------------------------------------- records


# Telegram Stars a paid broadcast costs (Bot API 7.11, `allow_paid_broadcast`).
PAID_BROADCAST_STARS = 0.1


def is_paid_broadcast(params: JSONDict) -> bool:
    """The call asks to be sent as a paid broadcast (form values arrive as text)."""
    return str(params.get("allow_paid_broadcast", "")).lower() == "true"


@dataclass
class Call:
    """One request to the Bot API as received by the fake."""

    method: str
    params: JSONDict
    time: float
    files: dict[str, str | None] = field(default_factory=dict)  # part name -> filename
    status: int = 0  # HTTP status answered; 0 = dropped (inject_disconnect) or in progress

    @property
    def paid(self) -> bool:
        """Sent as a paid broadcast."""
        return is_paid_broadcast(self.params)


@dataclass
class SentMessage:
    """A bot->user message (or edit) as recorded by the fake."""

    method: str
    chat_id: int | str
    message_id: int
    text: str | None  # text, or caption for media
    reply_markup: JSONDict | None  # decoded, exactly as sent (any keyboard type)
    parse_mode: str | None
    time: float
    params: JSONDict

    @property
    def buttons(self) -> list[JSONDict]:
        """Flat list of inline keyboard buttons (empty for other keyboard types)."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [button for row in rows for button in row]

    @property
    def button_texts(self) -> list[str]:
        return [str(b.get("text")) for b in self.buttons]

    def to_dict(self) -> JSONDict:
        data = dataclasses.asdict(self)
        data["buttons"] = self.button_texts
        return data


@dataclass
class UploadedFile:
    """A file the bot uploaded (multipart) or referenced when sending media."""

    method: str
    field: str
    chat_id: int | str
    filename: str | None
    content: bytes
    mime_type: str | None
    file_id: str
    file_path: str
    caption: str | None
    time: float


@dataclass
class AnsweredCallback:
    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    time: float


@dataclass
class ChatAction:
    chat_id: int | str
    action: str
    time: float


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    content: bytes


@dataclass
class _Pending:
    update: JSONDict
    update_id: int
    redelivery: bool = False
    served: bool = False


@dataclass
class _Injection:
    disconnect: bool
    error_code: int = 0
    description: str = ""
    retry_after: int | None = None


@dataclass
class _Part:
    name: str
    filename: str | None
    content: bytes
    content_type: str | None


class _ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: JSONDict | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


# --------------------------------------------------------------------------- validation


class _HtmlChecker(html.parser.HTMLParser):
    """Approximates Telegram's HTML parse_mode rules: known tags only, balanced."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.error: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.error is None and tag not in _HTML_TAGS:
            self.error = f'Unsupported start tag "{tag}"'
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.error is not None:
            return
        if not self.stack or self.stack[-1] != tag:
            self.error = f'Unmatched end tag "{tag}"'
        else:
            self.stack.pop()


def _html_error(text: str) -> str | None:
    checker = _HtmlChecker()
    checker.feed(text)
    checker.close()
    if checker.error is None and checker.stack:
        checker.error = f'Can\'t find end tag corresponding to start tag "{checker.stack[-1]}"'
    return checker.error


def _markdown_v2_error(text: str) -> str | None:
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if text.startswith("```", i):  # pre block: content needs no escaping
            end = text.find("```", i + 3)
            i = n if end < 0 else end + 3
            continue
        if ch == "`":
            end = text.find("`", i + 1)
            i = n if end < 0 else end + 1
            continue
        if text.startswith("](", i):  # link/emoji URL: only ')' and '\' are escaped
            end = text.find(")", i + 2)
            i = n if end < 0 else end + 1
            continue
        if ch == "!" and text.startswith("![", i):  # custom emoji syntax
            i += 1
            continue
        if ch in _MDV2_ALWAYS_RESERVED:
            return f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
        i += 1
    return None


# --------------------------------------------------------------------------- HTTP layer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeBotAPI) -> None:
        self.fake = fake
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients dropping keep-alive or long-poll connections is normal; stay quiet.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, OSError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: PTB's httpx pool reuses connections
    disable_nagle_algorithm = True  # otherwise delayed ACKs add ~40 ms per response
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)

    def finish(self) -> None:
        with self.server.sockets_lock:
            self.server.open_sockets.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the default writes every request to stderr

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # skip trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True  # client went away (e.g. cancelled long poll)

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload, ensure_ascii=False).encode())

    def _dispatch(self) -> None:
        fake = self.server.fake
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        body = self._read_body()
        try:
            if path.startswith("/_control/"):
                status, payload = fake._handle_control(
                    self.command, path[len("/_control/") :], url.query, body
                )
                self._send_json(status, payload)
            elif path.startswith("/file/bot"):
                token, _, file_path = path[len("/file/bot") :].partition("/")
                content = fake._download(token, file_path)
                if content is None:
                    self._send_json(
                        404, {"ok": False, "error_code": 404, "description": "Not Found"}
                    )
                else:
                    self._send(200, content, "application/octet-stream")
            elif path.startswith("/bot"):
                token, _, method = path[len("/bot") :].partition("/")
                params, files = _parse_request(
                    self.headers.get("Content-Type", ""), url.query, body
                )
                result = fake._handle_api(token, method, params, files)
                if result is None:
                    self.close_connection = True  # no response at all -> client network error
                    return
                self._send_json(*result)
            else:
                self._send_json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        except Exception as exc:  # surface fake bugs to the client instead of hanging it
            traceback.print_exc()
            self._send_json(
                500,
                {"ok": False, "error_code": 500, "description": f"Internal Server Error: {exc!r}"},
            )


def _parse_request(content_type: str, query: str, body: bytes) -> tuple[JSONDict, dict[str, _Part]]:
    """Decodes PTB's request into typed params plus uploaded file parts.

    PTB (httpx) sends ``RequestData.json_parameters`` as form fields: strings stay
    strings, everything else (ints, bools, reply_markup, lists) is JSON-encoded.
    With files it is ``multipart/form-data``; other clients may send JSON.
    """
    raw: JSONDict = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    files: dict[str, _Part] = {}
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/json" and body:
        decoded = json.loads(body)
        if isinstance(decoded, dict):
            raw.update(decoded)
    elif ctype == "multipart/form-data":
        match = re.search(r'boundary="?([^";]+)"?', content_type)
        if match:
            for part in _parse_multipart(body, match.group(1).encode()):
                if part.filename is None:
                    raw[part.name] = part.content.decode("utf-8", "replace")
                else:
                    files[part.name] = part
    elif body:
        raw.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return {key: _decode_value(key, value) for key, value in raw.items()}, files


def _decode_value(key: str, value: Any) -> Any:
    if not isinstance(value, str) or key in _STRING_FIELDS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value  # e.g. chat_id="@channel"


def _unescape_form_param(value: str) -> str:
    # Reverses httpx's HTML5 form encoding of names/filenames ('"' -> %22, ...).
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), value).replace(
        "\\\\", "\\"
    )


def _parse_multipart(body: bytes, boundary: bytes) -> Iterator[_Part]:
    # Hand-rolled (not email.parser) so binary file content round-trips byte-exact.
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n")
        head, _, content = chunk.partition(b"\r\n\r\n")
        content = content.removesuffix(b"\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = re.search(r'(?:^|;)\s*name="([^"]*)"', disposition)
        filename = re.search(r'(?:^|;)\s*filename="([^"]*)"', disposition)
        if name is None:
            continue
        yield _Part(
            name=_unescape_form_param(name.group(1)),
            filename=_unescape_form_param(filename.group(1)) if filename else None,
            content=content,
            content_type=headers.get("content-type"),
        )


# --------------------------------------------------------------------------- the fake


class FakeBotAPI:
    """Threaded fake Telegram Bot API server on 127.0.0.1 (random port by default).

    Thread-safe: the HTTP handler threads and the test thread share state under one
    condition variable, which also drives long polling and the ``wait_for*`` helpers.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_name: str = "Earshot Test Bot",
        bot_username: str = "earshot_test_bot",
        accept_any_token: bool = False,
        strict: bool = True,
        log_calls: bool = False,
    ) -> None:
        """``strict`` enables Telegram's validation errors (parse_mode, lengths,
        button data, "message is not modified"); ``log_calls`` prints each call."""
        self.token = token
        self.host = host
        self.accept_any_token = accept_any_token
        self.strict = strict
        self.log_calls = log_calls
        bot_id = _as_int(token.split(":", 1)[0]) or 123456
        self.bot_user: JSONDict = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition(threading.RLock())
        self._async_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._methods: dict[str, Callable[[JSONDict, dict[str, _Part]], Any]] = {
            name.lower(): handler
            for name, handler in {
                "getMe": self._m_get_me,
                "getUpdates": self._m_get_updates,
                "deleteWebhook": self._m_delete_webhook,
                "setWebhook": self._m_set_webhook,
                "getWebhookInfo": self._m_get_webhook_info,
                "setMyCommands": self._m_set_my_commands,
                "getMyCommands": self._m_get_my_commands,
                "deleteMyCommands": self._m_delete_my_commands,
                "sendMessage": self._m_send_message,
                "editMessageText": self._m_edit_message_text,
                "editMessageReplyMarkup": self._m_edit_message_reply_markup,
                "deleteMessage": self._m_delete_message,
                "answerCallbackQuery": self._m_answer_callback_query,
                "sendChatAction": self._m_send_chat_action,
                "sendPhoto": self._m_send_photo,
                "sendDocument": self._m_send_document,
                "sendVoice": self._m_send_voice,
                "getFile": self._m_get_file,
                "close": self._m_true,
                "logOut": self._m_true,
            }.items()
        }
        self._canonical = {name.lower(): name for name in self._method_names()}
        self._reset_state()

    def _method_names(self) -> Iterable[str]:
        return (
            "getMe getUpdates deleteWebhook setWebhook getWebhookInfo setMyCommands "
            "getMyCommands deleteMyCommands sendMessage editMessageText "
            "editMessageReplyMarkup deleteMessage answerCallbackQuery sendChatAction "
            "sendPhoto sendDocument sendVoice getFile close logOut"
        ).split()

    def _reset_state(self) -> None:
        with self._cond:
            self._queue: list[_Pending] = []
            self._history: dict[int, JSONDict] = {}
            self._update_ids = itertools.count(1)
            self._ids = itertools.count(1)  # callback ids, file ids, poll ids
            self._message_counters: dict[int | str, int] = {}
            self._messages: dict[tuple[int | str, int], JSONDict] = {}
            self._bot_message_keys: list[tuple[int | str, int]] = []
            self._last_user_message: dict[int | str, int] = {}
            self._chats: dict[int | str, JSONDict] = {}
            self._users: dict[int, JSONDict] = {}
            self._files: dict[str, _StoredFile] = {}
            self._files_by_path: dict[str, bytes] = {}
            self._callback_ids: dict[str, bool] = {}  # id -> answered
            self._served_at: dict[int, list[float]] = {}
            self._injections: dict[str, deque[_Injection]] = {}
            self._blocked: set[int | str] = set()
            # The bot's Telegram Stars balance, which paid broadcasts spend (0.1 each);
            # None: not tracked, every paid broadcast goes through.
            self.stars: float | None = None
            self._calls: list[Call] = []
            self._sent: list[SentMessage] = []
            self._answered: list[AnsweredCallback] = []
            self._actions: list[ChatAction] = []
            self._uploads: list[UploadedFile] = []
            self._unknown: list[Call] = []
            self._webhook: JSONDict = {}
            self._allowed_updates: frozenset[str] | None = None
            self._commands: dict[str, list[JSONDict]] = {}
            self._poll_generation = 0
            self._stopping = False
            self._notify()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeBotAPI:
        if self._server is not None:
            return self
        self._stopping = False
        self._server = _Server((self.host, self._requested_port), self)
        self._thread = threading.Thread(
            # Short poll interval only bounds how long stop() waits for the accept loop.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"fake-telegram-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        with self._cond:
            self._stopping = True  # releases long polls immediately
            self._notify()
        server.shutdown()
        with server.sockets_lock:
            sockets = list(server.open_sockets)
        for sock in sockets:  # idle keep-alive handler threads would otherwise linger
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def reset(self) -> None:
        """Forgets all updates, messages, records and injected faults."""
        self._reset_state()

    def __enter__(self) -> FakeBotAPI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeBotAPI is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url()``; PTB appends the token."""
        return f"{self.root_url}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url()``; PTB appends the token."""
        return f"{self.root_url}/file/bot"

    # ------------------------------------------------------------------ update builders

    def _next_message_id(self, chat_id: int | str) -> int:
        # Private chats share one message-id sequence between user and bot, like Telegram.
        with self._cond:
            self._message_counters[chat_id] = self._message_counters.get(chat_id, 0) + 1
            return self._message_counters[chat_id]

    def _user(
        self,
        user_id: int,
        first_name: str | None = None,
        language_code: str | None = None,
        username: str | None = None,
        last_name: str | None = None,
    ) -> JSONDict:
        user: JSONDict = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name or f"User{user_id}",
        }
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        with self._cond:
            self._users[user_id] = user
        return user

    def _chat(
        self, chat_id: int | str, chat_type: str, user: JSONDict | None, title: str | None
    ) -> JSONDict:
        chat: JSONDict = {"id": chat_id, "type": chat_type}
        if chat_type == "private" and user is not None:
            for key in ("first_name", "last_name", "username"):
                if key in user:
                    chat[key] = user[key]
        else:
            chat["title"] = title or f"Chat {chat_id}"
        with self._cond:
            self._chats[chat_id] = chat
        return chat

    @staticmethod
    def _default_chat_id(user_id: int, chat_type: str) -> int:
        if chat_type == "private":
            return user_id
        if chat_type == "group":
            return -user_id
        return int(f"-100{user_id}")

    def _incoming_message(
        self,
        user_id: int | None,
        chat_id: int,
        chat_type: str,
        *,
        first_name: str | None,
        language_code: str | None,
        title: str | None = None,
        **content: Any,
    ) -> JSONDict:
        user = self._user(user_id, first_name, language_code) if user_id is not None else None
        chat = self._chat(chat_id, chat_type, user, title)
        message: JSONDict = {
            "message_id": self._next_message_id(chat_id),
            "date": int(time.time()),
            "chat": chat,
        }
        if user is not None:
            message["from"] = user
        else:  # channel posts are signed by the channel itself
            message["sender_chat"] = chat
        message.update({k: v for k, v in content.items() if v is not None})
        with self._cond:
            self._messages[(chat_id, message["message_id"])] = message
            self._last_user_message[chat_id] = message["message_id"]
        return message

    @staticmethod
    def _entities(text: str) -> list[JSONDict]:
        match = _COMMAND_RE.match(text)
        if not match or (match.end() < len(text) and not text[match.end()].isspace()):
            return []
        return [{"type": "bot_command", "offset": 0, "length": _utf16_len(match.group(0))}]

    def build_text_update(
        self,
        user_id: int,
        text: str,
        *,
        language_code: str | None = "en",
        first_name: str | None = None,
        chat_type: str = "private",
        chat_id: int | None = None,
        title: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> JSONDict:
        """An Update dict with a new text message (not enqueued; see send_text)."""
        chat_id = self._default_chat_id(user_id, chat_type) if chat_id is None else chat_id
        reply_to = None
        if reply_to_message_id is not None:
            with self._cond:
                reply_to = self._messages.get((chat_id, reply_to_message_id))
        message = self._incoming_message(
            user_id,
            chat_id,
            chat_type,
            first_name=first_name,
            language_code=language_code,
            title=title,
            text=text,
            entities=self._entities(text) or None,
            reply_to_message=reply_to,
        )
        return {"update_id": self._new_update_id(), "message": message}

    def send_text(
        self,
        user_id: int,
        text: str,
        *,
        language_code: str | None = "en",
        first_name: str | None = None,
        chat_type: str = "private",
        chat_id: int | None = None,
        title: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> int:
        """A user sends ``text``; returns the update_id. ``/cmd args`` gets a
        bot_command entity at offset 0 so PTB's CommandHandler fills context.args."""
        return self.push_update(
            self.build_text_update(
                user_id,
                text,
                language_code=language_code,
                first_name=first_name,
                chat_type=chat_type,
                chat_id=chat_id,
                title=title,
                reply_to_message_id=reply_to_message_id,
            )
        )

    def send_group_text(
        self,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        chat_type: str = "supergroup",
        title: str = "Earshot Test Group",
        language_code: str | None = "en",
        first_name: str | None = None,
    ) -> int:
        return self.send_text(
            user_id,
            text,
            chat_id=chat_id,
            chat_type=chat_type,
            title=title,
            language_code=language_code,
            first_name=first_name,
        )

    def send_edited_text(
        self,
        user_id: int,
        text: str,
        *,
        message_id: int | None = None,
        chat_id: int | None = None,
        chat_type: str = "private",
        language_code: str | None = "en",
        first_name: str | None = None,
    ) -> int:
        """An ``edited_message`` update; defaults to the user's latest message."""
        chat_id = self._default_chat_id(user_id, chat_type) if chat_id is None else chat_id
        with self._cond:
            original_id = message_id or self._last_user_message.get(chat_id)
            original = self._messages.get((chat_id, original_id)) if original_id else None
        user = self._user(user_id, first_name, language_code)
        message: JSONDict = (
            dict(original)
            if original
            else {
                "message_id": original_id or self._next_message_id(chat_id),
                "date": int(time.time()) - 5,
                "chat": self._chat(chat_id, chat_type, user, None),
                "from": user,
            }
        )
        message.pop("entities", None)
        message.update({"text": text, "edit_date": int(time.time())})
        if entities := self._entities(text):
            message["entities"] = entities
        with self._cond:
            self._messages[(chat_id, message["message_id"])] = message
        return self.push_update({"update_id": self._new_update_id(), "edited_message": message})

    def send_channel_post(self, chat_id: int, text: str, *, title: str = "Earshot Channel") -> int:
        message = self._incoming_message(
            None,
            chat_id,
            "channel",
            first_name=None,
            language_code=None,
            title=title,
            text=text,
            entities=self._entities(text) or None,
        )
        return self.push_update({"update_id": self._new_update_id(), "channel_post": message})

    def _register_file(self, kind: str, content: bytes, extension: str) -> _StoredFile:
        with self._cond:
            n = next(self._ids)
            stored = _StoredFile(
                file_id=f"FAKE-{kind}-{n}-{uuid.uuid4().hex[:12]}",
                file_unique_id=f"U{kind[:3]}{n}",
                file_path=f"{kind}s/file_{n}.{extension}",
                content=content,
            )
            self._files[stored.file_id] = stored
            self._files_by_path[stored.file_path] = content
        return stored

    def _media_content(self, kind: str, content: bytes | None, caption: str | None) -> JSONDict:
        data = content if content is not None else f"fake {kind} bytes".encode()
        size = len(data)
        if kind == "photo":
            small = self._register_file("photo", data, "jpg")
            large = self._register_file("photo", data, "jpg")
            sizes = [
                {
                    "file_id": small.file_id,
                    "file_unique_id": small.file_unique_id,
                    "width": 90,
                    "height": 90,
                    "file_size": size,
                },
                {
                    "file_id": large.file_id,
                    "file_unique_id": large.file_unique_id,
                    "width": 800,
                    "height": 800,
                    "file_size": size,
                },
            ]
            return {"photo": sizes, "caption": caption}
        if kind == "voice":
            f = self._register_file("voice", data, "oga")
            return {
                "voice": {
                    "file_id": f.file_id,
                    "file_unique_id": f.file_unique_id,
                    "duration": 2,
                    "mime_type": "audio/ogg",
                    "file_size": size,
                }
            }
        if kind == "video":
            f = self._register_file("video", data, "mp4")
            return {
                "video": {
                    "file_id": f.file_id,
                    "file_unique_id": f.file_unique_id,
                    "width": 640,
                    "height": 360,
                    "duration": 3,
                    "mime_type": "video/mp4",
                    "file_size": size,
                },
                "caption": caption,
            }
        if kind == "sticker":
            f = self._register_file("sticker", data, "webp")
            return {
                "sticker": {
                    "file_id": f.file_id,
                    "file_unique_id": f.file_unique_id,
                    "type": "regular",
                    "width": 512,
                    "height": 512,
                    "is_animated": False,
                    "is_video": False,
                    "emoji": "\N{THUMBS UP SIGN}",
                    "file_size": size,
                }
            }
        if kind == "document":
            f = self._register_file("document", data, "pdf")
            return {
                "document": {
                    "file_id": f.file_id,
                    "file_unique_id": f.file_unique_id,
                    "file_name": "manual.pdf",
                    "mime_type": "application/pdf",
                    "file_size": size,
                },
                "caption": caption,
            }
        if kind == "location":
            return {"location": {"latitude": 52.5200, "longitude": 13.4050}}
        if kind == "contact":
            return {"contact": {"phone_number": "+15555550100", "first_name": "Casey"}}
        if kind == "poll":
            with self._cond:
                poll_id = str(5_000_000 + next(self._ids))
            return {
                "poll": {
                    "id": poll_id,
                    "question": "Which bulb?",
                    "options": [
                        {"text": "Warm", "voter_count": 0},
                        {"text": "Cold", "voter_count": 0},
                    ],
                    "total_voter_count": 0,
                    "is_closed": False,
                    "is_anonymous": True,
                    "type": "regular",
                    "allows_multiple_answers": False,
                }
            }
        raise ValueError(f"unknown media kind {kind!r}; expected one of {MEDIA_KINDS}")

    def send_media(
        self,
        user_id: int,
        kind: str,
        *,
        caption: str | None = None,
        content: bytes | None = None,
        chat_id: int | None = None,
        chat_type: str = "private",
        language_code: str | None = "en",
        first_name: str | None = None,
    ) -> int:
        """A user sends non-text content (``MEDIA_KINDS``); file kinds are registered
        so getFile + download return ``content``."""
        chat_id = self._default_chat_id(user_id, chat_type) if chat_id is None else chat_id
        media = self._media_content(kind, content, caption)
        if kind == "contact":
            media["contact"]["user_id"] = user_id
        message = self._incoming_message(
            user_id, chat_id, chat_type, first_name=first_name, language_code=language_code, **media
        )
        return self.push_update({"update_id": self._new_update_id(), "message": message})

    def press_button(
        self, user_id: int, message_id: int, callback_data: str, *, chat_id: int | None = None
    ) -> int:
        """A ``callback_query`` update for a bot message; data is not checked against the
        keyboard, so stale/forged callback data can be tested too."""
        chat_id = user_id if chat_id is None else chat_id
        with self._cond:
            message = self._messages.get((chat_id, message_id))
            if message is None:
                raise ValueError(f"no message {message_id} in chat {chat_id}")
            query_id = str(9_000_000_000 + next(self._ids))
            user = self._users.get(user_id) or self._user(user_id)
            update = {
                "update_id": self._new_update_id(),
                "callback_query": {
                    "id": query_id,
                    "from": user,
                    "message": json.loads(json.dumps(message)),  # snapshot, later edits don't leak
                    "chat_instance": str(abs(hash((chat_id, self.token))) % 10**18),
                    "data": callback_data,
                },
            }
            return self.push_update(update)

    def press_button_by_text(
        self, user_id: int, button_text: str, *, chat_id: int | None = None
    ) -> int:
        """Presses the button labelled ``button_text`` on the latest bot message in
        the chat that has one."""
        chat_id = user_id if chat_id is None else chat_id
        with self._cond:
            seen: list[str] = []
            for key in reversed(self._bot_message_keys):
                message = self._messages.get(key)
                if key[0] != chat_id or message is None:
                    continue
                rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
                for button in (b for row in rows for b in row):
                    seen.append(str(button.get("text")))
                    if button.get("text") == button_text:
                        if "callback_data" not in button:
                            raise ValueError(
                                f"button {button_text!r} has no callback_data: {button}"
                            )
                        return self.press_button(
                            user_id, key[1], button["callback_data"], chat_id=chat_id
                        )
        raise ValueError(
            f"no inline button {button_text!r} in chat {chat_id}; "
            f"buttons seen (newest first): {seen}"
        )

    def _new_update_id(self) -> int:
        with self._cond:
            return next(self._update_ids)

    def push_update(self, update: JSONDict) -> int:
        """Enqueues a raw Update dict (``update_id`` is assigned if missing)."""
        with self._cond:
            if "update_id" not in update:
                update = {"update_id": self._new_update_id(), **update}
            update_id = int(update["update_id"])
            self._history[update_id] = update
            query = update.get("callback_query")
            if isinstance(query, dict) and "id" in query:
                self._callback_ids.setdefault(str(query["id"]), False)
            self._queue.append(_Pending(update, update_id))
            self._notify()
        return update_id

    def redeliver(self, update_id: int) -> int:
        """Enqueues the same update (same update_id) again, as Telegram does after
        a webhook/poll is not confirmed; de-duplication is the bot's job."""
        with self._cond:
            if update_id not in self._history:
                raise ValueError(f"unknown update_id {update_id}")
            self._queue.append(_Pending(self._history[update_id], update_id, redelivery=True))
            self._notify()
        return update_id

    # ------------------------------------------------------------------ faults

    def inject_error(
        self,
        method: str,
        count: int = 1,
        error_code: int = 429,
        retry_after: int | None = 1,
        description: str | None = None,
    ) -> None:
        """The next ``count`` calls to ``method`` fail with this Bot API error."""
        if description is None:
            description = {
                429: f"Too Many Requests: retry after {retry_after}",
                400: "Bad Request: injected error",
                403: "Forbidden: bot was blocked by the user",
                409: "Conflict: terminated by other getUpdates request",
                502: "Bad Gateway",
            }.get(error_code, "Internal Server Error")
        injection = _Injection(
            disconnect=False,
            error_code=error_code,
            description=description,
            retry_after=retry_after if error_code == 429 else None,
        )
        with self._cond:
            self._injections.setdefault(method.lower(), deque()).extend([injection] * count)

    def inject_disconnect(self, method: str, count: int = 1) -> None:
        """The next ``count`` calls to ``method`` get the connection closed without a
        response (the request is still recorded, but not executed)."""
        with self._cond:
            self._injections.setdefault(method.lower(), deque()).extend(
                [_Injection(disconnect=True)] * count
            )

    def block_user(self, chat_id: int | str) -> None:
        """Sends to this chat fail with 403 "bot was blocked by the user"."""
        with self._cond:
            self._blocked.add(chat_id)

    # ------------------------------------------------------------------ records

    @property
    def calls(self) -> list[Call]:
        with self._cond:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    @property
    def unknown_methods(self) -> list[Call]:
        with self._cond:
            return list(self._unknown)

    def sent_messages(self, chat_id: int | str | None = None) -> list[SentMessage]:
        """Bot->user messages and text edits, in arrival order."""
        with self._cond:
            return [m for m in self._sent if chat_id is None or m.chat_id == chat_id]

    @property
    def answered_callbacks(self) -> list[AnsweredCallback]:
        with self._cond:
            return list(self._answered)

    @property
    def chat_actions(self) -> list[ChatAction]:
        with self._cond:
            return list(self._actions)

    @property
    def documents(self) -> list[UploadedFile]:
        """Files sent with sendDocument."""
        with self._cond:
            return [u for u in self._uploads if u.method == "sendDocument"]

    @property
    def uploads(self) -> list[UploadedFile]:
        """Files sent with sendDocument, sendPhoto and sendVoice."""
        with self._cond:
            return list(self._uploads)

    @property
    def pending_updates(self) -> int:
        with self._cond:
            return len(self._queue)

    @property
    def webhook_url(self) -> str:
        with self._cond:
            return str(self._webhook.get("url", ""))

    def bot_message(self, chat_id: int | str, message_id: int) -> JSONDict | None:
        """Current state of a message (after edits), or None if unknown/deleted."""
        with self._cond:
            return self._messages.get((chat_id, message_id))

    # ------------------------------------------------------------------ latency

    def served_at(self, update_id: int) -> float | None:
        """When the update was first handed to the bot (getUpdates response or webhook)."""
        with self._cond:
            times = self._served_at.get(update_id)
            return times[0] if times else None

    def _update_chat_id(self, update_id: int) -> int | str | None:
        update = self._history.get(update_id, {})
        for value in update.values():
            if isinstance(value, dict):
                message = value.get("message", value)
                chat = message.get("chat") if isinstance(message, dict) else None
                if isinstance(chat, dict):
                    chat_id: int | str | None = chat.get("id")
                    return chat_id
        return None

    def reply_time(self, update_id: int, methods: Iterable[str] = ("sendMessage",)) -> float | None:
        """Arrival time of the first matching bot message to the update's chat after
        the update was served."""
        wanted = set(methods)
        with self._cond:
            served = self.served_at(update_id)
            chat_id = self._update_chat_id(update_id)
            if served is None or chat_id is None:
                return None
            for message in self._sent:
                if (
                    message.chat_id == chat_id
                    and message.method in wanted
                    and message.time >= served
                ):
                    return message.time
        return None

    def reply_latency(
        self, update_id: int, methods: Iterable[str] = ("sendMessage",)
    ) -> float | None:
        """Seconds from serving the update to the first reply to its chat (None if
        either has not happened). Includes the bot's processing and HTTP round trip."""
        served = self.served_at(update_id)
        replied = self.reply_time(update_id, methods)
        return None if served is None or replied is None else replied - served

    # ------------------------------------------------------------------ waiting

    def _notify(self) -> None:
        # Caller holds self._cond (RLock, so re-acquiring is fine).
        with self._cond:
            self._cond.notify_all()
            for loop, event in list(self._async_waiters):
                try:
                    loop.call_soon_threadsafe(event.set)
                except RuntimeError:  # loop closed
                    self._async_waiters.discard((loop, event))

    def _summary(self) -> str:
        with self._cond:
            sent = [
                f"  [{m.chat_id}] {m.method}: {m.text!r} {m.button_texts or ''}" for m in self._sent
            ]
            calls = [f"{c.method}({c.status})" for c in self._calls if c.method != "getUpdates"]
            pending = len(self._queue)
        return (
            f"sent messages ({len(sent)}):\n"
            + ("\n".join(sent[-30:]) or "  (none)")
            + f"\nnon-getUpdates calls ({len(calls)}): {calls[-40:]}"
            + f"\nupdates still queued: {pending}"
        )

    def wait_for(
        self, predicate: Callable[[], T | None], timeout: float = 10.0, *, message: str = ""
    ) -> T:
        """Blocks until ``predicate()`` is truthy and returns its value. Re-checked on
        every fake state change and every 50 ms (for bot-side state). Do not call
        from an event loop thread; use ``await_for`` there."""
        deadline = _now() + timeout
        with self._cond:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - _now()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {message or predicate}\n"
                        + self._summary()
                    )
                self._cond.wait(min(remaining, 0.05))

    async def await_for(
        self, predicate: Callable[[], T | None], timeout: float = 10.0, *, message: str = ""
    ) -> T:
        """Async ``wait_for``: wakes on fake state changes without blocking the loop."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        waiter = (loop, event)
        deadline = loop.time() + timeout
        with self._cond:
            self._async_waiters.add(waiter)
        try:
            while True:
                event.clear()
                with self._cond:
                    result = predicate()
                if result:
                    return result
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {message or predicate}\n"
                        + self._summary()
                    )
                try:
                    await asyncio.wait_for(event.wait(), min(remaining, 0.05))
                except asyncio.TimeoutError:
                    pass
        finally:
            with self._cond:
                self._async_waiters.discard(waiter)

    def wait_for_messages(
        self, chat_id: int | str, count: int = 1, timeout: float = 10.0
    ) -> list[SentMessage]:
        """Waits until ``sent_messages(chat_id)`` has at least ``count`` entries; returns all."""

        def enough() -> list[SentMessage]:
            found = self.sent_messages(chat_id)
            return found if len(found) >= count else []

        return self.wait_for(enough, timeout, message=f"{count} message(s) to chat {chat_id}")

    async def await_messages(
        self, chat_id: int | str, count: int = 1, timeout: float = 10.0
    ) -> list[SentMessage]:
        def enough() -> list[SentMessage]:
            found = self.sent_messages(chat_id)
            return found if len(found) >= count else []

        return await self.await_for(
            enough, timeout, message=f"{count} message(s) to chat {chat_id}"
        )

    # ------------------------------------------------------------------ webhook delivery

    def deliver_via_webhook(
        self,
        url: str,
        update: JSONDict,
        secret_token: str | None = None,
        timeout: float = 10.0,
    ) -> int:
        """POSTs an Update to the bot's webhook like Telegram does; returns the HTTP
        status. Assigns update_id if missing and records it as served (for latency)."""
        parts = urllib.parse.urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"webhook delivery is loopback-only, got {url!r}")
        with self._cond:
            if "update_id" not in update:
                update = {"update_id": self._new_update_id(), **update}
            update_id = int(update["update_id"])
            self._history[update_id] = update
            query = update.get("callback_query")
            if isinstance(query, dict) and "id" in query:
                self._callback_ids.setdefault(str(query["id"]), False)
        headers = {"Content-Type": "application/json"}
        if secret_token is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret_token
        body = json.dumps(update).encode()
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
        try:
            with self._cond:
                self._served_at.setdefault(update_id, []).append(_now())
            conn.request("POST", parts.path or "/", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    # ------------------------------------------------------------------ request handling

    def _handle_api(
        self, token: str, method: str, params: JSONDict, files: dict[str, _Part]
    ) -> tuple[int, JSONDict] | None:
        """Runs one Bot API call; None means: drop the connection (inject_disconnect)."""
        canonical = self._canonical.get(method.lower(), method)
        call = Call(
            method=canonical,
            params=params,
            time=_now(),
            files={name: part.filename for name, part in files.items()},
        )
        with self._cond:
            self._calls.append(call)
            self._notify()
            injection = None
            if token == self.token or self.accept_any_token:
                queue = self._injections.get(method.lower())
                injection = queue.popleft() if queue else None
        if injection is not None and injection.disconnect:
            return None  # call.status stays 0
        status, payload = self._execute(token, method, call, injection, params, files)
        with self._cond:
            call.status = status
            self._notify()
        if self.log_calls:
            self._log(call, payload)
        return status, payload

    def _execute(
        self,
        token: str,
        method: str,
        call: Call,
        injection: _Injection | None,
        params: JSONDict,
        files: dict[str, _Part],
    ) -> tuple[int, JSONDict]:
        try:
            if token != self.token and not self.accept_any_token:
                raise _ApiError(401, "Unauthorized")
            if injection is not None:
                retry = {"retry_after": injection.retry_after} if injection.retry_after else None
                raise _ApiError(injection.error_code, injection.description, retry)
            handler = self._methods.get(method.lower())
            if handler is None:
                with self._cond:
                    self._unknown.append(call)
                raise _ApiError(404, "Not Found: method not found")
            if is_paid_broadcast(params):
                self._pay_for_broadcast()
            return 200, {"ok": True, "result": handler(params, files)}
        except _ApiError as err:
            return err.code, err.payload()

    def _pay_for_broadcast(self) -> None:
        with self._cond:
            if self.stars is None:
                return
            if self.stars < PAID_BROADCAST_STARS:
                # The fake's wording: Telegram's own for this case is not documented.
                raise _ApiError(400, "Bad Request: not enough Stars for a paid broadcast")
            self.stars = round(self.stars - PAID_BROADCAST_STARS, 6)

    def _log(self, call: Call, payload: JSONDict) -> None:
        if call.method == "getUpdates" and not payload.get("result"):
            return  # empty long-poll cycles would flood the log
        shown = {k: v for k, v in call.params.items() if k not in ("reply_markup",)}
        markup = call.params.get("reply_markup")
        if isinstance(markup, dict) and markup.get("inline_keyboard"):
            shown["buttons"] = [b.get("text") for row in markup["inline_keyboard"] for b in row]
        if call.method == "getUpdates":
            shown = {"update_ids": [u["update_id"] for u in payload.get("result", [])]}
        error = (
            ""
            if payload.get("ok")
            else f" -> {payload.get('error_code')} {payload.get('description')}"
        )
        stamp = time.strftime("%H:%M:%S")
        print(f"{stamp} {call.method} {json.dumps(shown, ensure_ascii=False)}{error}", flush=True)

    def _download(self, token: str, file_path: str) -> bytes | None:
        if token != self.token and not self.accept_any_token:
            return None
        with self._cond:
            return self._files_by_path.get(file_path)

    # ------------------------------------------------------------------ helpers for methods

    def _resolve_chat(self, params: JSONDict) -> JSONDict:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _ApiError(400, "Bad Request: chat_id is empty")
        with self._cond:
            if chat_id in self._blocked:
                raise _ApiError(403, "Forbidden: bot was blocked by the user")
            known = self._chats.get(chat_id)
        if known is not None:
            return known
        if isinstance(chat_id, str) and not chat_id.lstrip("-").isdigit():
            return {
                "id": chat_id,
                "type": "channel",
                "title": chat_id,
                "username": chat_id.lstrip("@"),
            }
        chat_id = int(chat_id)
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": f"User{chat_id}"}
        chat_type = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "type": chat_type, "title": f"Chat {chat_id}"}

    def _check_text(self, text: Any, parse_mode: Any, *, caption: bool = False) -> None:
        if not self.strict or text is None:
            return
        limit, what = (
            (1024, "message caption is too long") if caption else (4096, "message is too long")
        )
        if len(str(text)) > limit:
            raise _ApiError(400, f"Bad Request: {what}")
        mode = str(parse_mode or "").lower()
        error = None
        if mode == "html":
            error = _html_error(str(text))
        elif mode == "markdownv2":
            error = _markdown_v2_error(str(text))
        if error:
            raise _ApiError(400, f"Bad Request: can't parse entities: {error}")

    def _check_markup(self, markup: Any) -> JSONDict | None:
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise _ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard")
        if rows is not None and self.strict:
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _ApiError(
                    400, 'Bad Request: field "inline_keyboard" must be an Array of Array'
                )
            for button in (b for row in rows for b in row):
                if not button.get("text"):
                    raise _ApiError(
                        400, "Bad Request: text buttons are unallowed in the inline keyboard"
                    )
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                actions = {
                    "url",
                    "callback_data",
                    "switch_inline_query",
                    "web_app",
                    "login_url",
                    "switch_inline_query_current_chat",
                    "pay",
                    "callback_game",
                    "copy_text",
                    "switch_inline_query_chosen_chat",
                }
                if not actions & button.keys():
                    raise _ApiError(
                        400, "Bad Request: text buttons are unallowed in the inline keyboard"
                    )
        return markup

    def _new_bot_message(self, chat: JSONDict, params: JSONDict, **content: Any) -> JSONDict:
        message: JSONDict = {
            "message_id": self._next_message_id(chat["id"]),
            "from": {k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")},
            "chat": chat,
            "date": int(time.time()),
        }
        message.update({k: v for k, v in content.items() if v is not None})
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # only inline keyboards are part of a Message
        reply = params.get("reply_parameters")
        reply_to_id = (
            reply.get("message_id")
            if isinstance(reply, dict)
            else params.get("reply_to_message_id")
        )
        with self._cond:
            original = self._messages.get((chat["id"], _as_int(reply_to_id) or -1))
            if original is not None:
                message["reply_to_message"] = {
                    k: v for k, v in original.items() if k != "reply_to_message"
                }
            key = (chat["id"], message["message_id"])
            self._messages[key] = message
            self._bot_message_keys.append(key)
        return message

    def _record_sent(
        self, method: str, message: JSONDict, params: JSONDict, text: str | None
    ) -> None:
        markup = params.get("reply_markup")
        with self._cond:
            self._sent.append(
                SentMessage(
                    method=method,
                    chat_id=message["chat"]["id"],
                    message_id=message["message_id"],
                    text=text,
                    reply_markup=markup if isinstance(markup, dict) else None,
                    parse_mode=params.get("parse_mode"),
                    time=_now(),
                    params=params,
                )
            )

    def _edit_target(self, params: JSONDict) -> tuple[tuple[int | str, int], JSONDict] | None:
        if params.get("inline_message_id"):
            return None  # inline messages are not tracked; Telegram answers True
        chat = self._resolve_chat(params)
        message_id = _as_int(params.get("message_id"))
        if message_id is None:
            raise _ApiError(400, "Bad Request: message identifier is not specified")
        key = (chat["id"], message_id)
        message = self._messages.get(key)
        if message is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        if message.get("from", {}).get("id") != self.bot_user["id"]:
            raise _ApiError(400, "Bad Request: message can't be edited")
        return key, message

    @staticmethod
    def _not_modified() -> _ApiError:
        return _ApiError(
            400,
            "Bad Request: message is not modified: specified new message content and reply "
            "markup are exactly the same as a current content and reply markup of the message",
        )

    def _upload(
        self,
        method: str,
        field_name: str,
        kind: str,
        extension: str,
        params: JSONDict,
        files: dict[str, _Part],
    ) -> tuple[_StoredFile, _Part | None]:
        part = files.get(field_name)
        value = params.get(field_name)
        if part is None and isinstance(value, str) and value.startswith("attach://"):
            part = files.get(value[len("attach://") :])
        if part is not None:
            suffix = (part.filename or "").rpartition(".")[2] or extension
            stored = self._register_file(kind, part.content, suffix)
        elif isinstance(value, str) and value in self._files:
            stored = self._files[value]  # re-sending by file_id
        elif isinstance(value, str) and value:
            stored = self._register_file(kind, value.encode(), extension)  # URL: keep as content
        else:
            raise _ApiError(400, f"Bad Request: there is no {field_name} in the request")
        return stored, part

    def _send_media(
        self,
        method: str,
        field_name: str,
        kind: str,
        extension: str,
        params: JSONDict,
        files: dict[str, _Part],
    ) -> JSONDict:
        chat = self._resolve_chat(params)
        caption = params.get("caption")
        self._check_text(caption, params.get("parse_mode"), caption=True)
        self._check_markup(params.get("reply_markup"))
        stored, part = self._upload(method, field_name, kind, extension, params, files)
        size = len(stored.content)
        ids = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": size,
        }
        content: JSONDict
        if kind == "photo":
            content = {
                "photo": [{**ids, "width": 90, "height": 90}, {**ids, "width": 1280, "height": 960}]
            }
        elif kind == "voice":
            content = {
                "voice": {
                    **ids,
                    "duration": _as_int(params.get("duration")) or 1,
                    "mime_type": "audio/ogg",
                }
            }
        else:
            filename = part.filename if part is not None else stored.file_path.rpartition("/")[2]
            content = {
                "document": {
                    **ids,
                    "file_name": filename,
                    "mime_type": (part.content_type if part else None)
                    or "application/octet-stream",
                }
            }
        message = self._new_bot_message(chat, params, caption=caption, **content)
        with self._cond:
            self._uploads.append(
                UploadedFile(
                    method=method,
                    field=field_name,
                    chat_id=chat["id"],
                    filename=part.filename if part is not None else None,
                    content=stored.content,
                    mime_type=part.content_type if part is not None else None,
                    file_id=stored.file_id,
                    file_path=stored.file_path,
                    caption=caption,
                    time=_now(),
                )
            )
        self._record_sent(method, message, params, caption)
        return message

    # ------------------------------------------------------------------ Bot API methods

    def _m_true(self, params: JSONDict, files: dict[str, _Part]) -> bool:
        return True

    def _m_get_me(self, params: JSONDict, files: dict[str, _Part]) -> JSONDict:
        return self.bot_user

    def _take_batch(self, limit: int) -> list[_Pending]:
        # Redelivered updates are served alone: PTB confirms with offset=last+1, so a
        # lower re-sent id must not share a batch with newer (unconfirmed) ones.
        allowed = self._allowed_updates
        batch: list[_Pending] = []
        for entry in list(self._queue):
            kind = next((k for k in entry.update if k != "update_id"), "")
            if (kind not in allowed) if allowed is not None else (kind in _OPT_IN_UPDATES):
                self._queue.remove(entry)  # Telegram never creates filtered-out updates
                continue
            if entry.redelivery:
                if not batch:
                    batch.append(entry)
                break
            batch.append(entry)
            if len(batch) >= limit:
                break
        return batch

    def _confirm(self, offset: int | None) -> None:
        if offset is None or offset == 0:
            return
        if offset < 0:  # -N: keep only the newest N updates
            del self._queue[: max(0, len(self._queue) + offset)]
            return
        self._queue = [
            e for e in self._queue if e.update_id >= offset or (e.redelivery and not e.served)
        ]

    def _m_get_updates(self, params: JSONDict, files: dict[str, _Part]) -> list[JSONDict]:
        if self._webhook.get("url"):
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        limit = min(max(_as_int(params.get("limit")) or 100, 1), 100)
        timeout = max(0.0, float(params.get("timeout") or 0))
        deadline = _now() + timeout
        with self._cond:
            if "allowed_updates" in params:
                allowed = params["allowed_updates"]
                self._allowed_updates = frozenset(allowed) if allowed else None
            self._poll_generation += 1
            generation = self._poll_generation
            self._notify()  # wake an older long poll so it can report the conflict
            self._confirm(_as_int(params.get("offset")))
            while True:
                batch = self._take_batch(limit)
                if batch or self._stopping:
                    break
                if self._poll_generation != generation:
                    raise _ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; make sure that "
                        "only one bot instance is running",
                    )
                remaining = deadline - _now()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            now = _now()
            for entry in batch:
                entry.served = True
                self._served_at.setdefault(entry.update_id, []).append(now)
            return [entry.update for entry in batch]

    def _m_delete_webhook(self, params: JSONDict, files: dict[str, _Part]) -> bool:
        with self._cond:
            self._webhook = {}
            if _as_bool(params.get("drop_pending_updates")):
                self._queue.clear()
        return True

    def _m_set_webhook(self, params: JSONDict, files: dict[str, _Part]) -> bool:
        url = str(params.get("url") or "")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN_RE.fullmatch(str(secret)):
            raise _ApiError(400, "Bad Request: secret token contains unallowed characters")
        if url and not url.startswith(("http://", "https://")):
            raise _ApiError(400, "Bad Request: bad webhook: Invalid URL")
        with self._cond:
            if _as_bool(params.get("drop_pending_updates")):
                self._queue.clear()
            self._webhook = (
                {
                    "url": url,
                    "secret_token": secret,
                    "max_connections": _as_int(params.get("max_connections")) or 40,
                    "allowed_updates": params.get("allowed_updates"),
                }
                if url
                else {}
            )
        return True

    def _m_get_webhook_info(self, params: JSONDict, files: dict[str, _Part]) -> JSONDict:
        with self._cond:
            info: JSONDict = {
                "url": self._webhook.get("url", ""),
                "has_custom_certificate": False,
                "pending_update_count": len(self._queue),
            }
            if self._webhook:
                info["max_connections"] = self._webhook["max_connections"]
                info["ip_address"] = "127.0.0.1"
                if self._webhook.get("allowed_updates"):
                    info["allowed_updates"] = self._webhook["allowed_updates"]
        return info

    @staticmethod
    def _commands_key(params: JSONDict) -> str:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps([scope, params.get("language_code") or ""], sort_keys=True)

    def _m_set_my_commands(self, params: JSONDict, files: dict[str, _Part]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            if not _BOT_COMMAND_RE.fullmatch(str(command.get("command", ""))):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        with self._cond:
            self._commands[self._commands_key(params)] = commands
        return True

    def _m_get_my_commands(self, params: JSONDict, files: dict[str, _Part]) -> list[JSONDict]:
        with self._cond:
            return self._commands.get(self._commands_key(params), [])

    def _m_delete_my_commands(self, params: JSONDict, files: dict[str, _Part]) -> bool:
        with self._cond:
            self._commands.pop(self._commands_key(params), None)
        return True

    def _m_send_message(self, params: JSONDict, files: dict[str, _Part]) -> JSONDict:
        chat = self._resolve_chat(params)
        text = params.get("text")
        if text is None or str(text).strip() == "":
            raise _ApiError(400, "Bad Request: message text is empty")
        text = str(text)
        self._check_text(text, params.get("parse_mode"))
        self._check_markup(params.get("reply_markup"))
        message = self._new_bot_message(chat, params, text=text)
        self._record_sent("sendMessage", message, params, text)
        return message

    def _m_edit_message_text(self, params: JSONDict, files: dict[str, _Part]) -> JSONDict | bool:
        text = params.get("text")
        if text is None or str(text).strip() == "":
            raise _ApiError(400, "Bad Request: message text is empty")
        text = str(text)
        self._check_text(text, params.get("parse_mode"))
        markup = self._check_markup(params.get("reply_markup"))
        with self._cond:
            target = self._edit_target(params)
            if target is None:
                return True
            _, message = target
            if (
                self.strict
                and message.get("text") == text
                and message.get("reply_markup") == markup
            ):
                raise self._not_modified()
            message["text"] = text
            message["edit_date"] = int(time.time())
            # Like Telegram: an edit without reply_markup removes the inline keyboard.
            if markup is not None and "inline_keyboard" in markup:
                message["reply_markup"] = markup
            else:
                message.pop("reply_markup", None)
            self._record_sent("editMessageText", message, params, text)
            return message

    def _m_edit_message_reply_markup(
        self, params: JSONDict, files: dict[str, _Part]
    ) -> JSONDict | bool:
        markup = self._check_markup(params.get("reply_markup"))
        with self._cond:
            target = self._edit_target(params)
            if target is None:
                return True
            _, message = target
            if self.strict and message.get("reply_markup") == markup:
                raise self._not_modified()
            if markup is not None and "inline_keyboard" in markup:
                message["reply_markup"] = markup
            else:
                message.pop("reply_markup", None)
            message["edit_date"] = int(time.time())
            return message

    def _m_delete_message(self, params: JSONDict, files: dict[str, _Part]) -> bool:
        chat = self._resolve_chat(params)
        key = (chat["id"], _as_int(params.get("message_id")) or -1)
        with self._cond:
            if self._messages.pop(key, None) is None:
                raise _ApiError(400, "Bad Request: message to delete not found")
        return True

    def _m_answer_callback_query(self, params: JSONDict, files: dict[str, _Part]) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        with self._cond:
            # Unknown or already answered ids are rejected by Telegram the same way.
            if self.strict and self._callback_ids.get(query_id, True):
                raise _ApiError(
                    400,
                    "Bad Request: query is too old and response timeout expired "
                    "or query ID is invalid",
                )
            self._callback_ids[query_id] = True
            self._answered.append(
                AnsweredCallback(
                    callback_query_id=query_id,
                    text=params.get("text"),
                    show_alert=_as_bool(params.get("show_alert")),
                    url=params.get("url"),
                    time=_now(),
                )
            )
        return True

    def _m_send_chat_action(self, params: JSONDict, files: dict[str, _Part]) -> bool:
        chat = self._resolve_chat(params)
        action = str(params.get("action") or "")
        if action not in _CHAT_ACTIONS:
            raise _ApiError(400, "Bad Request: wrong parameter action in request")
        with self._cond:
            self._actions.append(ChatAction(chat_id=chat["id"], action=action, time=_now()))
        return True

    def _m_send_photo(self, params: JSONDict, files: dict[str, _Part]) -> JSONDict:
        return self._send_media("sendPhoto", "photo", "photo", "jpg", params, files)

    def _m_send_document(self, params: JSONDict, files: dict[str, _Part]) -> JSONDict:
        return self._send_media("sendDocument", "document", "document", "bin", params, files)

    def _m_send_voice(self, params: JSONDict, files: dict[str, _Part]) -> JSONDict:
        return self._send_media("sendVoice", "voice", "voice", "oga", params, files)

    def _m_get_file(self, params: JSONDict, files: dict[str, _Part]) -> JSONDict:
        with self._cond:
            stored = self._files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }

    # ------------------------------------------------------------------ control API

    def _handle_control(self, verb: str, route: str, query: str, body: bytes) -> tuple[int, Any]:
        """Tiny JSON API so demos/benchmarks in other processes can drive the fake."""
        args: JSONDict = dict(urllib.parse.parse_qsl(query))
        if body:
            try:
                decoded = json.loads(body)
            except ValueError:
                return 400, {"ok": False, "error": "body must be JSON"}
            if isinstance(decoded, dict):
                args.update(decoded)
        try:
            if verb == "POST" and route == "send_text":
                update_id = self.send_text(
                    int(args["user_id"]),
                    str(args["text"]),
                    language_code=args.get("language_code", "en"),
                    first_name=args.get("first_name"),
                    chat_type=args.get("chat_type", "private"),
                    chat_id=_as_int(args.get("chat_id")),
                )
                return 200, {"ok": True, "update_id": update_id}
            if verb == "POST" and route == "press":
                update_id = self.press_button_by_text(
                    int(args["user_id"]), str(args["text"]), chat_id=_as_int(args.get("chat_id"))
                )
                return 200, {"ok": True, "update_id": update_id}
            if verb == "POST" and route == "send_media":
                update_id = self.send_media(int(args["user_id"]), str(args["kind"]))
                return 200, {"ok": True, "update_id": update_id}
            if verb == "POST" and route == "reset":
                self.reset()
                return 200, {"ok": True}
            if verb == "GET" and route == "messages":
                chat_id = _as_int(args.get("chat_id"))
                count = _as_int(args.get("count"))
                if count is not None and chat_id is not None:
                    timeout = float(args.get("timeout", 10))
                    try:
                        self.wait_for_messages(chat_id, count, timeout)
                    except AssertionError:
                        pass  # return what we have; the caller checks the length
                return 200, [m.to_dict() for m in self.sent_messages(chat_id)]
            if verb == "GET" and route == "calls":
                return 200, [dataclasses.asdict(c) for c in self.calls]
            if verb == "GET" and route == "latency":
                update_id = int(args["update_id"])
                return 200, {
                    "update_id": update_id,
                    "served_at": self.served_at(update_id),
                    "replied_at": self.reply_time(update_id),
                    "latency": self.reply_latency(update_id),
                }
        except KeyError as err:
            return 400, {"ok": False, "error": f"missing field {err}"}
        except ValueError as err:
            return 404, {"ok": False, "error": str(err)}
        return 404, {"ok": False, "error": f"unknown control route {verb} /_control/{route}"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Telegram Bot API for demos and benchmarks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--any-token", action="store_true", help="accept every bot token")
    parser.add_argument("--lenient", action="store_true", help="disable Telegram-style validation")
    parser.add_argument("--quiet", action="store_true", help="do not log bot calls")
    args = parser.parse_args(argv)
    fake = FakeBotAPI(
        args.token,
        host=args.host,
        port=args.port,
        accept_any_token=args.any_token,
        strict=not args.lenient,
        log_calls=not args.quiet,
    )
    with fake:
        print(f"fake Telegram Bot API on {fake.root_url}", flush=True)
        print(f"  base_url={fake.base_url}  base_file_url={fake.base_file_url}  token={fake.token}")
        print(f'  control: POST {fake.root_url}/_control/send_text {{"user_id":1,"text":"hi"}}')
        print(f'           POST {fake.root_url}/_control/press {{"user_id":1,"text":"Yes"}}')
        print(
            f"           GET  {fake.root_url}/_control/messages?chat_id=1  |  /_control/calls",
            flush=True,
        )
        # SIGTERM (e.g. from `make` or a process manager) shuts down as cleanly as Ctrl-C.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            print("stopping", flush=True)


if __name__ == "__main__":
    main()
