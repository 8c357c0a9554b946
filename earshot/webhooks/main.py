"""The command line of a channel's webhook process (`python -m whatsapp`, `messenger`,
`xdm`): check the settings, set up logging, migrate, then serve until stopped."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Callable

from earshot.settings import (
    ConfigError,
    Settings,
    check_exposed_secret,
    configure_logging,
    load_settings,
)
from earshot.storage.db import migrate

Check = Callable[[Settings], "str | None"]


def _never(_: Settings) -> str | None:
    return None


def run_webhook_process(
    app: str,
    *,
    missing: Check,
    warning: Check = _never,
    settings: Settings | None = None,
) -> int:
    """Serve the webhook of module `app` (its `serve(settings)`, imported only once the
    settings pass). `missing` says what keeps the channel from running (exit 2), `warning`
    what will fail later; `settings` when the caller loaded them already."""
    try:
        settings = settings if settings is not None else load_settings()
        check_exposed_secret(settings)  # the webhook is reachable from outside
    except ConfigError as exc:
        print(f"earshot: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    if problem := missing(settings):
        print(f"earshot: {problem}", file=sys.stderr)
        return 2
    if note := warning(settings):
        print(f"earshot: {note}", file=sys.stderr)
    migrate(settings.db_url)
    asyncio.run(importlib.import_module(app).serve(settings))
    return 0
