"""The `earshot` command line: run, migrate, knowledge base, classification and more.

Each subcommand parses its arguments, calls the core and prints the result; imports
happen inside the handlers so `earshot --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from earshot.settings import ConfigError, Settings, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"earshot: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_run(_: argparse.Namespace) -> int:
    from earshot.cli.supervise import run

    return run()


def cmd_migrate(_: argparse.Namespace) -> int:
    from earshot.storage.db import migrate

    settings = _settings()
    migrate(settings.db_url)
    print("database is up to date")
    return 0


def cmd_check_config(_: argparse.Namespace) -> int:
    settings = _settings()
    print(f"configuration OK: {settings.company.name}, {len(settings.products)} products")
    return 0


def cmd_endpoints(args: argparse.Namespace) -> int:
    from earshot.cli.supervise import write_endpoints

    path = write_endpoints(_settings(), Path(args.out))
    print(path)
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    from earshot.cli.supervise import healthy

    url = args.url or _settings().rasa_url.rstrip("/") + "/"
    ok = healthy(url)
    print(f"{url}: {'healthy' if ok else 'NOT healthy'}")
    return 0 if ok else 1


def cmd_kb(args: argparse.Namespace) -> int:
    from earshot.knowledge.kb import KnowledgeBaseError, build_rasa_files, load_kb

    settings = _settings()
    kb_dir = Path(args.path) if args.path else settings.knowledge_base
    try:
        kb = load_kb(kb_dir, languages=settings.languages)
    except KnowledgeBaseError as exc:
        print(f"earshot: knowledge base invalid: {exc}", file=sys.stderr)
        return 1
    if args.kb_command == "validate":
        print(f"knowledge base OK: {len(kb.topics)} topics")
        return 0
    try:
        written = build_rasa_files(kb, Path(args.rasa_dir))
    except KnowledgeBaseError as exc:
        print(f"earshot: knowledge base invalid: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from earshot.privacy.erasure import purge
    from earshot.storage.db import session_scope

    settings = _settings()
    days = args.days or settings.retention_days
    from datetime import timedelta

    from earshot.integrations import deliveries
    from earshot.storage.models import utcnow

    with session_scope(settings.db_url) as session:
        counts = purge(session, older_than_days=days)
        # The integrations outbox keeps its own, shorter time (webhook_log_days).
        cutoff = utcnow() - timedelta(days=settings.webhook_log_days)
        counts["integration_events"] = deliveries.purge(session, before=cutoff)
    total = sum(counts.values())
    print(f"purged data older than {days} days: {total} rows")
    for table, n in sorted(counts.items()):
        if n:
            print(f"  {table}: {n}")
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    from earshot.privacy.erasure import erase_customer, erase_spooled
    from earshot.privacy.identity import user_key
    from earshot.storage.db import session_scope

    settings = _settings()
    key = args.customer_key or user_key(
        settings.earshot_secret.get_secret_value(), "telegram", args.telegram_id
    )
    with session_scope(settings.db_url) as session:
        report = erase_customer(session, customer_key=key, everything=args.everything)
    spooled = erase_spooled(settings.data_dir / "spool", customer_key=key)
    what = "everything" if args.everything else "personal data (feedback kept, unlinked)"
    print(f"erased {what} of customer {key}: {report.total + spooled} rows and files")
    for name, n in sorted({**report.deleted, "spool files": spooled}.items()):
        if n:
            print(f"  deleted {name}: {n}")
    for name, n in sorted(report.unlinked.items()):
        if n:
            print(f"  unlinked {name}: {n}")
    return 0


def cmd_classify(_: argparse.Namespace) -> int:
    from earshot.classify import classify_jsonl

    classify_jsonl(sys.stdin, sys.stdout, catalogue=_settings().catalogue)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="earshot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(
        name: str, fn: Callable[[argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.set_defaults(fn=fn)
        return p

    add("run", cmd_run, "start the action server, Rasa and the channel")
    add("migrate", cmd_migrate, "apply database migrations")
    add("check-config", cmd_check_config, "validate config.yml and the environment")
    p = add("rasa-endpoints", cmd_endpoints, "write Rasa's endpoints.yml from the settings")
    p.add_argument("--out", default="data/run/endpoints.yml")
    p = add("health", cmd_health, "exit 0 if the service at --url (default: Rasa) is healthy")
    p.add_argument("--url", default=None)
    p = add("kb", cmd_kb, "validate or build the knowledge base")
    p.add_argument("kb_command", choices=["validate", "build"])
    p.add_argument("--path", default=None, help="knowledge base folder (default: config)")
    p.add_argument("--rasa-dir", default="rasa_project")
    p = add("purge", cmd_purge, "delete conversation data older than retention_days (cron-safe)")
    p.add_argument("--days", type=int, default=None, help="override retention_days")
    p = add("erase", cmd_erase, "erase a customer's data on request (e.g. by e-mail)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer-key", help="the pseudonymous key (web chat, dashboard)")
    who.add_argument("--telegram-id", type=int, help="the customer's Telegram user id")
    scope = p.add_mutually_exclusive_group(required=True)
    scope.add_argument(
        "--personal-data",
        action="store_false",
        dest="everything",
        help="delete personal data; keep their feedback, unlinked and anonymised",
    )
    scope.add_argument("--everything", action="store_true", help="delete their feedback items too")
    add("classify", cmd_classify, "classify JSON lines {'text': ...} from stdin")
    # Feature commands register themselves; their imports stay inside their handlers.
    from earshot.cli.feedback import register as register_feedback
    from earshot.cli.integrations import register as register_integrations
    from earshot.cli.team import register as register_team
    from earshot.cli.themes import register as register_themes
    from earshot.cli.users import register as register_users
    from earshot.cli.web import register as register_web

    register_feedback(sub)
    register_integrations(sub)
    register_team(sub)
    register_themes(sub)
    register_users(sub)
    register_web(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
