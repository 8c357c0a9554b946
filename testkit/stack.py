"""Start the whole product (`earshot run`: action server, Rasa, Telegram bot) for tests.

The bot talks to a FakeBotAPI; everything else is real: Rasa with the trained model,
the action server, and a database of the test's own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from earshot.privacy.identity import user_key
from earshot.settings import ROOT
from testkit.telegram_api import FakeBotAPI

MODEL = ROOT / "models" / "earshot.tar.gz"
SECRET = "test-secret-0123456789abcdef"
SUPPORT_CHAT_ID = -100777
TEAM_USER_ID = 9001


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, **overrides: object) -> Path:
    """The shipped config.yml with test overrides (support chat, team)."""
    data = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    data.update({"support_chat_id": SUPPORT_CHAT_ID, "team": [TEAM_USER_ID]})
    # Campaigns run in a window; keep the shipped ones active whatever day the tests run.
    now = datetime.now(timezone.utc)
    for campaign in data.get("campaigns", []):
        campaign["starts"] = (now - timedelta(days=1)).isoformat()
        campaign["ends"] = (now + timedelta(days=30)).isoformat()
    data.update(overrides)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@dataclass
class Stack:
    fake: FakeBotAPI
    env: dict[str, str]
    db_url: str
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    def key(self, telegram_user_id: int) -> str:
        return user_key(SECRET, "telegram", telegram_user_id)

    @property
    def log(self) -> str:
        parts = []
        for name in ("supervisor.log", "data/logs/rasa.log", "data/logs/actions.log"):
            p = self.workdir / name
            if p.exists():
                parts.append(
                    f"--- {name} ---\n"
                    + "\n".join(p.read_text(errors="replace").splitlines()[-40:])
                )
        return "\n".join(parts)

    def start(self, timeout: float = 240.0) -> None:
        log = open(self.workdir / "supervisor.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "earshot", "run"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not self.fake.calls_to("getUpdates"):
            if self.proc.poll() is not None:
                raise RuntimeError(f"earshot run exited with {self.proc.returncode}\n{self.log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the bot did not start polling\n{self.log}")
            time.sleep(0.2)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def stack_env(fake: FakeBotAPI, workdir: Path, db_url: str, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "RASA_", "DATABASE_"))
    }
    env.update(
        {
            "EARSHOT_CONFIG": str(write_config(workdir / "config.yml")),
            "DATA_DIR": str(workdir / "data"),
            "DATABASE_URL": db_url,
            "EARSHOT_SECRET": SECRET,
            "RASA_URL": f"http://127.0.0.1:{free_port()}",
            "RASA_TOKEN": "test-rasa-token",
            "ACTION_SERVER_PORT": str(free_port()),
            "WEB_PORT": str(free_port()),
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_API_BASE_URL": fake.base_url,
            "RASA_TELEMETRY_ENABLED": "false",
            "LOG_LEVEL": "INFO",
            "TYPING_AFTER_S": "0",  # always: the tests check that it is shown
            # Far below the default, so every end-to-end flow also crosses session rollovers.
            "SESSION_MAX_EVENTS": "60",
            # The flows send faster than a person types; tests/e2e/test_doors.py tests the limit.
            "CUSTOMER_MESSAGES_PER_MINUTE": "0",
        }
    )
    env.update(extra)
    return env


@contextmanager
def running_stack(workdir: Path, db_url: str | None = None, **env: str) -> Iterator[Stack]:
    if not MODEL.exists():
        raise RuntimeError(f"no trained model at {MODEL}: run `make train` (make test does)")
    workdir.mkdir(parents=True, exist_ok=True)
    url = db_url or f"sqlite:///{workdir / 'data' / 'earshot.db'}"
    with FakeBotAPI() as fake:
        stack = Stack(
            fake=fake, env=stack_env(fake, workdir, url, **env), db_url=url, workdir=workdir
        )
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()
