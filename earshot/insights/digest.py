"""The weekly digest for product managers: what came in, what gained support, what hurts.

`build_digest` gathers the numbers; `render_markdown` and `render_html` lay them out.
Customer text is passed through `earshot.privacy.redaction.redact` before it is quoted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from earshot.feedback.schemas import FeedbackType
from earshot.privacy.redaction import redact
from earshot.storage.models import Feedback, ServiceRating, Supporter, utcnow

TYPES: tuple[str, ...] = tuple(t.value for t in FeedbackType)
CLOSED: tuple[str, ...] = ("done", "declined", "duplicate")
QUOTE_LENGTH = 280


@dataclass(frozen=True)
class ProductCount:
    product: str
    total: int
    by_type: dict[str, int]


@dataclass(frozen=True)
class ItemLine:
    ref: str
    product: str
    text: str
    status: str
    supporters: int
    gained: int = 0


@dataclass(frozen=True)
class Quote:
    ref: str
    product: str
    type: str
    text: str
    sentiment: float | None


@dataclass(frozen=True)
class TopicRate:
    topic: str
    votes: int
    unhelpful: int

    @property
    def rate(self) -> float:
        return self.unhelpful / self.votes if self.votes else 0.0


@dataclass(frozen=True)
class ThemeRow:
    """A theme (earshot/themes) in the digest: emerging ones first, then the largest."""

    label: str
    language: str
    size: int
    supporters: int
    new: int  # items of the period
    emerging: bool


@dataclass(frozen=True)
class Digest:
    since: datetime
    until: datetime
    generated_at: datetime
    total_new: int
    new_by_product: list[ProductCount] = field(default_factory=list)
    top_ideas: list[ItemLine] = field(default_factory=list)
    movers: list[ItemLine] = field(default_factory=list)
    quotes: list[Quote] = field(default_factory=list)
    service_topics: list[TopicRate] = field(default_factory=list)
    min_votes: int = 3
    themes: list[ThemeRow] = field(default_factory=list)


def _snippet(text: str, redact: Callable[[str], str], length: int = QUOTE_LENGTH) -> str:
    # Redact before cutting, so a truncated e-mail address or number cannot slip through.
    text = " ".join(redact(text or "").split())
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


def build_digest(
    session: Session,
    *,
    since: datetime,
    until: datetime | None = None,
    catalogue_names: Mapping[str, str] | None = None,
    top: int = 10,
    quotes: int = 5,
    min_votes: int = 3,
) -> Digest:
    """Everything the digest shows for [since, until) (until defaults to now).

    `catalogue_names` maps product keys to display names. Service topics need at least
    `min_votes` ratings in the period to be ranked, so one vote cannot top the list.
    """
    until = until or utcnow()
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be timezone-aware")
    names = dict(catalogue_names or {})

    def product_name(key: str | None) -> str:
        return names.get(key, key) if key else "No product"

    in_period = (Feedback.created_at >= since, Feedback.created_at < until)

    counts: dict[str | None, dict[str, int]] = {}
    for product, type_, n in session.execute(
        select(Feedback.product, Feedback.type, func.count())
        .where(*in_period)
        .group_by(Feedback.product, Feedback.type)
    ):
        counts.setdefault(product, {})[type_] = int(n)
    new_by_product = sorted(
        (
            ProductCount(product_name(p), sum(by.values()), {t: by.get(t, 0) for t in TYPES})
            for p, by in counts.items()
        ),
        key=lambda pc: (-pc.total, pc.product),
    )

    gained_rows = session.execute(
        select(Supporter.feedback_id, func.count().label("n"))
        .where(Supporter.created_at >= since, Supporter.created_at < until)
        .group_by(Supporter.feedback_id)
    ).all()
    gained = {fid: int(n) for fid, n in gained_rows}

    def line(item: Feedback) -> ItemLine:
        return ItemLine(
            ref=item.ref,
            product=product_name(item.product),
            text=_snippet(item.description, redact, 160),
            status=item.status,
            supporters=item.supporters,
            gained=gained.get(item.id, 0),
        )

    ideas = session.scalars(
        select(Feedback)
        .where(Feedback.type == FeedbackType.idea.value, Feedback.status.not_in(CLOSED))
        .order_by(Feedback.supporters.desc(), Feedback.created_at.desc(), Feedback.id.desc())
        .limit(top)
    ).all()

    mover_ids = [fid for fid, _ in sorted(gained.items(), key=lambda kv: (-kv[1], kv[0]))]
    movers: list[ItemLine] = []
    if mover_ids:
        # Fetch a few spare in case some were merged away since they gained support.
        candidates = mover_ids[: top * 2]
        by_id = {
            item.id: item
            for item in session.scalars(
                select(Feedback).where(Feedback.id.in_(candidates), Feedback.status != "duplicate")
            )
        }
        movers = [line(by_id[i]) for i in candidates if i in by_id][:top]

    return Digest(
        since=since,
        until=until,
        generated_at=utcnow(),
        total_new=sum(pc.total for pc in new_by_product),
        new_by_product=new_by_product,
        top_ideas=[line(i) for i in ideas],
        movers=movers,
        quotes=_quotes(session, in_period, quotes, redact, product_name),
        service_topics=_service_topics(session, since, until, top, min_votes),
        min_votes=min_votes,
        themes=_themes(session, in_period, until, top),
    )


def _themes(
    session: Session, in_period: tuple[Any, ...], until: datetime, top: int
) -> list[ThemeRow]:
    """Emerging and largest themes, with how many of their items came in the period."""
    from earshot.insights.stats import theme_lines
    from earshot.storage.models import ThemeMember

    lines = theme_lines(session, now=until, top=top)
    new: dict[int, int] = {
        int(tid): int(n)
        for tid, n in session.execute(
            select(ThemeMember.theme_id, func.count())
            .join(Feedback, Feedback.id == ThemeMember.feedback_id)
            .where(ThemeMember.theme_id.in_([t.id for t in lines]), *in_period)
            .group_by(ThemeMember.theme_id)
        )
    }
    return [
        ThemeRow(t.label, t.language, t.size, t.supporters, int(new.get(t.id, 0)), t.emerging)
        for t in lines
    ]


def _quotes(
    session: Session,
    in_period: tuple[Any, ...],
    n: int,
    redact: Callable[[str], str],
    product_name: Callable[[str | None], str],
) -> list[Quote]:
    """The strongest voices of the period: most negative first, then most positive."""
    if n <= 0:
        return []
    base = select(Feedback).where(
        *in_period,
        Feedback.complete.is_(True),
        Feedback.status != "duplicate",
        func.length(Feedback.description) >= 20,
    )
    negative_n = (n + 1) // 2
    picked: list[Feedback] = list(
        session.scalars(
            base.where(Feedback.sentiment < 0)
            .order_by(Feedback.sentiment, Feedback.id)
            .limit(negative_n)
        )
    )
    picked += session.scalars(
        base.where(Feedback.sentiment > 0)
        .order_by(Feedback.sentiment.desc(), Feedback.id)
        .limit(n - len(picked))
    )
    if len(picked) < n:  # few sentiment scores: fall back to the most supported
        seen = [item.id for item in picked]
        picked += session.scalars(
            base.where(Feedback.id.not_in(seen) if seen else Feedback.id.is_not(None))
            .order_by(Feedback.supporters.desc(), Feedback.id.desc())
            .limit(n - len(picked))
        )
    return [
        Quote(
            ref=item.ref,
            product=product_name(item.product),
            type=item.type,
            text=_snippet(item.description, redact),
            sentiment=item.sentiment,
        )
        for item in picked
    ]


def _service_topics(
    session: Session, since: datetime, until: datetime, top: int, min_votes: int
) -> list[TopicRate]:
    unhelpful = func.sum(case((ServiceRating.helpful.is_(False), 1), else_=0))
    rows = session.execute(
        select(ServiceRating.topic, func.count(), unhelpful)
        .where(ServiceRating.created_at >= since, ServiceRating.created_at < until)
        .group_by(ServiceRating.topic)
        .having(func.count() >= min_votes)
    ).all()
    topics = [TopicRate(t, int(v), int(u or 0)) for t, v, u in rows if u]
    topics.sort(key=lambda t: (-t.rate, -t.votes, t.topic))
    return topics[:top]


# --- rendering -----------------------------------------------------------------------------

# Only what could break a table or add HTML, code or a link; the rest stays readable.
_MD_SPECIAL = re.compile(r"([\\`|<])")


def _md(value: Any) -> str:
    """Escape customer text for Markdown: one line, no HTML, links or table breaks."""
    text = _MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))
    return text.replace("](", "]\\(")


def _label(value: str) -> str:
    return value.replace("_", " ")


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def _when(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


_MARKDOWN = """\
# Customer feedback digest

{{ d.since | when }} to {{ d.until | when }}: **{{ d.total_new }}** new feedback \
item{{ "" if d.total_new == 1 else "s" }}.

## New items by product
{% if d.new_by_product %}
| Product | New |{% for t in types %} {{ t | label | capitalize }} |{% endfor %}
|---|---:|{% for t in types %}---:|{% endfor %}
{% for p in d.new_by_product -%}
| {{ p.product | md }} | {{ p.total }} |{% for t in types %} {{ p.by_type[t] }} |{% endfor %}
{% endfor %}
{%- else %}
No new feedback in this period.
{% endif %}
## Top ideas
{% if d.top_ideas %}
Open ideas with the most supporters.

| Ref | Product | Idea | Supporters | New this period | Status |
|---|---|---|---:|---:|---|
{% for i in d.top_ideas -%}
| {{ i.ref }} | {{ i.product | md }} | {{ i.text | md }} | {{ i.supporters }} | \
{{ i.gained }} | {{ i.status | label }} |
{% endfor %}
{%- else %}
No open ideas yet.
{% endif %}
## Biggest movers
{% if d.movers %}
Items that gained the most supporters in this period.

| Ref | Product | Feedback | Supporters gained | Supporters | Status |
|---|---|---|---:|---:|---|
{% for i in d.movers -%}
| {{ i.ref }} | {{ i.product | md }} | {{ i.text | md }} | +{{ i.gained }} | \
{{ i.supporters }} | {{ i.status | label }} |
{% endfor %}
{%- else %}
No item gained supporters in this period.
{% endif %}
## Themes
{% if d.themes %}
What customers talk about, grouped by what they say; emerging: the last two weeks at \
least twice as busy as the eight before.

| Theme | Language | Items | New this period | Supporters | |
|---|---|---:|---:|---:|---|
{% for t in d.themes -%}
| {{ t.label | md }} | {{ t.language }} | {{ t.size }} | {{ t.new }} | {{ t.supporters }} | \
{{ "emerging" if t.emerging else "" }} |
{% endfor %}
{%- else %}
No themes yet.
{% endif %}
## In customers' words
{% if d.quotes %}
{% for q in d.quotes -%}
> {{ q.text | md }}
>
> — {{ q.ref }}, {{ q.product | md }}, {{ q.type | label }}

{% endfor %}
{%- else %}
No quotes in this period.
{% endif %}
## Service answers that did not help
{% if d.service_topics %}
Topics ranked by the share of 👎 votes (at least {{ d.min_votes }} votes).

| Topic | 👎 rate | 👎 votes | Votes |
|---|---:|---:|---:|
{% for t in d.service_topics -%}
| {{ t.topic | md }} | {{ t.rate | pct }} | {{ t.unhelpful }} | {{ t.votes }} |
{% endfor %}
{%- else %}
No service topic got {{ d.min_votes }} or more votes with a 👎 in this period.
{% endif %}
_Generated {{ d.generated_at | when }}. Customer text is redacted of personal data._
"""

_HTML = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Customer feedback digest</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; vertical-align: top; }
td.n, th.n { text-align: right; }
blockquote { border-left: 4px solid #ccc; margin: 1rem 0; padding: .2rem 1rem; }
.muted { color: #666; }
</style>
</head>
<body>
<h1>Customer feedback digest</h1>
<p>{{ d.since | when }} to {{ d.until | when }}: <strong>{{ d.total_new }}</strong> new feedback
item{{ "" if d.total_new == 1 else "s" }}.</p>

<h2>New items by product</h2>
{% if d.new_by_product %}
<table>
<tr><th>Product</th><th class="n">New</th>
{%- for t in types %}<th class="n">{{ t | label | capitalize }}</th>{% endfor %}</tr>
{% for p in d.new_by_product %}
<tr><td>{{ p.product }}</td><td class="n">{{ p.total }}</td>
{%- for t in types %}<td class="n">{{ p.by_type[t] }}</td>{% endfor %}</tr>
{% endfor %}
</table>
{% else %}<p class="muted">No new feedback in this period.</p>{% endif %}

<h2>Top ideas</h2>
{% if d.top_ideas %}
<p>Open ideas with the most supporters.</p>
<table>
<tr><th>Ref</th><th>Product</th><th>Idea</th><th class="n">Supporters</th>
<th class="n">New this period</th><th>Status</th></tr>
{% for i in d.top_ideas %}
<tr><td>{{ i.ref }}</td><td>{{ i.product }}</td><td>{{ i.text }}</td>
<td class="n">{{ i.supporters }}</td><td class="n">{{ i.gained }}</td>
<td>{{ i.status | label }}</td></tr>
{% endfor %}
</table>
{% else %}<p class="muted">No open ideas yet.</p>{% endif %}

<h2>Biggest movers</h2>
{% if d.movers %}
<p>Items that gained the most supporters in this period.</p>
<table>
<tr><th>Ref</th><th>Product</th><th>Feedback</th><th class="n">Supporters gained</th>
<th class="n">Supporters</th><th>Status</th></tr>
{% for i in d.movers %}
<tr><td>{{ i.ref }}</td><td>{{ i.product }}</td><td>{{ i.text }}</td>
<td class="n">+{{ i.gained }}</td><td class="n">{{ i.supporters }}</td>
<td>{{ i.status | label }}</td></tr>
{% endfor %}
</table>
{% else %}<p class="muted">No item gained supporters in this period.</p>{% endif %}

<h2>Themes</h2>
{% if d.themes %}
<p>What customers talk about, grouped by what they say; emerging: the last two weeks at least
twice as busy as the eight before.</p>
<table>
<tr><th>Theme</th><th>Language</th><th class="n">Items</th><th class="n">New this period</th>
<th class="n">Supporters</th><th></th></tr>
{% for t in d.themes %}
<tr><td>{{ t.label }}</td><td>{{ t.language }}</td><td class="n">{{ t.size }}</td>
<td class="n">{{ t.new }}</td><td class="n">{{ t.supporters }}</td>
<td>{{ "emerging" if t.emerging else "" }}</td></tr>
{% endfor %}
</table>
{% else %}<p class="muted">No themes yet.</p>{% endif %}

<h2>In customers' words</h2>
{% for q in d.quotes %}
<blockquote><p>{{ q.text }}</p>
<footer class="muted">— {{ q.ref }}, {{ q.product }}, {{ q.type | label }}</footer></blockquote>
{% else %}<p class="muted">No quotes in this period.</p>
{% endfor %}

<h2>Service answers that did not help</h2>
{% if d.service_topics %}
<p>Topics ranked by the share of 👎 votes (at least {{ d.min_votes }} votes).</p>
<table>
<tr><th>Topic</th><th class="n">👎 rate</th><th class="n">👎 votes</th><th class="n">Votes</th></tr>
{% for t in d.service_topics %}
<tr><td>{{ t.topic }}</td><td class="n">{{ t.rate | pct }}</td><td class="n">{{ t.unhelpful }}</td>
<td class="n">{{ t.votes }}</td></tr>
{% endfor %}
</table>
{% else %}<p class="muted">No service topic got {{ d.min_votes }} or more votes with a 👎 in this
period.</p>{% endif %}

<p class="muted">Generated {{ d.generated_at | when }}. Customer text is redacted of personal
data.</p>
</body>
</html>
"""


@cache
def _template(kind: str) -> Any:
    from jinja2 import Environment, StrictUndefined

    # HTML escapes everything; Markdown escapes customer text through the `md` filter.
    env = Environment(
        autoescape=kind == "html",  # noqa: S701 - Markdown is not HTML; text goes through `md`
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        # Markdown's layout depends on exact newlines, which the template controls itself.
        trim_blocks=kind == "html",
        lstrip_blocks=kind == "html",
    )
    env.filters.update(md=_md, label=_label, pct=_pct, when=_when)
    return env.from_string(_HTML if kind == "html" else _MARKDOWN)


def render_markdown(digest: Digest) -> str:
    text: str = _template("markdown").render(d=digest, types=TYPES)
    # Collapse the blank lines Jinja's block tags leave behind.
    return re.sub(r"\n{3,}", "\n\n", text)


def render_html(digest: Digest) -> str:
    return str(_template("html").render(d=digest, types=TYPES))


def render(digest: Digest, fmt: str) -> str:
    """Render as "md"/"markdown" or "html"."""
    if fmt in ("md", "markdown"):
        return render_markdown(digest)
    if fmt in ("html", "htm"):
        return render_html(digest)
    raise ValueError(f"unknown digest format {fmt!r}; use md or html")
