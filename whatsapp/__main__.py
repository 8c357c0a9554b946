"""Run the WhatsApp webhook (`python -m whatsapp`; `earshot run` starts it when configured)."""

from __future__ import annotations

import asyncio
import logging
import sys

from earshot.settings import ConfigError, check_exposed_secret, load_settings
from earshot.storage.db import migrate


def main() -> int:
    try:
        settings = load_settings()
        check_exposed_secret(settings)  # the webhook is reachable from outside
    except ConfigError as exc:
        print(f"earshot: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not settings.whatsapp_enabled or not settings.whatsapp_app_secret:
        print(
            "earshot: set WHATSAPP_ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID and "
            "WHATSAPP_APP_SECRET to run the WhatsApp webhook",
            file=sys.stderr,
        )
        return 2
    if not settings.whatsapp_verify_token:
        print(
            "earshot: WHATSAPP_VERIFY_TOKEN is not set; Meta's handshake will fail", file=sys.stderr
        )
    migrate(settings.db_url)
    from whatsapp.app import serve

    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
