"""Feedback commands of the `earshot` CLI: campaigns and importing outside feedback.

`register(subparsers)` adds `campaign send|status`, `import`, `whatsapp-link` and `link`
to the main parser.
Handlers import the core lazily so `earshot --help` stays fast, and return the exit code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from earshot.settings import Campaign, Settings


def _settings() -> Settings:
    from earshot.settings import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        print(f"earshot: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _campaign(settings: Settings, campaign_id: str) -> Campaign:
    from earshot.outreach.campaigns import find_campaign

    campaign = find_campaign(settings.campaigns, campaign_id)
    if campaign is None:
        known = ", ".join(c.id for c in settings.campaigns) or "none configured"
        print(f"earshot: no campaign '{campaign_id}' in config.yml ({known})", file=sys.stderr)
        raise SystemExit(2)
    return campaign


def cmd_campaign_send(args: argparse.Namespace) -> int:
    from earshot.outreach.campaigns import CampaignError, enqueue_campaign
    from earshot.storage.db import session_scope

    settings = _settings()
    campaign = _campaign(settings, args.campaign_id)
    try:
        with session_scope(settings.db_url) as session:
            result = enqueue_campaign(session, campaign=campaign)
    except CampaignError as exc:
        window = f"{campaign.starts or 'any time'} to {campaign.ends or 'open end'}"
        print(f"earshot: {exc} (runs {window})", file=sys.stderr)
        return 1
    print(
        f"campaign {campaign.id}: queued {result.added} new customer(s), {result.total} in "
        "total; the bot sends them at a safe rate while it runs"
    )
    return 0


def cmd_campaign_status(args: argparse.Namespace) -> int:
    from earshot.outreach.campaigns import campaign_active, campaign_status
    from earshot.storage.db import session_scope

    settings = _settings()
    campaign = _campaign(settings, args.campaign_id)
    from earshot.conversations import messenger
    from earshot.conversations.whatsapp import status_counts

    with session_scope(settings.db_url) as session:
        s = campaign_status(session, campaign_id=campaign.id)
        deliveries = status_counts(session, kind="campaign", ref=campaign.id)
        receipts = messenger.status_counts(session, kind="campaign", ref=campaign.id)
    state = "running" if campaign_active(campaign) else "not running"
    print(f"campaign {campaign.id} ({state})")
    print(
        f"  queued    {s.queued:6d}  (pending {s.pending}, sending {s.sending}, "
        f"sent {s.sent}, failed {s.failed}, skipped {s.skipped})"
    )
    print(f"  asked     {s.asked:6d}")
    print(f"  answered  {s.answered:6d}")
    print(f"  declined  {s.declined:6d}")
    print(f"  ignored   {s.ignored:6d}")
    print(f"  waiting   {s.waiting:6d}  (asked in the last day, no answer yet)")
    print(f"  feedback  {s.items:6d}  item(s) from this campaign")
    if deliveries:  # WhatsApp reports what became of each ask it accepted
        shown = ", ".join(
            f"{k} {deliveries.get(k, 0)}"
            for k in ("accepted", "sent", "delivered", "read", "failed")
        )
        print(f"  whatsapp  {sum(deliveries.values()):6d}  ({shown})")
    if receipts:  # Messenger and Instagram report delivered and read
        shown = ", ".join(f"{k} {receipts.get(k, 0)}" for k in ("accepted", "delivered", "read"))
        print(f"  messenger {sum(receipts.values()):6d}  ({shown})")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from earshot.feedback.service import ImportFailed, import_csv
    from earshot.storage.db import session_scope

    settings = _settings()
    path = Path(args.file)
    if not path.is_file():
        print(f"earshot: no such file: {path}", file=sys.stderr)
        return 2
    try:
        with session_scope(settings.db_url) as session:
            result = import_csv(
                session,
                path=path,
                text_column=args.text_column,
                product_column=args.product_column,
                catalogue=settings.catalogue,
                ref_prefix=settings.company.ref_prefix,
                language=args.language or settings.default_language,
            )
    except (ImportFailed, UnicodeDecodeError) as exc:
        print(f"earshot: {exc}", file=sys.stderr)
        return 1
    kinds = ", ".join(f"{n} {t}" for t, n in sorted(result.by_type.items())) or "none"
    print(
        f"imported {result.imported} item(s) ({kinds}); skipped {result.duplicates} "
        f"duplicate(s) and {result.empty} empty row(s)"
    )
    return 0


def cmd_whatsapp_link(args: argparse.Namespace) -> int:
    from earshot.outreach.links import LinkError, whatsapp_link

    settings = _settings()
    try:
        print(
            whatsapp_link(
                settings, product=args.product, campaign=args.campaign, language=args.language
            )
        )
    except LinkError as exc:
        print(f"earshot: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_link(args: argparse.Namespace) -> int:
    from earshot.outreach.links import LinkError, deep_link

    try:
        print(
            deep_link(
                _settings(),
                args.channel,
                product=args.product,
                campaign=args.campaign,
                language=args.language,
            )
        )
    except LinkError as exc:
        print(f"earshot: {exc}", file=sys.stderr)
        return 2
    return 0


def register(subparsers: Any) -> None:
    """Add `campaign` and `import` to the `earshot` command's subparsers."""
    c = subparsers.add_parser("campaign", help="send a feedback campaign or show its progress")
    csub = c.add_subparsers(dest="campaign_command", required=True)
    p = csub.add_parser(
        "send", help="queue the campaign question for every customer who may be asked (idempotent)"
    )
    p.add_argument("campaign_id")
    p.set_defaults(fn=cmd_campaign_send)
    p = csub.add_parser("status", help="asked, answered, declined and ignored counts")
    p.add_argument("campaign_id")
    p.set_defaults(fn=cmd_campaign_status)

    p = subparsers.add_parser("import", help="import outside feedback from a CSV file")
    p.add_argument("file", help="CSV file with a header row (UTF-8)")
    p.add_argument("--text-column", required=True, help="column with the feedback text")
    p.add_argument("--product-column", help="column naming the product (key, name or synonym)")
    p.add_argument("--language", help="language of the texts (default: default_language)")
    p.set_defaults(fn=cmd_import)

    p = subparsers.add_parser(
        "whatsapp-link",
        help="print a wa.me link that starts the feedback flow for a product or campaign",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--product", help="product key from config.yml")
    which.add_argument("--campaign", help="campaign id from config.yml")
    p.add_argument("--language", help="language of the prefilled text (default: default_language)")
    p.set_defaults(fn=cmd_whatsapp_link)

    p = subparsers.add_parser(
        "link",
        help="print a WhatsApp, Messenger, Instagram or X link that starts the feedback flow",
    )
    p.add_argument("--channel", choices=["whatsapp", "messenger", "instagram", "x"], required=True)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--product", help="product key from config.yml")
    which.add_argument("--campaign", help="campaign id from config.yml")
    p.add_argument("--language", help="WhatsApp and X: language of the prefilled text")
    p.set_defaults(fn=cmd_link)
