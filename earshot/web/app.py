"""The review dashboard: inbox, item triage, overview charts, exports and the web chat.

`create_app(settings)` builds the Starlette app; `earshot web` serves it with uvicorn.
Pages are server-rendered Jinja2; the only script is the web chat's. Every POST carries
the session's CSRF token, every change goes through earshot.feedback.triage with the logged-in
reviewer as the actor.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timezone
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from earshot import i18n
from earshot.accounts import service as accounts
from earshot.feedback import inbox as feedback_inbox
from earshot.feedback import triage
from earshot.gateway.model import Incoming
from earshot.gateway.rasa import RasaClient
from earshot.gateway.service import Gateway
from earshot.gateway.support import support_desk
from earshot.insights import overview
from earshot.insights.export import FORMATS
from earshot.insights.stats import snippet
from earshot.integrations import deliveries, trackers
from earshot.settings import ConfigError, Settings
from earshot.storage.db import make_engine
from earshot.storage.models import utcnow
from earshot.web import charts, chat, security
from earshot.web.bodylimit import BodyLimit
from earshot.web.exporting import MEDIA_TYPES, filename, stream_export

log = logging.getLogger("earshot.web")
HERE = Path(__file__).resolve().parent
T = TypeVar("T")

CHAT_COOKIE = "earshot_chat"
CHAT_COOKIE_AGE = 365 * 24 * 3600
LOGIN_FAILURES_PER_MINUTE = 5
CHAT_MESSAGES_PER_MINUTE = 20
OVERVIEW_PERIODS = (30, 90, 180, 365)
TYPE_COLORS = {
    "problem": "#dc2626",
    "idea": "#2563eb",
    "complaint": "#d97706",
    "praise": "#059669",
    "other": "#6b7280",
}
STATUS_LABELS = {s: s.replace("_", " ") for s in feedback_inbox.STATUSES}
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: https:; style-src 'self'; "
        b"script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        b"form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class _SecurityHeaders:
    """Adds CSP and friends to every response; pages also must not be cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                if not static and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Dashboard:
    """The app's shared state: settings, database, templates and rate limiters."""

    def __init__(self, settings: Settings, rasa_transport: httpx.AsyncBaseTransport | None) -> None:
        self.settings = settings
        self.engine = make_engine(settings.db_url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.password = (
            settings.admin_password.get_secret_value() if settings.admin_password else ""
        )
        self.secret = settings.earshot_secret.get_secret_value()
        self.throttle = accounts.LoginThrottle(free=LOGIN_FAILURES_PER_MINUTE)
        self.chat_limiter = security.RateLimiter(CHAT_MESSAGES_PER_MINUTE, 60.0)
        self.rasa_transport = rasa_transport
        self._gateway: Gateway | None = None
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        env = self.templates.env
        env.filters.update(label=_label, when=_when, day=_day, pct=charts.pct, snippet=snippet)
        env.globals.update(
            company=settings.company.name,
            product_name=self.product_name,
            products=[(p.key, p.name) for p in settings.products],
            languages=settings.languages,
            types=feedback_inbox.TYPES,
            statuses=feedback_inbox.STATUSES,
            type_colors=TYPE_COLORS,
            formats=FORMATS,
        )

    def gateway(self, transport: httpx.AsyncBaseTransport | None = None) -> Gateway:
        """The web chat's gateway (made on first use; Rasa through `transport` in tests)."""
        if self._gateway is None:
            s = self.settings
            rasa = RasaClient(
                s.rasa_url, s.rasa_timeout_s, s.rasa_token.get_secret_value(), pooled=False
            )
            self._gateway = Gateway(s, rasa=rasa, support=support_desk(s), db=self.db)
        self._gateway.rasa.transport = transport or self.rasa_transport
        return self._gateway

    async def can_login(self) -> bool:
        """Someone can sign in: ADMIN_PASSWORD is set or dashboard users exist."""
        return bool(self.password) or await self.db(accounts.users_exist)

    def product_name(self, key: str | None) -> str:
        if not key:
            return "No product"
        return self.settings.product_name(key) or key

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    async def db(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """Run `fn(session, **kwargs)` in a worker thread, in its own transaction."""

        def run() -> T:
            with self.transaction() as session:
                return fn(session, **kwargs)

        return await run_in_threadpool(run)


def _label(value: Any) -> str:
    return str(value or "").replace("_", " ")


def _when(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M") if value else ""


def _day(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d") if value else ""


def dash(request: Request) -> Dashboard:
    d: Dashboard = request.app.state.dashboard
    return d


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    flashes = request.session.pop("flash", []) if "flash" in request.session else []
    context.update(
        request=request,
        csrf=security.csrf_token(request),
        user=current_user(request),
        role=getattr(request.state, "role", None),
        flashes=flashes,
    )
    return dash(request).templates.TemplateResponse(
        request, template, context, status_code=status_code
    )


def flash(request: Request, text: str, kind: str = "ok") -> None:
    request.session["flash"] = [*request.session.get("flash", []), [kind, text]][-5:]


def current_user(request: Request) -> str | None:
    """The signed-in user of this request (set by `login_required`)."""
    user = getattr(request.state, "user", None)
    return user if isinstance(user, str) else None


async def _signed_in(request: Request) -> tuple[str, str] | None:
    """(name, role) of the session's user, checked against the server-side session.

    The session row ends at logout and password change, and expires SESSION_MAX_AGE
    after login (the cookie's own max-age slides with every response).
    """
    token = request.session.get("sid")
    if not isinstance(token, str):
        return None
    d = dash(request)

    def lookup(session: Session) -> tuple[str, str] | None:
        name = accounts.session_user(session, token)
        role = name and accounts.role_of(session, name, admin_password=d.password)
        return (name, role) if name and role else None

    return await d.db(lookup)


def _safe_next(value: str) -> str:
    """Only local paths, so the login form cannot be turned into an open redirect."""
    if value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/"


Handler = Callable[[Request], Awaitable[Response]]


def role_required(role: str) -> Callable[[Handler], Handler]:
    """Sign-in and at least `role` (viewer < triager < admin) for the route; 403 below."""

    def decorate(fn: Handler) -> Handler:
        @wraps(fn)
        async def wrapper(request: Request) -> Response:
            d = dash(request)
            found = await _signed_in(request)
            if found is None:
                if not await d.can_login():
                    return render(request, "setup.html", status_code=503)
                path, query = request.url.path, request.url.query
                target = path + (f"?{query}" if query else "")
                return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)
            request.state.user, request.state.role = found
            if not accounts.role_at_least(found[1], role):
                log.warning("%s (%s) refused %s", found[0], found[1], request.url.path)
                raise HTTPException(403, f"This needs the {role} role; you are a {found[1]}.")
            return await fn(request)

        return wrapper

    return decorate


def login_required(fn: Handler) -> Handler:
    """Any signed-in user (viewer and up): reading."""
    return role_required("viewer")(fn)


async def checked_form(request: Request) -> FormData:
    """The POSTed form, after checking its CSRF token (403 without a valid one)."""
    form = await request.form()
    if not security.csrf_valid(request, form.get(security.CSRF_FIELD)):
        raise HTTPException(403, "Missing or invalid CSRF token; reload the page and try again.")
    return form


def _text(form: FormData, name: str, limit: int = 2000) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


# --- login -------------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    d = dash(request)
    if not await d.can_login():
        return render(request, "setup.html", status_code=503)
    nxt = _safe_next(request.query_params.get("next", "/"))
    if await _signed_in(request):
        return RedirectResponse(nxt, status_code=303)
    return render(request, "login.html", next=nxt, name=security.DEFAULT_USER, error=None)


async def login_submit(request: Request) -> Response:
    d = dash(request)
    if not await d.can_login():
        return render(request, "setup.html", status_code=503)
    form = await checked_form(request)
    nxt = _safe_next(_text(form, "next") or "/")
    name = security.clean_user(_text(form, "user", 64))
    client = security.client_key(request)
    wait = d.throttle.retry_after(name, client)
    if wait:
        log.warning("login of %r from %s held back: too many failed attempts", name, client)
        response = render(
            request,
            "login.html",
            status_code=429,
            next=nxt,
            name=name,
            error=f"Too many failed attempts. Try again in {wait} seconds.",
        )
        response.headers["Retry-After"] = str(wait)
        return response
    password = _text(form, "password", 1024)
    role = await d.db(
        accounts.authenticate, name=name, password=password, admin_password=d.password
    )
    if role is None:
        d.throttle.failed(name, client)
        log.warning("failed dashboard login for %r from %s", name, client)
        return render(
            request,
            "login.html",
            status_code=401,
            next=nxt,
            name=name,
            error="Wrong name or password.",
        )
    d.throttle.succeeded(name, client)
    token = await d.db(accounts.start_session, name=name, max_age_s=security.SESSION_MAX_AGE)
    # A fresh session (and CSRF token) at login, so nothing from before carries over.
    request.session.clear()
    request.session.update(sid=token)
    security.csrf_token(request)
    log.info("dashboard login: %s from %s", name, client)
    return RedirectResponse(nxt, status_code=303)


async def logout(request: Request) -> Response:
    await checked_form(request)
    token = request.session.get("sid")
    if isinstance(token, str):  # ends the session on the server too, not just the cookie
        await dash(request).db(accounts.end_session, token=token)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@role_required("admin")
async def users_page(request: Request) -> Response:
    users = await dash(request).db(accounts.list_users)
    return render(request, "users.html", users=users, roles=accounts.ROLES)


# --- inbox -------------------------------------------------------------------------------


def _filters(request: Request) -> feedback_inbox.InboxFilter:
    s = dash(request).settings
    return feedback_inbox.InboxFilter.parse(
        request.query_params, products=[p.key for p in s.products], languages=s.languages
    )


@login_required
async def inbox(request: Request) -> Response:
    d = dash(request)
    f = _filters(request)
    after = request.query_params.get("after", "")[:80]
    before = request.query_params.get("before", "")[:80]
    page = await d.db(feedback_inbox.inbox_page, f=f, after=after, before=before)
    return render(
        request,
        "inbox.html",
        f=f,
        page=page,
        qs=lambda **changes: urlencode(f.query_params(**changes)),
        export_qs=urlencode(f.query_params(sort="")),
    )


# --- item ---------------------------------------------------------------------------------


@login_required
async def item_page(request: Request) -> Response:
    d = dash(request)
    ref = request.path_params["ref"]

    def build(session: Session) -> Response:
        context = feedback_inbox.item_details(session, ref=ref)
        if context is None:
            return render(request, "error.html", 404, title="Not found", message=f"No item {ref}.")
        issues = trackers.links_of(session, ref=ref)
        linked = {x.tracker for x in issues}
        can_create = [t for t in trackers.configured(d.settings) if t not in linked]
        return render(request, "item.html", issues=issues, can_create=can_create, **context)

    # Rendered inside the transaction: the template reads lazy attributes of the rows.
    return await d.db(build)


Action = Callable[[Session, str, FormData, str], tuple[str, str]]


def _action(fn: Action) -> Handler:
    """A triage action on /items/{ref}: check CSRF, run it, record who, flash the result.

    The action returns its message and the ref of the item to show next.
    """

    @role_required("triager")
    @wraps(fn)
    async def handler(request: Request) -> Response:
        d = dash(request)
        form = await checked_form(request)
        ref = request.path_params["ref"].upper()
        actor = current_user(request) or security.DEFAULT_USER
        try:
            message, show = await d.db(lambda s: fn(s, ref, form, actor))
        except triage.TriageError as exc:
            flash(request, str(exc), "error")
            return RedirectResponse(f"/items/{ref}", status_code=303)
        log.info("%s: %s", actor, message)  # the audit trail's twin of the item history
        flash(request, message)
        return RedirectResponse(f"/items/{show}", status_code=303)

    return handler


@_action
def status_action(session: Session, ref: str, form: FormData, actor: str) -> tuple[str, str]:
    status = _text(form, "status", 32)
    note = _text(form, "note") or None
    if triage.set_status(session, ref=ref, status=status, actor=actor, note=note):
        return f"{ref} is now {_label(status)}", ref
    if note:  # keep what the reviewer wrote even when the status stays
        triage.add_note(session, ref=ref, text=note, actor=actor)
        return f"{ref} was already {_label(status)}; note added", ref
    return f"{ref} was already {_label(status)}", ref


@_action
def tag_action(session: Session, ref: str, form: FormData, actor: str) -> tuple[str, str]:
    tag = _text(form, "tag", 64)
    if form.get("remove"):
        removed = triage.remove_tag(session, ref=ref, tag=tag, actor=actor)
        return (f"tag '{tag}' removed" if removed else f"{ref} had no tag '{tag}'"), ref
    added = triage.add_tag(session, ref=ref, tag=tag, actor=actor)
    return (f"{ref} tagged '{tag.lower()}'" if added else f"{ref} already had that tag"), ref


@_action
def note_action(session: Session, ref: str, form: FormData, actor: str) -> tuple[str, str]:
    triage.add_note(session, ref=ref, text=_text(form, "note"), actor=actor)
    return f"note added to {ref}", ref


@_action
def merge_action(session: Session, ref: str, form: FormData, actor: str) -> tuple[str, str]:
    into = _text(form, "into", 16)
    if not into:
        raise triage.TriageError("say which item to merge into")
    original = triage.merge(session, ref=ref, into_ref=into, actor=actor)
    return f"{ref} merged into {original.ref} ({original.supporters} supporters)", original.ref


# --- overview -----------------------------------------------------------------------------


def _overview_charts(d: Dashboard, ov: overview.Overview) -> dict[str, Any]:
    weeks = [w.strftime("%d %b") for w in ov.weeks]
    volume = charts.stacked_bars(
        weeks,
        [
            charts.Series(_label(t), [ov.volume.get(w, {}).get(t, 0) for w in ov.weeks], c)
            for t, c in TYPE_COLORS.items()
        ],
        label="Feedback volume per week by type",
        width=1200,
        height=260,
    )
    products = charts.hbars(
        [charts.Bar(d.product_name(p), n) for p, n in ov.products], label="Top products"
    )
    ideas = charts.hbars(
        [
            charts.Bar(f"{ref} {snippet(text, 60)}", n, href=f"/items/{ref}")
            for ref, text, n in ov.top_ideas
        ],
        label="Top ideas by supporters",
        color="#7c3aed",
        label_width=270,
    )
    sentiment = charts.lines(
        weeks,
        [charts.Series("average sentiment", [ov.sentiment.get(w) for w in ov.weeks], "#059669")],
        label="Sentiment trend",
        lo=-1.0,
        hi=1.0,
        zero_line=True,
    )
    helpful = charts.hbars(
        [charts.Bar(r.label, r.rate, f"{r.hits} of {r.total}") for r in ov.helpful],
        label="Did that help? by service topic",
        max_value=1.0,
        fmt=charts.pct,
        color="#059669",
    )
    response = charts.hbars(
        [charts.Bar(_label(r.label), r.rate, f"{r.hits} of {r.total}") for r in ov.response],
        label="Response rate by ask trigger",
        max_value=1.0,
        fmt=charts.pct,
        color="#d97706",
    )
    csat = charts.lines(
        weeks,
        [charts.Series("CSAT (helpful votes)", [ov.csat_weekly.get(w) for w in ov.weeks])],
        label="CSAT per week",
        lo=0.0,
        hi=1.0,
        fmt=charts.pct,
    )
    return {
        "volume": volume,
        "products": products,
        "ideas": ideas,
        "sentiment": sentiment,
        "helpful": helpful,
        "response": response,
        "csat": csat,
    }


@login_required
async def overview_page(request: Request) -> Response:
    d = dash(request)
    try:
        days = int(request.query_params.get("days", "90"))
    except ValueError:
        days = 90
    days = days if days in OVERVIEW_PERIODS else 90
    ov = await d.db(overview.overview, days=days, now=utcnow())
    return render(
        request,
        "overview.html",
        ov=ov,
        days=days,
        periods=OVERVIEW_PERIODS,
        charts=_overview_charts(d, ov),
    )


# --- campaigns ----------------------------------------------------------------------------


@login_required
async def campaigns_page(request: Request) -> Response:
    """Each campaign's progress (skipped sends, WhatsApp deliveries and Messenger receipts
    included) and the wa.me and m.me links that start feedback for a campaign or a product."""
    from earshot.outreach.campaigns import campaign_rows
    from earshot.outreach.links import LinkError, deep_link

    d = dash(request)
    rows = await d.db(campaign_rows, campaigns=d.settings.campaigns)

    def link(channel: str = "whatsapp", **which: str) -> str | None:
        try:
            return deep_link(d.settings, channel, **which)
        except LinkError:
            return None

    links = {r.id: link(campaign=r.id) for r in rows}
    fb_links = {r.id: link("messenger", campaign=r.id) for r in rows}
    products = [(p.name, link(product=p.key)) for p in d.settings.products]
    fb_products = [(p.name, link("messenger", product=p.key)) for p in d.settings.products]
    return render(
        request,
        "campaigns.html",
        rows=rows,
        links=links,
        products=products,
        fb_links=fb_links,
        fb_products=fb_products,
    )


# --- export -------------------------------------------------------------------------------


@role_required("triager")
async def export_download(request: Request) -> Response:
    d = dash(request)
    fmt = request.path_params["fmt"]
    if fmt not in FORMATS:
        raise HTTPException(404)
    f = _filters(request)
    actor = current_user(request)
    log.info("%s: export %s %s", actor, fmt, f.query_params(sort=""))
    body = await stream_export(d.sessions, fmt=fmt, filters=f.export_filter())
    return StreamingResponse(
        body,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename(fmt)}"'},
    )


# --- web chat -----------------------------------------------------------------------------


def _chat_language(request: Request, languages: list[str], default: str) -> str:
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().split("-")[0].lower()
        if code in languages:
            return code
    return default


async def chat_page(request: Request) -> Response:
    s = dash(request).settings
    language = _chat_language(request, s.languages, s.default_language)
    response = render(
        request,
        "chat.html",
        language=language,
        t={k: i18n.text(k, language) for k in i18n.TEXTS[i18n.FALLBACK] if k.startswith("web_")},
        language_names=i18n.LANGUAGE_NAMES,
    )
    if not request.cookies.get(CHAT_COOKIE):
        # A random id per browser; Rasa only ever sees its keyed hash (user_key).
        response.set_cookie(
            CHAT_COOKIE,
            secrets.token_urlsafe(24),
            max_age=CHAT_COOKIE_AGE,
            httponly=True,
            samesite="lax",
            secure=s.environment == "production" or request.url.scheme == "https",
        )
    return response


def _chat_error(text: str, status: int) -> JSONResponse:
    return JSONResponse({"messages": [{"text": text, "buttons": []}], "error": True}, status)


async def chat_send(request: Request) -> Response:
    d = dash(request)
    if not security.csrf_valid(request, request.headers.get(security.CSRF_HEADER)):
        return JSONResponse({"error": "missing or invalid CSRF token; reload the page"}, 403)
    cookie = request.cookies.get(CHAT_COOKIE, "")
    if not (16 <= len(cookie) <= 64):
        return JSONResponse({"error": "no chat session; reload the page"}, 403)
    client = security.client_key(request)
    if not d.chat_limiter.hit(client):
        s = d.settings
        lang = _chat_language(request, s.languages, s.default_language)
        return _chat_error(i18n.text("too_fast", lang), 429)
    try:
        data = await request.json()
    except ValueError:
        return JSONResponse({"error": "expected JSON"}, 400)
    if not isinstance(data, dict):
        return JSONResponse({"error": "expected a JSON object"}, 400)
    # The page's language picker is the channel's hint; a language the visitor chose in
    # the chat (/language) beats it (the gateway remembers the choice).
    language = str(data.get("language") or "")
    if language not in d.settings.languages:
        language = d.settings.default_language
    button = data.get("button")
    if isinstance(button, str) and button:
        incoming = Incoming("web", cookie, "", button=button, language_hint=language)
    else:
        text = " ".join(str(data.get("message") or "").split())[: chat.MAX_MESSAGE]
        if not text:
            return JSONResponse({"error": "empty message"}, 400)
        incoming = Incoming("web", cookie, "", text=text, language_hint=language)
    gateway = d.gateway(getattr(request.app.state, "rasa_transport", None))
    channel = chat.WebChannel()
    outcome = await gateway.handle(incoming, channel)
    status = {"unavailable": 503, "limited": 429}.get(outcome.status, 200)
    body: dict[str, Any] = {"messages": channel.messages, "language": outcome.language}
    if outcome.status in ("unavailable", "limited", "expired", "unknown_command"):
        body["error"] = True
    return JSONResponse(body, status)


# --- errors and app -----------------------------------------------------------------------


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/chat/"):
        return JSONResponse({"error": exc.detail}, exc.status_code)
    titles = {403: "Forbidden", 404: "Not found", 405: "Not allowed"}
    return render(
        request,
        "error.html",
        exc.status_code,
        title=titles.get(exc.status_code, "Error"),
        message=exc.detail,
    )


async def health(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _themes_loop(dashboard: Dashboard, every_s: float) -> None:
    """Theme new items and re-run the themes now and then, in the dashboard's process
    (`earshot web`, so also `make run`); a failure is logged and retried next time."""
    from earshot.feedback.service import product_words
    from earshot.themes import service as themes

    ignore = product_words(dashboard.settings.catalogue)
    while True:
        try:
            message = await dashboard.db(themes.tick, ignore=ignore)
            if not message.startswith("0 new"):
                log.info("themes: %s", message)
        except Exception:  # the dashboard must outlive a failed run
            log.exception("themes: the background run failed; retrying later")
        await asyncio.sleep(every_s)


def create_app(
    settings: Settings,
    *,
    rasa_transport: httpx.AsyncBaseTransport | None = None,
    themes_every_s: float | None = None,
) -> Starlette:
    """The dashboard app. Refuses to start in production without ADMIN_PASSWORD.

    (Dashboard users made with `earshot users add` sign in as well; see earshot.accounts.service.)

    `rasa_transport` (or `app.state.rasa_transport`) replaces the HTTP transport to Rasa,
    for tests. `themes_every_s`: keep the themes up to date in the background this often
    (`earshot web` sets it; tests leave it off).
    """
    dashboard = Dashboard(settings, rasa_transport)
    if settings.environment == "production" and not dashboard.password:
        try:
            with dashboard.transaction() as session:
                has_users = accounts.users_exist(session)
        except SQLAlchemyError:  # not migrated yet: nobody can sign in
            has_users = False
        if not has_users:
            dashboard.engine.dispose()
            raise ConfigError(
                "ADMIN_PASSWORD: must be set to run the dashboard in production "
                "(or add a user: earshot users add NAME --role admin)"
            )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # In the background of the dashboard's event loop (never the bot's): webhooks and
        # Slack (earshot/integrations/deliverer.py), and keeping the themes up to date.
        stop, task, deliverer = asyncio.Event(), None, None
        if settings.integrations_deliverer and deliveries.targets(settings):
            from earshot.integrations.deliverer import Deliverer

            deliverer = Deliverer(settings, dashboard.sessions)
            task = asyncio.create_task(deliverer.run(stop))
        themes_task = (
            asyncio.create_task(_themes_loop(dashboard, themes_every_s)) if themes_every_s else None
        )
        yield
        if themes_task is not None:
            themes_task.cancel()
        if task is not None and deliverer is not None:
            stop.set()
            await task
            await deliverer.aclose()
        dashboard.engine.dispose()

    # These import this module: only now, not at import.
    from earshot.web import integrations, misunderstood
    from earshot.web import themes as themes_pages

    routes = [
        *misunderstood.routes(),
        *integrations.routes(),
        *themes_pages.routes(),
        Route("/", inbox),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/users", users_page),
        Route("/items/{ref}", item_page),
        Route("/items/{ref}/status", status_action, methods=["POST"]),
        Route("/items/{ref}/tags", tag_action, methods=["POST"]),
        Route("/items/{ref}/notes", note_action, methods=["POST"]),
        Route("/items/{ref}/merge", merge_action, methods=["POST"]),
        Route("/overview", overview_page),
        Route("/campaigns", campaigns_page),
        Route("/export.{fmt}", export_download),
        Route("/chat", chat_page),
        Route("/chat/send", chat_send, methods=["POST"]),
        Route("/healthz", health),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.dashboard = dashboard
    app.state.rasa_transport = rasa_transport
    key = security.derive_key(dashboard.secret, "session")
    app.add_middleware(
        security.Sessions,
        secret_key=key,
        always_secure=settings.environment == "production",
    )
    app.add_middleware(
        BodyLimit,
        limit=settings.max_request_body_bytes,
        larger={"/hooks/": integrations.HOOK_BODY_LIMIT},
    )
    app.add_middleware(_SecurityHeaders)
    return app
