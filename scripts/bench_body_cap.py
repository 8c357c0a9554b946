"""Memory of `earshot web` while it is sent multi-megabyte POSTs (issue 19, doors).

Starts the dashboard on loopback with a throwaway SQLite database, reads its resident and
peak memory (VmRSS, VmHWM from /proc), streams big bodies (chunked, no Content-Length)
to /login and /chat/send, and reads them again. Run once with the default cap and once
with a cap above the body size, to show what the cap saves:

    .venv/bin/python scripts/bench_body_cap.py [--mb 50]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mem_kb(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def _body(total: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    block = b"a" * chunk
    for _ in range(total // chunk):
        yield block


def measure(mb: int, cap: int | None) -> dict[str, object]:
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "EARSHOT_CONFIG": f"{tmp}/none.yml",
            "ADMIN_PASSWORD": "bench-password-0123",
            "EARSHOT_SECRET": "bench-secret-0123456789",
            "LOG_LEVEL": "WARNING",
        }
        if cap is not None:
            env["MAX_REQUEST_BODY_BYTES"] = str(cap)
        proc = subprocess.Popen(
            [sys.executable, "-m", "earshot", "web", "--port", str(port)],
            cwd=tmp,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            with httpx.Client(base_url=base, timeout=120) as client:
                client.get("/login")  # warm up templates and the database
                before = _mem_kb(proc.pid)
                statuses: list[int | str] = []
                for path in ("/login", "/chat/send", "/login"):
                    try:
                        r = client.post(
                            path,
                            content=_body(mb * 1024 * 1024),
                            headers={"content-type": "application/x-www-form-urlencoded"},
                        )
                        statuses.append(r.status_code)
                    except httpx.HTTPError as exc:  # the server may close early after 413
                        statuses.append(type(exc).__name__)
                after = _mem_kb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(10)
    return {
        "cap": cap or "default (16 KB)",
        "mb": mb,
        "statuses": statuses,
        "rss_before_kb": before["VmRSS"],
        "rss_after_kb": after["VmRSS"],
        "peak_before_kb": before["VmHWM"],
        "peak_after_kb": after["VmHWM"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=int, default=50, help="size of each POST body in MB")
    args = ap.parse_args()
    for cap in (None, (args.mb + 1) * 1024 * 1024):
        r = measure(args.mb, cap)
        grow = (int(r["peak_after_kb"]) - int(r["peak_before_kb"])) / 1024  # type: ignore[call-overload]
        print(
            f"cap {r['cap']}: 3 POSTs of {r['mb']} MB -> {r['statuses']}; "
            f"RSS {int(r['rss_before_kb']) // 1024} -> {int(r['rss_after_kb']) // 1024} MB, "  # type: ignore[call-overload]
            f"peak grew by {grow:.1f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
