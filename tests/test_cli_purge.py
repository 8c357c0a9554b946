"""`earshot purge` from cron: deletes old conversation data, keeps feedback, is repeatable."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from earshot.settings import ROOT
from earshot.storage.db import migrate, session_scope
from earshot.storage.models import Feedback, InboxMessage, ProcessedUpdate, utcnow


def test_purge_deletes_old_conversation_data_and_keeps_feedback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    migrate(url)
    old = utcnow() - timedelta(days=400)
    with session_scope(url) as s:
        s.add(ProcessedUpdate(bot_id=1, update_id=1, processed_at=old))
        s.add(ProcessedUpdate(bot_id=1, update_id=2))
        s.add(InboxMessage(customer_key="k", chat_id="1", text="old", created_at=old, done_at=old))
        s.add(
            Feedback(
                ref="LH-AAAA",
                channel="telegram",
                source="chat",
                type="idea",
                category="innovation",
                description="keep me",
                created_at=old,
            )
        )
    env = {**os.environ, "DATABASE_URL": url, "RETENTION_DAYS": "180"}
    cmd = [sys.executable, "-m", "earshot", "purge"]
    first = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "older than 180 days" in first.stdout
    second = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0 and ": 0 rows" in second.stdout
    with session_scope(url) as s:
        assert s.scalar(select(func.count()).select_from(ProcessedUpdate)) == 1
        assert s.scalar(select(func.count()).select_from(InboxMessage)) == 0
        assert s.scalar(select(Feedback.description)) == "keep me"
