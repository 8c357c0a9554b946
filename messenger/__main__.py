"""Run the Messenger webhook (`python -m messenger`; `earshot run` starts it when configured)."""

from __future__ import annotations

import sys

from earshot.settings import Settings
from earshot.webhooks.main import run_webhook_process


def missing(s: Settings) -> str | None:
    if s.messenger_enabled:
        return None
    return "set MESSENGER_PAGE_ACCESS_TOKEN and MESSENGER_APP_SECRET to run the Messenger webhook"


def warning(s: Settings) -> str | None:
    if s.messenger_verify_token:
        return None
    return "MESSENGER_VERIFY_TOKEN is not set; Meta's handshake will fail"


def main() -> int:
    return run_webhook_process("messenger.app", missing=missing, warning=warning)


if __name__ == "__main__":
    sys.exit(main())
