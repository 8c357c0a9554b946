"""`make run`: start the action server, Rasa and the channel; stop them all together.

Each part runs as a child process. The supervisor waits until each is healthy before
the channel takes messages; if any part dies, it stops the rest and says which and why.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from earshot.cli.progress import phase
from earshot.settings import ROOT, ConfigError, Settings, check_exposed_secret, load_settings
from earshot.storage.db import migrate

RASA_BIN = ROOT / ".venv-rasa" / "bin" / "rasa"
TOKEN_HEADER = "X-Earshot-Token"  # noqa: S105 - the internal services' shared-secret header
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
            "url": settings.action_endpoint_url or f"http://127.0.0.1:{port}/webhook",
            # The action server answers 401 without the shared secret (actions/__main__.py).
            "headers": {TOKEN_HEADER: settings.rasa_token.get_secret_value()},
        },
        "tracker_store": {
            # Rasa's SQL store plus the indexes its per-turn queries need.
            "type": "addons.tracker_store.IndexedSQLTrackerStore",
            "dialect": "sqlite" if url.startswith("sqlite") else "postgresql",
            "url": url,
        },
    }
    if settings.redis_url:
        from urllib.parse import urlsplit

        r = urlsplit(settings.redis_url)
        lock_store: dict[str, object] = {
            # Rasa's own "redis" store is unsafe with several servers (see the module).
            "type": "addons.lock_store.AtomicRedisLockStore",
            "url": r.hostname or "127.0.0.1",
            "port": r.port or 6379,
            "db": int((r.path or "/0").strip("/") or 0),
            "key_prefix": lock_key_prefix,
        }
        if r.password:
            lock_store["password"] = r.password
        endpoints["lock_store"] = lock_store
    path.parent.mkdir(parents=True, exist_ok=True)
    # It holds the shared secret and database and Redis passwords: owner only (0600),
    # also when the file was there before with wider permissions.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(yaml.safe_dump(endpoints, sort_keys=True))
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
    # The shared secret reaches Rasa and the action server in their environment, not
    # their command lines (which every local user can read).
    env["RASA_TOKEN"] = settings.rasa_token.get_secret_value()
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


def webhook_part(
    label: str,
    module: str,
    host: str,
    port: int,
    log_dir: Path,
    base_env: dict[str, str] | None,
    log_name: str | None = None,
) -> Part:
    """A channel's webhook process (python -m <module>), health-checked on /healthz and
    logging to <log_name or module>.log."""
    env = {**(os.environ if base_env is None else base_env), "PYTHONPATH": str(ROOT)}
    health_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    return Part(
        label,
        [sys.executable, "-m", module],
        env,
        f"http://{health_host}:{port}/healthz",
        log_dir / f"{log_name or module}.log",
    )


def whatsapp_part(
    settings: Settings, log_dir: Path, base_env: dict[str, str] | None = None
) -> Part:
    """The WhatsApp webhook (python -m whatsapp), when its variables are set."""
    host, port = settings.whatsapp_webhook_listen, settings.whatsapp_webhook_port
    return webhook_part("WhatsApp webhook", "whatsapp", host, port, log_dir, base_env)


def messenger_part(
    settings: Settings, log_dir: Path, base_env: dict[str, str] | None = None
) -> Part:
    """The Messenger (and Instagram) webhook (python -m messenger), when configured."""
    host, port = settings.messenger_webhook_listen, settings.messenger_webhook_port
    return webhook_part("Messenger webhook", "messenger", host, port, log_dir, base_env)


def x_part(settings: Settings, log_dir: Path, base_env: dict[str, str] | None = None) -> Part:
    """The X direct-message webhook (python -m xdm), when its variables are set."""
    host, port = settings.x_webhook_listen, settings.x_webhook_port
    return webhook_part("X webhook", "xdm", host, port, log_dir, base_env, log_name="x")


def port_in_use(host: str, port: int) -> bool:
    """Something already listens on host:port (a port only in TIME_WAIT counts as free)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def busy_port(settings: Settings, rasa_port: int) -> str | None:
    """One line naming the first port a part needs that is taken, and the setting that
    moves it; None when every port is free."""
    wanted = [
        ("127.0.0.1", rasa_port, "Rasa", "RASA_URL"),
        ("127.0.0.1", settings.action_server_port, "the action server", "ACTION_SERVER_PORT"),
        ("127.0.0.1", settings.web_port, "the dashboard", "WEB_PORT"),
    ]
    if settings.telegram_bot_token and settings.telegram_webhook_url:
        wanted.append(
            (
                settings.telegram_webhook_listen,
                settings.telegram_webhook_port,
                "the Telegram webhook",
                "TELEGRAM_WEBHOOK_PORT",
            )
        )
    if settings.whatsapp_enabled:
        wanted.append(
            (
                settings.whatsapp_webhook_listen,
                settings.whatsapp_webhook_port,
                "the WhatsApp webhook",
                "WHATSAPP_WEBHOOK_PORT",
            )
        )
    if settings.messenger_enabled:
        wanted.append(
            (
                settings.messenger_webhook_listen,
                settings.messenger_webhook_port,
                "the Messenger webhook",
                "MESSENGER_WEBHOOK_PORT",
            )
        )
    if settings.x_enabled:
        wanted.append(
            (settings.x_webhook_listen, settings.x_webhook_port, "the X webhook", "X_WEBHOOK_PORT")
        )
    for host, port, what, setting in wanted:
        if port_in_use(host, port):
            return (
                f"earshot: port {port} ({what}) is already in use; stop what is using it, "
                f"or set {setting} to another port (environment or .env)"
            )
    return None


def _dashboard_line(settings: Settings, users: bool) -> str:
    url = f"http://127.0.0.1:{settings.web_port}/"
    if users:
        return f"dashboard ready at {url} (log in with an account from `earshot users add`)"
    if settings.admin_password and settings.admin_password.get_secret_value():
        return f"dashboard ready at {url} (log in as admin with ADMIN_PASSWORD)"
    return (
        f"dashboard at {url} stays locked until a user is added (.venv/bin/earshot users add)"
        " or ADMIN_PASSWORD is set"
    )


def run(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load_settings()
        migrate(settings.db_url)
        check_exposed_secret(settings, listen_host="127.0.0.1", users_exist=_users(settings))
    except ConfigError as exc:
        print(f"earshot: {exc}", file=sys.stderr)
        return 2
    from urllib.parse import urlsplit

    rasa_port = urlsplit(settings.rasa_url).port or 5005
    busy = busy_port(settings, rasa_port)
    if busy:
        print(busy, file=sys.stderr)
        return 2
    model = settings.rasa_model or MODEL
    if not model.exists():
        print(f"earshot: no trained model at {model}; run `make train`", file=sys.stderr)
        return 2
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    parts = build_parts(settings, rasa_port=rasa_port, log_dir=log_dir)
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        phase(
            "starting the action server, Rasa (loading the model takes up to a minute) and the "
            f"dashboard; logs in {log_dir}/"
        )
        for part in parts:
            part.start()
        ready = {
            "action server": f"action server up on 127.0.0.1:{settings.action_server_port}",
            "Rasa server": f"Rasa up on 127.0.0.1:{rasa_port}",
            "dashboard": _dashboard_line(settings, _users(settings)),
        }
        deadline = time.monotonic() + 300
        pending = [p for p in parts if p.health_url]
        while pending and not stopping:
            for part in list(pending):
                if not part.alive():
                    return _died(part, parts)
                assert part.health_url is not None
                if healthy(part.health_url):
                    phase(ready.get(part.name, f"{part.name} up"))
                    pending.remove(part)
            if time.monotonic() > deadline:
                print(f"earshot: timed out waiting for {pending[0].name}", file=sys.stderr)
                return _shutdown(parts, 1)
            time.sleep(0.5)
        if stopping:
            return _shutdown(parts, 0)
        channel: Part | None = None
        # Webhook channels alone without a terminal (a container, a service): no terminal
        # chat, whose end of input would stop everything.
        webhooks = settings.whatsapp_enabled or settings.messenger_enabled or settings.x_enabled
        if settings.telegram_bot_token or not webhooks or sys.stdin.isatty():
            channel = channel_part(settings, log_dir)
            parts.append(channel)
            if settings.telegram_bot_token:
                mode = "webhook" if settings.telegram_webhook_url else "polling"
                phase(f"starting the Telegram bot ({mode}); Ctrl-C stops everything")
            channel.start()
        if settings.whatsapp_enabled:
            wa = whatsapp_part(settings, log_dir)
            parts.append(wa)
            wa.start()
            url = f"{settings.whatsapp_webhook_listen}:{settings.whatsapp_webhook_port}"
            phase(f"WhatsApp webhook on {url}{settings.whatsapp_webhook_path}")
        if settings.messenger_enabled:
            fb = messenger_part(settings, log_dir)
            parts.append(fb)
            fb.start()
            url = f"{settings.messenger_webhook_listen}:{settings.messenger_webhook_port}"
            also = " (and Instagram)" if settings.instagram_enabled else ""
            phase(f"Messenger{also} webhook on {url}{settings.messenger_webhook_path}")
        if settings.x_enabled:
            x = x_part(settings, log_dir)
            parts.append(x)
            x.start()
            url = f"{settings.x_webhook_listen}:{settings.x_webhook_port}{settings.x_webhook_path}"
            phase(f"X direct-message webhook on {url}")
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


def _users(settings: Settings) -> bool:
    from earshot.accounts.service import users_exist
    from earshot.storage.db import session_scope

    with session_scope(settings.db_url) as session:
        return users_exist(session)


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
    names = ", ".join(p.name for p in parts)
    phase(f"stopped everything ({names})")
    return code


if __name__ == "__main__":
    sys.exit(run())
