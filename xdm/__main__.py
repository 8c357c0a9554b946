"""Run the X DM webhook (`python -m xdm`; `earshot run` starts it when configured), or
print a deep link (`python -m xdm link --product lamp [--language nl]`)."""

from __future__ import annotations

import argparse
import sys

from earshot.settings import ConfigError, Settings, load_settings
from earshot.webhooks.main import run_webhook_process


def missing(s: Settings) -> str | None:
    if s.x_enabled:
        return None
    return (
        "set X_CONSUMER_KEY, X_CONSUMER_SECRET, X_ACCESS_TOKEN, "
        "X_ACCESS_TOKEN_SECRET and X_USER_ID to run the X webhook"
    )


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
        from earshot.outreach.links import LinkError, x_link

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
    return run_webhook_process("xdm.app", missing=missing, settings=settings)


if __name__ == "__main__":
    sys.exit(main())
