"""Run the WhatsApp webhook (`python -m whatsapp`; `earshot run` starts it when configured)."""

from __future__ import annotations

import sys

from earshot.settings import Settings
from earshot.webhooks.main import run_webhook_process


def missing(s: Settings) -> str | None:
    if s.whatsapp_enabled and s.whatsapp_app_secret:
        return None
    return (
        "set WHATSAPP_ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID and "
        "WHATSAPP_APP_SECRET to run the WhatsApp webhook"
    )


def warning(s: Settings) -> str | None:
    if s.whatsapp_verify_token:
        return None
    return "WHATSAPP_VERIFY_TOKEN is not set; Meta's handshake will fail"


def main() -> int:
    return run_webhook_process("whatsapp.app", missing=missing, warning=warning)


if __name__ == "__main__":
    sys.exit(main())
