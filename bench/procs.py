"""Processes under test: finding them, their peak memory, temporary databases, profiling."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import uuid
from pathlib import Path

from earshot.cli.supervise import (  # noqa: F401 - used as procs.wait_healthy
    Part,
    healthy,
    wait_healthy,
)

PG_ADMIN_URL = os.environ.get(
    "EARSHOT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def children(pid: int) -> list[int]:
    """Direct children of `pid` (the supervisor's parts run in sessions of their own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state, ppid, ...
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def find_child(pid: int, *needles: str) -> int | None:
    for child in children(pid):
        args = cmdline(child)
        if all(any(n in a for a in args) for n in needles):
            return child
    return None


def status_kb(pid: int, field: str) -> int | None:
    """A /proc/<pid>/status field in kB (VmHWM: peak resident set size)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mb(pid: int | None) -> float | None:
    kb = status_kb(pid, "VmHWM") if pid else None
    return round(kb / 1024, 1) if kb else None


def machine() -> dict[str, object]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = [round(x, 2) for x in os.getloadavg()]
    return {"cpu": model, "cores": os.cpu_count() or 0, "load": load}


def describe_machine(info: dict[str, object], load_end: list[float] | None = None) -> str:
    load = info["load"]
    text = f"{info['cpu']}, {info['cores']} cores, load average {load} at start"
    if load_end:
        text += f", {load_end} at end"
    return text


# --------------------------------------------------------------------------- PostgreSQL


def _psycopg_url(url: str) -> str:
    return url.replace("+psycopg", "")


def pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(_psycopg_url(PG_ADMIN_URL), connect_timeout=3):
            return True
    except Exception:
        return False


def create_pg_database() -> str:
    """An empty database with a random name on the local server; returns its URL."""
    import psycopg

    name = f"earshot_rbench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_psycopg_url(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(_psycopg_url(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_available(host: str = "127.0.0.1", port: int = 6379) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


# --------------------------------------------------------------------------- profiling


def py_spy() -> str | None:
    here = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def start_profile(pid: int, out: Path, rate: int = 50) -> subprocess.Popen[bytes] | None:
    """Sample `pid` with py-spy until stopped (SIGINT); collapsed stacks to `out`.

    Blocking mode pauses the target for each sample (~50 times a second): slower, but
    --nonblocking reads stacks while they change and truncates many of them.
    """
    exe = py_spy()
    if exe is None:
        return None
    return subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            str(rate),
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profile(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(2)  # SIGINT: py-spy writes its output and exits
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
