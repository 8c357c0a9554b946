"""`make run` behaviour: the terminal chat, a part that dies, and bad configuration."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

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


def test_a_dead_part_stops_everything_with_a_reason(stack: Stack, tmp_path: Path) -> None:
    # The action server cannot bind a port that the running stack's action server holds.
    env = {
        **stack.env,
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "RASA_URL": f"http://127.0.0.1:{free_port()}",
        "WEB_PORT": str(free_port()),
    }
    result = _run(env)
    assert result.returncode != 0
    assert "action server died" in result.stderr


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
    proc = subprocess.Popen(
        [sys.executable, "-m", "earshot", "run"],
        env=env,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Interrupt once every part has started (Rasa may still be loading its model): Ctrl-C
    # must stop them all in any state.
    deadline = time.monotonic() + 180
    log = tmp_path / "data" / "logs" / "rasa.log"
    while not (log.exists() and "Starting Rasa server" in log.read_text(errors="replace")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.5)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    children = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert children.stdout.strip() == ""
    for port in (env["ACTION_SERVER_PORT"], env["RASA_URL"].rsplit(":", 1)[1], env["WEB_PORT"]):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
            s.bind(("127.0.0.1", int(port)))  # free again: nothing is left listening
