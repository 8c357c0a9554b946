"""Run the X DM webhook (`python -m xdm`; `earshot run` starts it when configured), or
print a deep link (`python -m xdm link --product lamp [--language nl]`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from earshot.settings import ConfigError, check_exposed_secret, load_settings
from earshot.storage.db import migrate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xdm")
    sub = parser.add_subparsers(dest="command")
    link = sub.add_parser("link", help="a DM link that starts feedback for a product/campaign")
    what = link.add_mutually_exclusive_group(required=True)
    what.add_argument("--product")
    what.add_argument("--campaign")
    link.add_argument("--language")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"earshot: {exc}", file=sys.stderr)
        return 2
    if args.command == "link":
        from xdm.links import LinkError, x_link

        try:
            print(
                x_link(
                    settings, product=args.product, campaign=args.campaign, language=args.language
                )
            )
        except LinkError as exc:
            print(f"earshot: {exc}", file=sys.stderr)
            return 2
        return 0
    try:
        check_exposed_secret(settings)  # the webhook is reachable from outside
    except ConfigError as exc:
        print(f"earshot: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not settings.x_enabled:
        print(
            "earshot: set X_CONSUMER_KEY, X_CONSUMER_SECRET, X_ACCESS_TOKEN, "
            "X_ACCESS_TOKEN_SECRET and X_USER_ID to run the X webhook",
            file=sys.stderr,
        )
        return 2
    migrate(settings.db_url)
    from xdm.app import serve

    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
