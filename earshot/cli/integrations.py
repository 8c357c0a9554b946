"""`earshot deliver`: the webhook and Slack deliverer as a process of its own.

The dashboard runs the deliverer in its background by default; a deployment that wants it
apart (its own container, say) sets INTEGRATIONS_DELIVERER=false for the dashboard and
runs this instead.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import Any


def cmd_deliver(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import sessionmaker

    from earshot.cli.app import _settings
    from earshot.integrations.deliverer import Deliverer
    from earshot.integrations.deliveries import targets
    from earshot.storage.db import engine_for

    settings = _settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    if not targets(settings):
        print(
            "earshot: nothing to deliver to: no webhooks: in config.yml, no Slack token and channel"
        )
        return 1
    deliverer = Deliverer(
        settings, sessionmaker(engine_for(settings.db_url), expire_on_commit=False)
    )

    async def main() -> int:
        try:
            if args.once:
                results = await deliverer.tick()
                ok = sum(r.outcome == "delivered" for r in results)
                print(f"{len(results)} attempt(s): {ok} delivered")
                return 0
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await deliverer.run(stop)
            return 0
        finally:
            await deliverer.aclose()

    return asyncio.run(main())


def register(sub: Any) -> None:
    """Add `deliver` to the `earshot` command."""
    p = sub.add_parser(
        "deliver", help="deliver webhooks and Slack messages (the dashboard does this too)"
    )
    p.set_defaults(fn=cmd_deliver)
    p.add_argument("--once", action="store_true", help="one round, then exit")
