"""`earshot web`: serve the review dashboard with uvicorn.

`register(subparsers)` adds the command to the main parser; imports happen in the
handler so `earshot --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def cmd_web(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from earshot.accounts import service as accounts
    from earshot.settings import ConfigError, check_exposed_secret, load_settings
    from earshot.storage.db import migrate, session_scope
    from earshot.web.app import create_app

    try:
        settings = load_settings()
        migrate(settings.db_url)  # idempotent; a fresh install can open the dashboard at once
        with session_scope(settings.db_url) as session:
            users = accounts.users_exist(session)
        check_exposed_secret(settings, listen_host=args.host, users_exist=users)
        from earshot.themes.service import INCREMENTAL_EVERY_S

        app = create_app(settings, themes_every_s=INCREMENTAL_EVERY_S)
    except ConfigError as exc:
        print(f"earshot: {exc}", file=sys.stderr)
        return 2
    # uvicorn sets up only its own loggers; the audit lines (who changed what) need ours.
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not settings.admin_password and not users:
        print(
            "earshot: no ADMIN_PASSWORD and no users (earshot users add); the dashboard "
            "stays locked",
            file=sys.stderr,
        )
    print(f"dashboard on http://{args.host}:{args.port}/  (web chat: /chat)", file=sys.stderr)
    # One worker: the login and chat rate limits live in this process's memory.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        server_header=False,
    )
    return 0


def register(subparsers: Any) -> None:
    """Add `web [--host 127.0.0.1] [--port 8000]` to the `earshot` command."""
    p = subparsers.add_parser("web", help="serve the review dashboard and the web chat")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(fn=cmd_web)
