"""`earshot users`: add, list, remove dashboard users and set their passwords or roles.

Passwords are read from a prompt (twice) or, when stdin is not a terminal, from its first
line; never from the command line, where other users of the machine could see them.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any


def _read_password(confirm: bool = True) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Again: ") != first:
        raise SystemExit("earshot: the passwords differ; nothing changed")
    return first


def _run(args: argparse.Namespace) -> int:
    from earshot.accounts import service as accounts
    from earshot.cli.app import _settings
    from earshot.storage.db import migrate, session_scope

    settings = _settings()
    migrate(settings.db_url)
    try:
        if args.users_command == "add":
            password = _read_password()
            with session_scope(settings.db_url) as s:
                accounts.add_user(
                    s,
                    name=args.name,
                    role=args.role,
                    password=password,
                    telegram_id=args.telegram_id,
                )
            print(f"user {args.name} added ({args.role})")
        elif args.users_command == "list":
            with session_scope(settings.db_url) as s:
                users = accounts.list_users(s)
                for u in users:
                    tg = f"  telegram:{u.telegram_id}" if u.telegram_id else ""
                    print(f"{u.name}\t{u.role}{tg}")
            if not users:
                print("no users (ADMIN_PASSWORD, if set, signs in as admin)")
        elif args.users_command == "remove":
            with session_scope(settings.db_url) as s:
                accounts.remove_user(s, args.name)
            print(f"user {args.name} removed and signed out")
        elif args.users_command == "set-password":
            password = _read_password()
            with session_scope(settings.db_url) as s:
                accounts.set_password(s, args.name, password)
            print(f"password of {args.name} changed; their sessions have ended")
        elif args.users_command == "set-role":
            with session_scope(settings.db_url) as s:
                accounts.set_role(s, args.name, args.role)
            print(f"{args.name} is now {args.role}")
    except accounts.AccountError as exc:
        print(f"earshot: {exc}", file=sys.stderr)
        return 1
    return 0


def register(subparsers: Any) -> None:
    """Add `users add|list|remove|set-password|set-role` to the `earshot` command."""
    from earshot.accounts.service import ROLES

    p = subparsers.add_parser("users", help="manage dashboard users (the team)")
    p.set_defaults(fn=_run)
    sub = p.add_subparsers(dest="users_command", required=True)
    a = sub.add_parser("add", help="add a user; the password is asked for (or read from stdin)")
    a.add_argument("name")
    a.add_argument("--role", choices=ROLES, required=True)
    a.add_argument("--telegram-id", type=int, help="may use /stats and /export in Telegram")
    sub.add_parser("list", help="list users and roles")
    r = sub.add_parser("remove", help="remove a user and end their sessions")
    r.add_argument("name")
    sp = sub.add_parser("set-password", help="set a new password and end the user's sessions")
    sp.add_argument("name")
    sr = sub.add_parser("set-role", help="change a user's role")
    sr.add_argument("name")
    sr.add_argument("role", choices=ROLES)
