"""Known vulnerabilities in a venv, with pip-audit: `make audit` (part of `make test`).

pip-audit asks PyPI's JSON API (https://pypi.org/pypi/NAME/VERSION/json) about every
installed package and fails on any known vulnerability. Where that API cannot be reached
(a mirror that serves only the package index, or no network), pip-audit would report each
package as "not found" and pass; so this script checks first and then either
- skips with a clear message, or,
- with --advisory-db DIR (a checkout of github.com/pypa/advisory-database), serves that
  database to pip-audit as a local OSV endpoint (as complete as the checkout's date).

    .venv/bin/python scripts/audit.py                       # the app venv (.venv)
    .venv/bin/python scripts/audit.py --path .venv-rasa     # another venv, e.g. Rasa's
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROBE = "https://pypi.org/pypi/pip/24.0/json"  # any package and version PyPI has


def pypi_json_reachable(timeout: float = 10.0) -> bool:
    try:
        with urllib.request.urlopen(PROBE, timeout=timeout) as resp:  # noqa: S310 - fixed https URL
            return bool(resp.status == 200 and json.load(resp).get("info"))
    except (urllib.error.URLError, OSError, ValueError):
        return False


def load_advisories(db: Path) -> dict[str, list[dict[str, Any]]]:
    """package -> OSV records from the PyPA advisory database (vulns/<package>/*.yaml)."""
    index: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((db / "vulns").glob("*/*.yaml")):
        record = yaml.safe_load(path.read_text(encoding="utf-8"))
        for affected in record.get("affected", []):
            name = canonicalize_name(affected["package"]["name"])
            affected["package"]["name"] = name
            index.setdefault(name, []).append(record)
    return index


def serve_osv(index: dict[str, list[dict[str, Any]]]) -> ThreadingHTTPServer:
    """A local stand-in for OSV's /v1/query: the records whose versions list the version."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def do_POST(self) -> None:
            query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            name = canonicalize_name(query["package"]["name"])
            version = query["version"]
            vulns = [
                r
                for r in index.get(name, [])
                if any(
                    a["package"]["name"] == name and version in (a.get("versions") or [])
                    for a in r.get("affected", [])
                )
            ]
            raw = json.dumps({"vulns": vulns} if vulns else {}, default=str).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise SystemExit(f"audit: no site-packages under {venv}")
    return found[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--path", type=Path, default=None, help="venv to audit (default: this one)")
    ap.add_argument("--advisory-db", type=Path, help="pypa/advisory-database checkout (offline)")
    ap.add_argument("extra", nargs="*", help="more pip-audit arguments, after --")
    args = ap.parse_args()
    cmd = [sys.executable, "-m", "pip_audit", "--progress-spinner", "off", "--skip-editable"]
    cmd += ["--path", str(site_packages(args.path))] if args.path else ["--local"]
    server = None
    if args.advisory_db:
        server = serve_osv(load_advisories(args.advisory_db))
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/query"
        cmd += ["--vulnerability-service", "osv", "--osv-url", url]
        print(f"audit: against the advisory database in {args.advisory_db} (offline)")
    elif pypi_json_reachable():
        cmd += ["--strict"]  # a package PyPI cannot tell about fails the audit
    else:
        print(
            "audit: SKIPPED - pip-audit needs PyPI's JSON API "
            f"({PROBE.rsplit('/', 3)[0]}/NAME/VERSION/json), which is not reachable from "
            "this machine; run `make audit` where it is, or pass --advisory-db DIR"
        )
        return 0
    try:
        return subprocess.run([*cmd, *args.extra], cwd=ROOT).returncode
    finally:
        if server is not None:
            server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
