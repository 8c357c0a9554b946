"""Erasure reaches every store (database, inbox chat ids, local spools) and operators can
erase on request from the command line (`earshot erase`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from earshot.privacy.erasure import erase_spooled, search_everywhere
from earshot.privacy.identity import user_key
from earshot.settings import ROOT
from earshot.storage.db import make_engine, migrate, session_scope
from earshot.storage.models import Customer, Feedback, InboxMessage
from earshot.storage.spool import Spool

SECRET = "test-secret-0123456789abcdef"
TELEGRAM_ID = 4_242_4242


def _seed(url: str, data_dir: Path, key: str, other: str) -> None:
    """A customer (and a bystander) present in every store, as while the database was down."""
    migrate(url)
    with session_scope(url) as s:
        for k, chat in ((key, str(TELEGRAM_ID)), (other, "777001")):
            s.add(Customer(user_key=k, channel="telegram", chat_id=chat))
            word = "Koala42" if k == key else "Emu17"
            s.add(InboxMessage(customer_key=k, chat_id=chat, text=f"where is my order {word}"))
        s.add(
            Feedback(
                ref="LH-ERAS",
                channel="telegram",
                source="chat",
                type="idea",
                category="innovation",
                description="a dimmer for the Koala42 lamp",
                customer_key=key,
            )
        )
    inbox = Spool(data_dir / "spool" / "inbox")
    updates = Spool(data_dir / "spool" / "updates")
    for k, chat in ((key, str(TELEGRAM_ID)), (other, "777001")):
        word = "Koala42" if k == key else "Emu17"
        inbox.put({"customer_key": k, "chat_id": chat, "text": f"{word} again", "meta": {}})
        updates.put({"customer_key": k, "update": {"message": {"chat": {"id": int(chat)}}}})


def _spooled(data_dir: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((data_dir / "spool").rglob("*.json")))


def test_erase_spooled_removes_only_that_customers_entries(tmp_path: Path) -> None:
    key, other = "k" * 32, "o" * 32
    _seed(f"sqlite:///{tmp_path / 'e.db'}", tmp_path, key, other)
    assert erase_spooled(tmp_path / "spool", customer_key=key) == 2
    left = _spooled(tmp_path)
    assert key not in left and str(TELEGRAM_ID) not in left and "Koala42" not in left
    assert left.count(other) == 2  # the bystander's messages still wait to be replayed
    assert erase_spooled(tmp_path / "spool", customer_key=key) == 0
    assert erase_spooled(tmp_path / "nothing-here", customer_key=key) == 0


def _erase(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DATA_DIR": str(tmp_path),
        "EARSHOT_SECRET": SECRET,
        "EARSHOT_CONFIG": str(tmp_path / "none.yml"),
    }
    return subprocess.run(
        [sys.executable, "-m", "earshot", "erase", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_operator_erases_a_telegram_customer_from_every_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    key = user_key(SECRET, "telegram", TELEGRAM_ID)
    other = user_key(SECRET, "telegram", 777001)
    _seed(url, tmp_path, key, other)

    out = _erase(tmp_path, url, "--telegram-id", str(TELEGRAM_ID), "--everything")
    assert out.returncode == 0, out.stderr
    assert f"erased everything of customer {key}" in out.stdout
    assert "spool files: 2" in out.stdout

    engine = make_engine(url)
    try:
        # The raw chat id (customers and inbox.chat_id), the key and the texts are gone ...
        assert search_everywhere(engine, [str(TELEGRAM_ID), key, "Koala42"]) == []
        # ... and the bystander's are not.
        assert ("inbox", "chat_id") in search_everywhere(engine, ["777001"])
    finally:
        engine.dispose()
    left = _spooled(tmp_path)
    assert key not in left and str(TELEGRAM_ID) not in left and other in left


def test_operator_erases_personal_data_by_key_and_keeps_the_idea(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    key = user_key(SECRET, "web", "a-web-chat-cookie-value")
    _seed(url, tmp_path, key, "o" * 32)
    out = _erase(tmp_path, url, "--customer-key", key, "--personal-data")
    assert out.returncode == 0, out.stderr
    assert "personal data" in out.stdout and "unlinked feedback: 1" in out.stdout
    engine = make_engine(url)
    try:
        assert search_everywhere(engine, [key, str(TELEGRAM_ID)]) == []
    finally:
        engine.dispose()
    with session_scope(url) as s:
        kept = s.query(Feedback).one()
        assert kept.customer_key is None and "dimmer" in kept.description
    assert key not in _spooled(tmp_path)


def test_erase_needs_a_customer_and_a_choice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    migrate(url)
    missing_choice = _erase(tmp_path, url, "--telegram-id", "1")
    assert missing_choice.returncode == 2 and "--everything" in missing_choice.stderr
    missing_who = _erase(tmp_path, url, "--everything")
    assert missing_who.returncode == 2 and "--telegram-id" in missing_who.stderr


def test_the_search_reads_binary_columns_too(tmp_path: Path) -> None:
    """Vectors stored as bytes (theme models) are searched, not a reason to fail."""
    from earshot.storage.models import ThemeModel

    url = f"sqlite:///{tmp_path / 'e.db'}"
    migrate(url)
    with session_scope(url) as s:
        s.add(ThemeModel(language="en", idf={}, mean=b"\x80\xff\x00 Koala42 \x9c", documents=1))
        s.add(ThemeModel(language="nl", idf={}, mean=bytes(range(256)), documents=1))
    engine = make_engine(url)
    try:
        assert search_everywhere(engine, ["Koala42"]) == [("theme_models", "mean")]
        assert search_everywhere(engine, ["Emu17"]) == []
    finally:
        engine.dispose()
