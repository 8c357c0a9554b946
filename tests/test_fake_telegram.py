"""Drives a real PTB Application against the fake Telegram Bot API."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import NetworkError, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from testkit.telegram_api import FakeBotAPI

DOC_BYTES = b"\x00report\r\n\xff bytes"


@dataclass
class Seen:
    """What the bot's handlers observed."""

    update_ids: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    start_args: list[list[str]] = field(default_factory=list)


def _build_app(fake: FakeBotAPI, seen: Seen) -> Application[Any, Any, Any, Any, Any, Any]:
    app = (
        ApplicationBuilder()
        .token(fake.token)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .rate_limiter(AIORateLimiter(max_retries=2))
        .build()
    )

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.update_ids.append(update.update_id)
        data = update.to_dict()
        seen.kinds.append(next(k for k in data if k != "update_id"))
        message = update.effective_message
        if message is not None and update.message is not None:
            for kind in ("photo", "voice", "video", "sticker", "document", "location", "contact"):
                if getattr(message, kind):
                    seen.kinds.append(kind)
            if message.poll:
                seen.kinds.append("poll")

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.start_args.append(list(context.args or []))
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"welcome {' '.join(context.args or [])}")

    async def doc(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_document(DOC_BYTES, filename="report.bin")

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Ping", callback_data="ping")]])
        await update.message.reply_text(f"echo: {update.message.text}", reply_markup=keyboard)

    async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("pong")
        await query.edit_message_text(f"pressed {query.data}")

    app.add_handler(TypeHandler(Update, record), group=-1)
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("doc", doc))
    app.add_handler(
        MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND, echo)
    )
    app.add_handler(CallbackQueryHandler(button))
    return app


@pytest.fixture
def fake() -> Iterator[FakeBotAPI]:
    with FakeBotAPI() as server:
        yield server


@pytest_asyncio.fixture
async def polling_bot(
    fake: FakeBotAPI,
) -> AsyncIterator[tuple[Application[Any, Any, Any, Any, Any, Any], Seen]]:
    seen = Seen()
    app = _build_app(fake, seen)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield app, seen
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.asyncio
async def test_echo_button_and_latency(fake: FakeBotAPI, polling_bot: Any) -> None:
    update_id = fake.send_text(1001, "hello")
    [reply] = await fake.await_messages(1001, 1)
    assert reply.method == "sendMessage"
    assert reply.text == "echo: hello"
    assert reply.button_texts == ["Ping"]
    latency = fake.reply_latency(update_id)
    assert latency is not None and latency >= 0

    fake.press_button_by_text(1001, "Ping")
    answered = await fake.await_for(lambda: fake.answered_callbacks)
    assert answered[0].text == "pong"
    messages = await fake.await_messages(1001, 2)
    assert messages[1].method == "editMessageText"
    assert messages[1].text == "pressed ping"
    current = fake.bot_message(1001, reply.message_id)
    assert current is not None and "reply_markup" not in current  # edit dropped the keyboard


@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # PTB-internal
async def test_429_is_retried_and_delivered_once(fake: FakeBotAPI, polling_bot: Any) -> None:
    fake.inject_error("sendMessage", count=1, error_code=429, retry_after=1)
    fake.send_text(1002, "retry me")
    await fake.await_messages(1002, 1)
    await fake.await_for(lambda: len(fake.calls_to("sendMessage")) >= 2)
    assert [c.status for c in fake.calls_to("sendMessage")] == [429, 200]
    assert [m.text for m in fake.sent_messages(1002)] == ["echo: retry me"]


@pytest.mark.asyncio
async def test_redelivered_update_reaches_bot_twice(fake: FakeBotAPI, polling_bot: Any) -> None:
    _, seen = polling_bot
    update_id = fake.send_text(1003, "once")
    await fake.await_messages(1003, 1)
    fake.redeliver(update_id)
    await fake.await_for(lambda: seen.update_ids.count(update_id) == 2)
    await fake.await_messages(1003, 2)
    # A newer update after the redelivery must still arrive exactly once.
    newer = fake.send_text(1003, "twice?")
    await fake.await_messages(1003, 3)
    assert seen.update_ids.count(newer) == 1


@pytest.mark.asyncio
async def test_command_entities_give_args(fake: FakeBotAPI, polling_bot: Any) -> None:
    _, seen = polling_bot
    fake.send_text(1004, "/start fb-bulb")
    [reply] = await fake.await_messages(1004, 1)
    assert seen.start_args == [["fb-bulb"]]
    assert reply.text == "welcome fb-bulb"


@pytest.mark.asyncio
async def test_multipart_document_upload_and_download(fake: FakeBotAPI, polling_bot: Any) -> None:
    app, _ = polling_bot
    fake.send_text(1005, "/doc")
    [document] = await fake.await_for(lambda: fake.documents)
    assert document.filename == "report.bin"
    assert document.content == DOC_BYTES
    assert document.chat_id == 1005

    tg_file = await app.bot.get_file(document.file_id)
    assert bytes(await tg_file.download_as_bytearray()) == DOC_BYTES


@pytest.mark.asyncio
async def test_other_update_kinds_reach_bot(fake: FakeBotAPI, polling_bot: Any) -> None:
    _, seen = polling_bot
    fake.send_text(1006, "first")
    for kind in ("photo", "voice", "video", "sticker", "document", "location", "contact", "poll"):
        fake.send_media(1006, kind)
    fake.send_edited_text(1006, "first, edited")
    fake.send_channel_post(-1001234, "news")
    fake.send_group_text(1006, "hi group", chat_id=-1005678)
    expected = {
        "photo", "voice", "video", "sticker", "document", "location", "contact", "poll",
        "edited_message", "channel_post",
    }  # fmt: skip
    await fake.await_for(lambda: expected <= set(seen.kinds), message=f"kinds {expected}")
    group_replies = await fake.await_messages(-1005678, 1)
    assert group_replies[0].text == "echo: hi group"


@pytest.mark.asyncio
async def test_disconnect_and_unknown_method(fake: FakeBotAPI, polling_bot: Any) -> None:
    app, _ = polling_bot
    fake.inject_disconnect("sendMessage")
    with pytest.raises(NetworkError):
        await app.bot.send_message(1007, "lost")
    await app.bot.send_message(1007, "kept")
    assert [m.text for m in fake.sent_messages(1007)] == ["kept"]
    assert [c.status for c in fake.calls_to("sendMessage")] == [0, 200]

    with pytest.raises(TelegramError, match="not found"):
        await app.bot.do_api_request("notAMethod")
    assert [c.method for c in fake.unknown_methods] == ["notAMethod"]


@pytest.mark.asyncio
async def test_webhook_delivery(fake: FakeBotAPI) -> None:
    seen = Seen()
    app = _build_app(fake, seen)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/hook"
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_webhook(
        listen="127.0.0.1", port=port, url_path="hook", webhook_url=url, secret_token="s3cret"
    )
    try:
        assert fake.webhook_url == url
        update = fake.build_text_update(1008, "via hook")
        # Blocking client: run it off the loop, which also serves the webhook.
        assert await asyncio.to_thread(fake.deliver_via_webhook, url, update, "s3cret") == 200
        [reply] = await fake.await_messages(1008, 1)
        assert reply.text == "echo: via hook"
        bad = fake.build_text_update(1008, "forged")
        assert await asyncio.to_thread(fake.deliver_via_webhook, url, bad, "wrong") == 403
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


def test_long_polling_offsets_and_limits(fake: FakeBotAPI) -> None:
    api = f"{fake.base_url}{fake.token}"
    with httpx.Client(timeout=10) as client:

        def get_updates(**params: Any) -> list[dict[str, Any]]:
            response = client.post(f"{api}/getUpdates", data={k: str(v) for k, v in params.items()})
            body = response.json()
            assert body["ok"], body
            result: list[dict[str, Any]] = body["result"]
            return result

        assert get_updates(timeout=0) == []
        # A long poll returns as soon as an update arrives, well before its timeout.
        timer = threading.Timer(0.2, fake.send_text, args=(1, "wake up"))
        timer.start()
        started = time.monotonic()
        [first] = get_updates(timeout=8)
        assert time.monotonic() - started < 6
        timer.join()

        second, third = fake.send_text(1, "two"), fake.send_text(1, "three")
        # Unconfirmed updates are served again; limit caps the batch.
        assert [u["update_id"] for u in get_updates(offset=first["update_id"], limit=1)] == [
            first["update_id"]
        ]
        assert [u["update_id"] for u in get_updates(offset=second)] == [second, third]
        assert get_updates(offset=third + 1, timeout=0) == []
        assert fake.served_at(second) is not None


def test_control_api_and_validation(fake: FakeBotAPI) -> None:
    api = f"{fake.base_url}{fake.token}"
    keyboard = json.dumps({"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]})
    with httpx.Client(timeout=10) as client:
        sent = client.post(
            f"{api}/sendMessage", data={"chat_id": "5", "text": "Sure?", "reply_markup": keyboard}
        ).json()
        assert (
            sent["ok"] and sent["result"]["reply_markup"]["inline_keyboard"][0][0]["text"] == "Yes"
        )
        bad_html = client.post(
            f"{api}/sendMessage", data={"chat_id": "5", "text": "a<br>b", "parse_mode": "HTML"}
        )
        assert (
            bad_html.status_code == 400 and "can't parse entities" in bad_html.json()["description"]
        )
        long_data = json.dumps({"inline_keyboard": [[{"text": "x", "callback_data": "x" * 65}]]})
        bad_button = client.post(
            f"{api}/sendMessage", data={"chat_id": "5", "text": "t", "reply_markup": long_data}
        )
        assert bad_button.json()["description"] == "Bad Request: BUTTON_DATA_INVALID"

    def control(path: str, payload: dict[str, Any] | None = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(f"{fake.root_url}/_control/{path}", data=data)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    assert control("send_text", {"user_id": 5, "text": "hi", "language_code": "de"})["ok"]
    assert control("press", {"user_id": 5, "text": "Yes"})["ok"]
    assert fake.pending_updates == 2
    messages = control("messages?chat_id=5")
    assert [m["text"] for m in messages] == ["Sure?"] and messages[0]["buttons"] == ["Yes"]
    assert [c["method"] for c in control("calls")].count("sendMessage") == 3
