"""`make run`: start the action server, Rasa and the channel; stop them all together.

Each part runs as a child process. The supervisor waits until each is healthy before
the channel takes messages; if any part dies, it stops the rest and says which and why.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from earshot.settings import ROOT, ConfigError, Settings, load_settings
from earshot.storage.db import migrate

RASA_BIN = ROOT / ".venv-rasa" / "bin" / "rasa"
MODEL = ROOT / "models" / "earshot.tar.gz"


def rasa_db_url(app_url: str) -> str:
    """Rasa 3.6 uses SQLAlchemy 1.4 with psycopg2: drop our psycopg 3 driver suffix."""
    return app_url.replace("postgresql+psycopg://", "postgresql://")


def write_endpoints(
    settings: Settings,
    path: Path,
    action_port: int | None = None,
    lock_key_prefix: str = "earshot",
) -> Path:
    """Rasa's endpoints.yml, derived from our settings so there is one source of truth.

    With `redis_url` set, Rasa servers that share the Redis lock store and the SQL tracker
    store may serve the same conversations; `lock_key_prefix` (letters and digits) keeps
    separate deployments (or test runs) on one Redis apart.
    """
    url = rasa_db_url(settings.db_url)
    port = action_port or settings.action_server_port
    endpoints: dict[str, object] = {
        "action_endpoint": {
            "url": settings.action_endpoint_url or f"http://127.0.0.1:{port}/webhook"
        },
        "tracker_store": {
            # Rasa's SQL store plus the indexes its per-turn queries need.
            "type": "channels.tracker_store.IndexedSQLTrackerStore",
            "dialect": "sqlite" if url.startswith("sqlite") else "postgresql",
            "url": url,
        },
    }
    if settings.redis_url:
        from urllib.parse import urlsplit

        r = urlsplit(settings.redis_url)
        lock_store: dict[str, object] = {
            # Rasa's own "redis" store is unsafe with several servers (see the module).
            "type": "channels.lock_store.AtomicRedisLockStore",
            "url": r.hostname or "127.0.0.1",
            "port": r.port or 6379,
            "db": int((r.path or "/0").strip("/") or 0),
            "key_prefix": lock_key_prefix,
        }
        if r.password:
            lock_store["password"] = r.password
        endpoints["lock_store"] = lock_store
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(endpoints, sort_keys=True), encoding="utf-8")
    return path


@dataclass
class Part:
    name: str
    argv: list[str]
    env: dict[str, str]
    health_url: str | None
    log_path: Path | None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        out = open(self.log_path, "ab") if self.log_path else None
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            stdin=None if self.log_path is None else subprocess.DEVNULL,
            start_new_session=self.log_path is not None,
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 15) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own loopback URL
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_healthy(parts: list[Part], timeout: float) -> None:
    """Wait until every part with a health URL answers, all at once (they start in
    parallel; Rasa's start-up dominates). A part that dies or stays unhealthy past
    `timeout` raises with the tail of its log."""
    deadline = time.monotonic() + timeout
    pending = [p for p in parts if p.health_url]
    while pending:
        for part in list(pending):
            if not part.alive():
                raise RuntimeError(f"{part.name} died:\n{part.tail(40)}")
            assert part.health_url is not None
            if healthy(part.health_url):
                pending.remove(part)
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"{pending[0].name} not healthy:\n{pending[0].tail(40)}")
        time.sleep(0.5)


def build_parts(
    settings: Settings,
    *,
    rasa_port: int = 5005,
    log_dir: Path,
    base_env: dict[str, str] | None = None,
    lock_key_prefix: str = "earshot",
) -> list[Part]:
    env = dict(os.environ if base_env is None else base_env)
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "rasa_project")])
    env["EARSHOT_SESSION_MAX_EVENTS"] = str(settings.session_max_events)  # read by our channel
    endpoints = write_endpoints(
        settings, settings.data_dir / "run" / "endpoints.yml", lock_key_prefix=lock_key_prefix
    )
    action_port = settings.action_server_port
    actions = Part(
        "action server",
        [sys.executable, "-m", "actions"],
        {**env, "ACTION_SERVER_PORT": str(action_port), "SANIC_HOST": "127.0.0.1"},
        f"http://127.0.0.1:{action_port}/health",
        log_dir / "actions.log",
    )
    rasa = Part(
        "Rasa server",
        [
            str(RASA_BIN),
            "run",
            "--model",
            str(settings.rasa_model or MODEL),
            "--endpoints",
            str(endpoints),
            "--credentials",
            str(ROOT / "rasa_project" / "credentials.yml"),
            "--interface",
            "127.0.0.1",
            "--port",
            str(rasa_port),
            "--enable-api",
            "--auth-token",
            settings.rasa_token.get_secret_value(),
        ],
        env,
        f"http://127.0.0.1:{rasa_port}/",
        log_dir / "rasa.log",
    )
    web = Part(
        "dashboard",
        [sys.executable, "-m", "earshot", "web", "--port", str(settings.web_port)],
        env,
        f"http://127.0.0.1:{settings.web_port}/healthz",
        log_dir / "web.log",
    )
    return [actions, rasa, web]


def channel_part(settings: Settings, log_dir: Path, base_env: dict[str, str] | None = None) -> Part:
    env = {**(os.environ if base_env is None else base_env), "PYTHONPATH": str(ROOT)}
    if settings.telegram_bot_token:
        # Supervised, containerised or headless: no terminal needed; log to stdout.
        return Part("Telegram bot", [sys.executable, "-m", "bot"], env, None, None)
    return Part("terminal chat", [sys.executable, "-m", "bot.terminal"], env, None, None)


def run(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"earshot: {exc}", file=sys.stderr)
        return 2
    model = settings.rasa_model or MODEL
    if not model.exists():
        print(f"earshot: no trained model at {model}; run `make train`", file=sys.stderr)
        return 2
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.db_url)
    from urllib.parse import urlsplit

    parts = build_parts(
        settings, rasa_port=urlsplit(settings.rasa_url).port or 5005, log_dir=log_dir
    )
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        for part in parts:
            print(f"earshot: starting {part.name} (log: {part.log_path})", flush=True)
            part.start()
        deadline = time.monotonic() + 300
        pending = [p for p in parts if p.health_url]
        while pending and not stopping:
            for part in list(pending):
                if not part.alive():
                    return _died(part, parts)
                assert part.health_url is not None
                if healthy(part.health_url):
                    print(f"earshot: {part.name} is up", flush=True)
                    pending.remove(part)
            if time.monotonic() > deadline:
                print(f"earshot: timed out waiting for {pending[0].name}", file=sys.stderr)
                return _shutdown(parts, 1)
            time.sleep(0.5)
        if stopping:
            return _shutdown(parts, 0)
        channel = channel_part(settings, log_dir)
        parts.append(channel)
        print(f"earshot: starting {channel.name}", flush=True)
        channel.start()
        while not stopping:
            for part in parts:
                if not part.alive():
                    if part is channel and part.proc is not None and part.proc.returncode == 0:
                        return _shutdown(parts, 0)  # the chat was closed by the user
                    return _died(part, parts)
            time.sleep(0.5)
        return _shutdown(parts, 0)
    finally:
        for part in parts:
            part.stop()


def _died(part: Part, parts: list[Part]) -> int:
    code = part.proc.returncode if part.proc else None
    print(f"\nearshot: {part.name} died (exit code {code}); stopping everything.", file=sys.stderr)
    tail = part.tail()
    if tail:
        print(f"--- last lines of {part.log_path} ---\n{tail}", file=sys.stderr)
    return _shutdown(parts, 1)


def _shutdown(parts: list[Part], code: int) -> int:
    for part in reversed(parts):
        part.stop()
    return code


if __name__ == "__main__":
    sys.exit(run())
