"""`make run` behaviour: the terminal chat, a part that dies, and bad configuration."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from earshot.settings import ROOT
from testkit.stack import Stack, free_port


def test_terminal_chat_renders_buttons_as_numbered_choices(stack: Stack) -> None:
    env = {**stack.env, "TELEGRAM_BOT_TOKEN": ""}
    # "2" presses "Share feedback"; the idea names the app; "1" confirms the type "Idea".
    lines = "2\nI wish the app had a dark mode\n1\n/quit\n"
    out = subprocess.run(
        [sys.executable, "-m", "bot.terminal"],
        input=lines,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "1. Ask a question" in out.stdout and "2. Share feedback" in out.stdout
    assert "1. Idea" in out.stdout
    assert "What would it let you do?" in out.stdout


def _run(env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "earshot", "run"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _own_ports(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment for a second `earshot run` of its own: own data, database and ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "RASA_"))}
    return {
        **env,
        "TELEGRAM_BOT_TOKEN": "",
        "ADMIN_PASSWORD": "",
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'own.db'}",
        "RASA_URL": f"http://127.0.0.1:{free_port()}",
        "ACTION_SERVER_PORT": str(free_port()),
        "WEB_PORT": str(free_port()),
        **extra,
    }


def test_quit_in_the_chat_stops_everything_and_says_so(tmp_path: Path) -> None:
    env = _own_ports(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "earshot", "run"],
        input="/quit\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    web = env["WEB_PORT"]
    lines = out.stdout.splitlines()
    # One line per phase, each with the time since the start, in this order.
    wanted = [
        "starting the action server, Rasa",
        f"dashboard at http://127.0.0.1:{web}/ stays locked until a user is added",
        "chat ready",
        "stopped everything (action server, Rasa server, dashboard, terminal chat)",
    ]
    found = [next(i for i, line in enumerate(lines) if w in line) for w in wanted]
    assert found == sorted(found), out.stdout
    assert all(re.match(r"earshot \[\d+:\d\d\] ", lines[i]) for i in found)
    assert "1. Ask a question" in out.stdout  # the greeting's buttons, before /quit
    for port in (env["ACTION_SERVER_PORT"], env["RASA_URL"].rsplit(":", 1)[1], web):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", int(port)))  # free again: nothing is left listening


@pytest.mark.parametrize(
    ("setting", "part"),
    [
        ("RASA_URL", "Rasa"),
        ("ACTION_SERVER_PORT", "the action server"),
        ("WEB_PORT", "the dashboard"),
    ],
)
def test_a_port_in_use_gives_one_line_naming_the_setting(
    tmp_path: Path, setting: str, part: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        value = f"http://127.0.0.1:{port}" if setting == "RASA_URL" else str(port)
        result = _run(_own_ports(tmp_path, **{setting: value}), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"earshot: port {port} ({part}) is already in use; stop what is using it, "
        f"or set {setting} to another port (environment or .env)"
    ]
    assert not (tmp_path / "data" / "logs").exists()  # nothing was started


def _run_until_rasa_starts(env: dict[str, str], tmp_path: Path) -> subprocess.Popen[str]:
    """`earshot run` in the background, returned once Rasa's log says it is starting."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "earshot", "run"],
        env=env,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    log = tmp_path / "data" / "logs" / "rasa.log"
    while not (log.exists() and "Starting Rasa server" in log.read_text(errors="replace")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.5)
    return proc


def test_a_dead_part_stops_everything_with_a_reason(tmp_path: Path) -> None:
    env = _own_ports(tmp_path)
    proc = _run_until_rasa_starts(env, tmp_path)
    # Only Rasa's command line names this test's folder (its endpoints.yml is under it).
    rasa = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    pids = [int(p) for p in rasa.stdout.split()]
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "Rasa server died (exit code -9); stopping everything." in err
    log = tmp_path / "data" / "logs" / "rasa.log"
    assert f"last lines of {log}" in err  # what it said before it died
    assert "stopped everything" in out
    left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert left.stdout.strip() == ""


def test_invalid_configuration_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "config.yml"
    bad.write_text("company: {name: X}\nask_interval_days: -3\n")
    env = {**os.environ, "EARSHOT_CONFIG": str(bad)}
    result = _run(env, timeout=60)
    assert result.returncode == 2
    assert "ask_interval_days" in result.stderr


def test_secrets_in_the_config_file_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "config.yml"
    bad.write_text("company: {name: X}\ntelegram_bot_token: '123:abc'\n")
    result = _run({**os.environ, "EARSHOT_CONFIG": str(bad)}, timeout=60)
    assert result.returncode == 2 and "TELEGRAM_BOT_TOKEN" in result.stderr


def test_production_refuses_the_default_secret() -> None:
    env = {k: v for k, v in os.environ.items() if k != "EARSHOT_SECRET"}
    env["ENVIRONMENT"] = "production"
    result = _run(env, timeout=60)
    assert result.returncode == 2 and "EARSHOT_SECRET" in result.stderr


def test_ctrl_c_stops_every_part(stack: Stack, tmp_path: Path) -> None:
    env = {
        **stack.env,
        "TELEGRAM_BOT_TOKEN": "",
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'y.db'}",
        "RASA_URL": f"http://127.0.0.1:{free_port()}",
        "ACTION_SERVER_PORT": str(free_port()),
        "WEB_PORT": str(free_port()),
    }
    # Interrupt once every part has started (Rasa may still be loading its model): Ctrl-C
    # must stop them all in any state.
    proc = _run_until_rasa_starts(env, tmp_path)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    children = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert children.stdout.strip() == ""
    for port in (env["ACTION_SERVER_PORT"], env["RASA_URL"].rsplit(":", 1)[1], env["WEB_PORT"]):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
            s.bind(("127.0.0.1", int(port)))  # free again: nothing is left listening
