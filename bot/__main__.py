"""Run the Telegram bot: polling by default, webhook mode when TELEGRAM_WEBHOOK_URL is set."""

from __future__ import annotations

import asyncio
import sys

from telegram import Update

from bot.app import build_application
from bot.webhook import serve
from earshot.settings import ConfigError, check_exposed_secret, configure_logging, load_settings
from earshot.storage.db import migrate


def main() -> int:
    try:
        settings = load_settings()
        check_exposed_secret(settings)  # a webhook makes the bot reachable from outside
    except ConfigError as exc:
        print(f"earshot: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    if settings.telegram_bot_token is None:
        print("earshot: TELEGRAM_BOT_TOKEN is not set", file=sys.stderr)
        return 2
    migrate(settings.db_url)
    application = build_application(settings)
    if settings.telegram_webhook_url:
        if settings.telegram_webhook_secret is None:
            print("earshot: TELEGRAM_WEBHOOK_SECRET is required in webhook mode", file=sys.stderr)
            return 2
        asyncio.run(serve(application, settings))
    else:
        application.run_polling(allowed_updates=Update.ALL_TYPES, bootstrap_retries=-1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
