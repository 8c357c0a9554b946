"""Slack messages in Block Kit: important new items, emerging themes, the weekly digest.

Sent by the deliverer with slack-sdk's AsyncWebClient (chat.postMessage); the text of
each message is its notification fallback. Customer text is redacted already and
escaped here (Slack's mrkdwn treats &, < and > as markup).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from earshot.insights.digest import Digest

Message = tuple[str, list[dict[str, Any]]]
SECTION_MAX = 2900  # Slack allows 3000 characters in a section's text
# Slack errors worth another try; the rest (invalid_auth, channel_not_found,
# not_in_channel, invalid_blocks, ...) need an operator and are permanent.
TEMPORARY_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def esc(text: Any) -> str:
    """Text safe inside Slack mrkdwn."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, SECTION_MAX)}}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": _cut(text, 150)}}


def _link(url: str, label: str) -> str:
    return f"<{url}|{esc(label)}>"


def item_message(kind: str, payload: dict[str, Any], base_url: str) -> Message:
    """An important item: a negative problem or complaint, or one reaching N supporters."""
    item = payload.get("into") if kind == "item.merged" else payload.get("item")
    item = item or {}
    ref = str(item.get("ref", "?"))
    url = f"{base_url}/items/{ref}"
    kind_label = str(item.get("type", "item")).replace("_", " ")
    if kind in ("item.supported", "item.merged"):
        title = f"{ref}: {item.get('supporters')} customers now want this {kind_label}"
    else:
        title = f"New {kind_label} {ref}"
    facts = [f"*Supporters:* {item.get('supporters', 1)}"]
    if item.get("product"):
        facts.append(f"*Product:* {esc(item['product'])}")
    if item.get("sentiment") is not None:
        facts.append(f"*Sentiment:* {float(item['sentiment']):+.2f}")
    facts.append(f"*Status:* {esc(str(item.get('status', 'new')).replace('_', ' '))}")
    quote = esc(item.get("text") or "(no text)")
    blocks = [
        _header(title),
        _section(f">{quote}".replace("\n", "\n>")),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(facts)}]},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open in Earshot"},
                    "url": url,
                    "action_id": "open_item",
                }
            ],
        },
    ]
    return f"{title}: {_cut(str(item.get('text') or ''), 200)}", blocks


def theme_message(payload: dict[str, Any], base_url: str) -> Message:
    """An emerging theme: its label, size and a few of its items."""
    theme = payload.get("theme") or {}
    window = payload.get("window") or {}
    title = f"Emerging theme: {theme.get('label', '?')}"
    lines = [
        f"*{theme.get('size', '?')}* items, *{theme.get('supporters', '?')}* supporters; "
        f"{window.get('recent', '?')} in the last {window.get('recent_weeks', 2)} weeks "
        f"against {window.get('baseline', '?')} before."
    ]
    refs = [str(r) for r in payload.get("items", [])[:5]]
    if refs:
        lines.append("Items: " + ", ".join(_link(f"{base_url}/items/{r}", r) for r in refs))
    return title, [_header(title), _section("\n".join(lines))]


def _day(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%d %b %Y")


def digest_message(d: Digest, base_url: str) -> Message:
    """The weekly digest (earshot.insights.digest) as Block Kit."""
    until = d.until - timedelta(seconds=1)
    title = f"Feedback digest {_day(d.since)} – {_day(until)}"
    blocks: list[dict[str, Any]] = [_header(title)]
    summary = f"*{d.total_new}* new feedback item{'' if d.total_new == 1 else 's'}"
    if d.new_by_product:
        summary += ": " + ", ".join(f"{esc(p.product)} {p.total}" for p in d.new_by_product[:8])
    blocks.append(_section(summary))

    def lines(items: list[Any], gained: bool) -> str:
        out = []
        for i in items[:8]:
            extra = f" (+{i.gained})" if gained else ""
            out.append(
                f"• {_link(f'{base_url}/items/{i.ref}', i.ref)} {esc(_cut(i.text, 120))} "
                f"— {i.supporters} supporters{extra}"
            )
        return "\n".join(out)

    if d.top_ideas:
        blocks += [{"type": "divider"}, _section("*Top ideas*\n" + lines(d.top_ideas, False))]
    if d.movers:
        blocks += [{"type": "divider"}, _section("*Biggest movers*\n" + lines(d.movers, True))]
    if d.quotes:
        quotes = "\n".join(f">{esc(_cut(q.text, 200))} — {q.ref}" for q in d.quotes[:5])
        blocks += [{"type": "divider"}, _section("*In their words*\n" + quotes)]
    if d.service_topics:
        rows = "\n".join(
            f"• {esc(t.topic)}: {t.unhelpful} of {t.votes} said it did not help"
            for t in d.service_topics[:5]
        )
        blocks += [{"type": "divider"}, _section("*Service answers that help least*\n" + rows)]
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": _link(base_url, "Open the dashboard")}],
        }
    )
    return f"{title}: {summary.replace('*', '')}", blocks


async def post(client: AsyncWebClient, *, channel: str, message: Message) -> str:
    """chat.postMessage; returns the message's ts. Raises SlackApiError."""
    text, blocks = message
    response = await client.chat_postMessage(channel=channel, text=text, blocks=blocks)
    return str(response.get("ts", ""))


def classify_error(exc: SlackApiError) -> tuple[str, int | None, str, float | None]:
    """(outcome, HTTP status, error, retry-after seconds) of a failed call."""
    status = exc.response.status_code
    error = str(
        (exc.response.data or {}).get("error", "") if isinstance(exc.response.data, dict) else ""
    )
    retry_after = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
    wait = float(retry_after) if retry_after and str(retry_after).isdigit() else None
    temporary = status == 429 or status >= 500 or error in TEMPORARY_ERRORS
    return ("retry" if temporary else "failed"), status, error or f"HTTP {status}", wait
