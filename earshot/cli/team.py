"""Product team commands of the `earshot` CLI: export, triage and the digest report.

`register(subparsers)` adds them to the main parser. Handlers import the core lazily so
`earshot --help` stays fast, and return the process exit code.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from earshot.settings import Settings

_RELATIVE = re.compile(r"^\s*(\d+)\s*([hdw])\s*$", re.IGNORECASE)
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_when(value: str, *, end: bool = False, now: datetime | None = None) -> datetime:
    """A point in time from "7d"/"12h"/"2w" (that long ago) or an ISO date or datetime.

    A bare date is the start of that day in UTC, or with `end` the start of the next day,
    so `--until 2026-01-31` includes the 31st. Naive datetimes are UTC.
    """
    m = _RELATIVE.match(value)
    if m:
        ago = timedelta(**{_UNITS[m.group(2).lower()]: int(m.group(1))})
        return (now or datetime.now(timezone.utc)) - ago
    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text) + (timedelta(days=1) if end else timedelta())
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date: use e.g. 7d, 12h, 2w, 2026-01-31 or 2026-01-31T09:00"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _since(value: str) -> datetime:
    return parse_when(value)


def _until(value: str) -> datetime:
    return parse_when(value, end=True)


def _settings() -> Settings:
    from earshot.settings import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        print(f"earshot: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (e.g. a container without passwd entry)
        return "cli"


def _fail(message: str) -> int:
    print(f"earshot: {message}", file=sys.stderr)
    return 1


# --- export ------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from earshot.insights.export import FORMATS, ExportFilter, Format, export
    from earshot.storage.db import session_scope

    out = Path(args.out)
    fmt = args.format or out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        return _fail(f"say --format {'|'.join(FORMATS)} (cannot tell from {out.name!r})")
    fmt = cast(Format, fmt)
    try:
        filters = ExportFilter(
            since=args.since,
            until=args.until,
            product=args.product,
            type=args.type,
            status=args.status,
            source=args.source,
            language=args.language,
            min_supporters=args.min_supporters,
        )
    except ValidationError as exc:
        return _fail(f"invalid filter: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
    if not out.parent.is_dir():
        return _fail(f"folder {str(out.parent)!r} does not exist")
    settings = _settings()
    with session_scope(settings.db_url) as session:
        n = export(session, fmt=fmt, out=out, filters=filters, include_contact=args.include_contact)
    contact = " with contact details" if args.include_contact else ""
    print(f"exported {n} item{'' if n == 1 else 's'}{contact} to {out}")
    return 0


# --- triage ------------------------------------------------------------------------------


def _triage(fn: Callable[[Any, argparse.Namespace], str]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from earshot.feedback.triage import TriageError
        from earshot.storage.db import session_scope

        settings = _settings()
        try:
            with session_scope(settings.db_url) as session:
                message = fn(session, args)
        except TriageError as exc:
            return _fail(str(exc))
        print(message)
        return 0

    return run


def _set_status(session: Any, args: argparse.Namespace) -> str:
    from earshot.feedback.triage import get_item, notices_queued, set_status

    changed = set_status(
        session, ref=args.ref, status=args.status, actor=args.actor, note=args.note
    )
    item = get_item(session, ref=args.ref)
    if not changed:
        return f"{item.ref} is already {item.status}"
    queued = notices_queued(session, item=item)
    told = f"; {queued} customer{'' if queued == 1 else 's'} to notify" if queued else ""
    return f"{item.ref} is now {item.status}{told}"


def _merge(session: Any, args: argparse.Namespace) -> str:
    from earshot.feedback.triage import get_item, merge

    original = merge(session, ref=args.ref, into_ref=args.into_ref, actor=args.actor)
    dup = get_item(session, ref=args.ref)
    return (
        f"{dup.ref} merged into {original.ref}, "
        f"which now has {original.supporters} supporter{'' if original.supporters == 1 else 's'}"
    )


def _tag(session: Any, args: argparse.Namespace) -> str:
    from earshot.feedback.triage import add_tag, get_item, remove_tag

    if args.remove:
        changed = remove_tag(session, ref=args.ref, tag=args.tag, actor=args.actor)
    else:
        changed = add_tag(session, ref=args.ref, tag=args.tag, actor=args.actor)
    item = get_item(session, ref=args.ref)
    tags = ", ".join(item.tags) or "none"
    return f"{item.ref} tags: {tags}" + ("" if changed else " (unchanged)")


def _note(session: Any, args: argparse.Namespace) -> str:
    from earshot.feedback.triage import add_note, get_item

    add_note(session, ref=args.ref, text=args.text, actor=args.actor)
    return f"note added to {get_item(session, ref=args.ref).ref}"


# --- report ------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    from earshot.insights.digest import build_digest, render
    from earshot.storage.db import session_scope

    out = Path(args.out) if args.out else None
    fmt = args.format or (out.suffix.lower().lstrip(".") if out else "md")
    if fmt not in ("md", "markdown", "html", "htm"):
        return _fail("the digest is written as .md or .html")
    until = args.until or datetime.now(timezone.utc)
    if args.since >= until:
        return _fail("--since must be before --until")
    settings = _settings()
    names = {p.key: p.name for p in settings.products}
    with session_scope(settings.db_url) as session:
        digest = build_digest(session, since=args.since, until=until, catalogue_names=names)
    text = render(digest, fmt)
    if out is None:
        sys.stdout.write(text)
        return 0
    out.write_text(text, encoding="utf-8")
    print(f"wrote the digest of {digest.total_new} new items to {out}")
    return 0


# --- wiring ------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    """Add `export`, `triage` and `report` to the `earshot` command's subparsers."""
    p = subparsers.add_parser("export", help="export feedback as CSV, Excel or JSON lines")
    p.set_defaults(fn=cmd_export)
    p.add_argument("--format", choices=["csv", "xlsx", "jsonl"], help="default: from --out")
    p.add_argument("--out", required=True, help="file to write")
    p.add_argument("--since", type=_since, help="created at or after: 7d, 12h, 2w or ISO date")
    p.add_argument("--until", type=_until, help="created before (a date includes that day)")
    p.add_argument("--product", help="product key(s), comma-separated")
    p.add_argument("--type", help="problem, idea, complaint, praise, other (comma-separated)")
    p.add_argument("--status", help="status(es), comma-separated")
    p.add_argument("--source", help="source(s), comma-separated")
    p.add_argument("--language", help="language code(s), comma-separated")
    p.add_argument("--min-supporters", type=int, help="at least this many supporters")
    p.add_argument(
        "--include-contact",
        action="store_true",
        help="add contact details (only of customers who consented)",
    )

    t = subparsers.add_parser("triage", help="set status, tag, note or merge feedback items")
    tsub = t.add_subparsers(dest="triage_command", required=True)

    def add(name: str, fn: Callable[[Any, argparse.Namespace], str], help_: str) -> Any:
        sp = tsub.add_parser(name, help=help_)
        sp.set_defaults(fn=_triage(fn))
        sp.add_argument("--actor", default=_default_actor(), help="who is making the change")
        return sp

    from earshot.feedback.schemas import Status

    sp = add("set-status", _set_status, "move an item to a new status")
    sp.add_argument("ref")
    sp.add_argument("status", choices=[s.value for s in Status if s is not Status.duplicate])
    sp.add_argument("--note", help="why (kept in the item's history)")
    sp = add("merge", _merge, "mark REF as a duplicate of INTO_REF and move its supporters")
    sp.add_argument("ref")
    sp.add_argument("into_ref")
    sp = add("tag", _tag, "add (or with --remove, remove) a tag")
    sp.add_argument("ref")
    sp.add_argument("tag")
    sp.add_argument("--remove", action="store_true")
    sp = add("note", _note, "add an internal note to an item's history")
    sp.add_argument("ref")
    sp.add_argument("text")

    r = subparsers.add_parser("report", help="write the feedback digest (Markdown or HTML)")
    r.set_defaults(fn=cmd_report)
    r.add_argument("--since", type=_since, default="7d", help="default: 7d")
    r.add_argument("--until", type=_until, help="default: now")
    r.add_argument("--out", help="digest.md or digest.html (default: Markdown to stdout)")
    r.add_argument("--format", choices=["md", "html"], help="default: from --out")
