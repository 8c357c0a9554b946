"""`earshot themes`: find themes in the feedback and look at them from the terminal.

    earshot themes run            re-cluster everything (keeps theme ids and team edits)
    earshot themes update         theme the items that arrived since (the dashboard: each minute)
    earshot themes list [--language nl] [--emerging]
    earshot themes show ID

`register(subparsers)` adds the command; imports happen in the handlers so
`earshot --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _settings() -> Any:
    from earshot.settings import load_settings

    return load_settings()


def cmd_run(_: argparse.Namespace) -> int:
    from earshot.feedback.service import product_words
    from earshot.storage.db import migrate, session_scope
    from earshot.themes import service as themes

    settings = _settings()
    migrate(settings.db_url)
    with session_scope(settings.db_url) as session:
        result = themes.run(session)
        checked = themes.process_new(session, ignore=product_words(settings.catalogue))
    print(
        f"{result.items} items in {', '.join(result.languages) or 'no language'}: "
        f"{result.themes} themes ({result.kept} kept, {result.opened} new, "
        f"{result.retired} retired), {result.unthemed} items in no theme; "
        f"{checked} new items checked for duplicates; {result.seconds:.1f} s"
    )
    return 0


def cmd_update(_: argparse.Namespace) -> int:
    from earshot.feedback.service import product_words
    from earshot.storage.db import session_scope
    from earshot.themes import service as themes

    settings = _settings()
    with session_scope(settings.db_url) as session:
        print(themes.tick(session, ignore=product_words(settings.catalogue)))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from earshot.storage.db import session_scope
    from earshot.themes import service as themes
    from earshot.themes import trends

    settings = _settings()
    with session_scope(settings.db_url) as session:
        emerging = {e.theme_id: e for e in trends.emerging_themes(session)}
        found = themes.summaries(session, language=args.language or None, min_size=args.min_size)
        if args.emerging:
            found = [s for s in found if s.id in emerging]
        if not found:
            print("no themes yet (earshot themes run)" if not args.emerging else "none emerging")
            return 0
        print(f"{'id':>5}  {'lang':4}  {'items':>5}  {'supp':>5}  {'sent':>5}  label")
        for s in found[: args.limit]:
            sentiment = f"{s.sentiment:+.2f}" if s.sentiment is not None else "   —"
            flag = "  [emerging]" if s.id in emerging else ""
            print(
                f"{s.id:>5}  {s.language:4}  {s.size:>5}  {s.supporters:>5}  {sentiment:>5}  "
                f"{s.label}{flag}"
            )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from earshot.storage.db import session_scope
    from earshot.themes import service as themes
    from earshot.themes import trends

    settings = _settings()
    with session_scope(settings.db_url) as session:
        try:
            theme = themes.get_theme(session, args.theme_id)
        except themes.ThemeError as exc:
            print(f"earshot: {exc}", file=sys.stderr)
            return 1
        summary = next(iter(themes.summaries(session, ids=[theme.id])), None)
        print(f"theme {theme.id} ({theme.language}, {theme.status}): {theme.label}")
        if summary is not None:
            products = ", ".join(
                f"{settings.product_name(p) or p or 'no product'} {n}" for p, n in summary.products
            )
            types = ", ".join(f"{t} {n}" for t, n in summary.types)
            print(f"{summary.size} items, {summary.supporters} supporters; {products}; {types}")
        weeks = trends.weekly(session, theme_ids=[theme.id], weeks=8)[theme.id]
        print("per week: " + "  ".join(f"{w.start:%d %b} {w.items}" for w in weeks))
        for item in themes.members(session, theme_id=theme.id, limit=args.limit):
            print(f"  {item.ref}  {item.status:12}  {item.supporters:>3}  {item.description[:90]}")
    return 0


def register(subparsers: Any) -> None:
    """Add `themes run|update|list|show` to the `earshot` command."""
    p = subparsers.add_parser("themes", help="find themes in the feedback and show them")
    sub = p.add_subparsers(dest="themes_command", required=True)
    sub.add_parser(
        "run", help="re-cluster every item (theme ids and team edits are kept)"
    ).set_defaults(fn=cmd_run)
    sub.add_parser("update", help="theme the items that arrived since the last run").set_defaults(
        fn=cmd_update
    )
    ls = sub.add_parser("list", help="themes, largest first, emerging ones flagged")
    ls.add_argument("--language", default="")
    ls.add_argument("--emerging", action="store_true", help="only the emerging themes")
    ls.add_argument("--min-size", type=int, default=2)
    ls.add_argument("--limit", type=int, default=50)
    ls.set_defaults(fn=cmd_list)
    show = sub.add_parser("show", help="one theme: numbers, weeks and items")
    show.add_argument("theme_id", type=int)
    show.add_argument("--limit", type=int, default=20)
    show.set_defaults(fn=cmd_show)
