"""Operator configuration: `config.yml` for the company, the environment for secrets.

Precedence (highest first): environment variables, `.env`, `config.yml`, defaults.
Secrets (tokens, keys, passwords) are read only from the environment or `.env`.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_SECRET = "dev-only-insecure-secret"  # noqa: S105 - refused in production mode
ROOT = Path(__file__).resolve().parent.parent

# Keys that may only come from the environment: a secret in config.yml would end up in git.
SECRET_KEYS = (
    "telegram_bot_token",
    "telegram_webhook_secret",
    "earshot_secret",
    "rasa_token",
    "admin_password",
    "x_consumer_secret",
    "x_access_token",
    "x_access_token_secret",
    "whatsapp_access_token",
    "whatsapp_app_secret",
    "whatsapp_verify_token",
    "messenger_page_access_token",
    "messenger_app_secret",
    "messenger_verify_token",
    "slack_bot_token",
    "github_token",
    "github_webhook_secret",
    "jira_api_token",
    "jira_webhook_secret",
)
# Message tags Meta allows for Messenger messages outside the 24-hour standard window, each
# for non-promotional updates only; Instagram accepts none of these (only HUMAN_AGENT, for
# people answering), so Instagram messages outside the window are skipped.
MESSENGER_TAGS = ("ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE")


class ConfigError(Exception):
    """Invalid configuration; the message names the key and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Company(_Strict):
    name: str
    ref_prefix: str = Field(default="FB", pattern=r"^[A-Z]{1,4}$")
    website: str | None = None


class Product(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    name: str
    synonyms: list[str] = []


class Campaign(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    question: dict[str, str]
    product: str | None = None
    starts: datetime | None = None
    ends: datetime | None = None


class WhatsAppTemplates(_Strict):
    """Approved template names per language, for messages sent outside the 24-hour window."""

    feedback_ask: dict[str, str] = {}
    campaign: dict[str, str] = {}
    notice: dict[str, str] = {}


class WhatsApp(_Strict):
    """WhatsApp settings that are not secrets (config.yml's `whatsapp:`)."""

    templates: WhatsAppTemplates = WhatsAppTemplates()
    # The business number as customers type it in wa.me links (digits only, no +).
    number: str | None = Field(default=None, pattern=r"^[1-9][0-9]{6,14}$")


class Messenger(_Strict):
    """Messenger and Instagram settings that are not secrets (config.yml's `messenger:`)."""

    # The Page's username, for m.me/<page>?ref=... deep links.
    page: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.]{5,50}$")
    # The Instagram professional account's username, for ig.me/m/<name>?ref=... links.
    instagram_username: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._]{1,30}$")
    # The tag a status notice about the customer's own feedback carries outside the window
    # (None: such notices are skipped there too). Campaign questions are promotional and
    # feedback asks are surveys: Meta allows no tag for them, so they have none.
    notice_tag: str | None = "ACCOUNT_UPDATE"


WEBHOOK_EVENTS = (
    "item.created",
    "item.status_changed",
    "item.merged",
    "item.supported",
    "theme.emerging",
)


class WebhookEndpoint(_Strict):
    """An operator's webhook receiver: where to POST which events, signed with the secret
    in the environment variable `secret_env` (never the secret itself)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    url: str = Field(pattern=r"^https?://")
    events: list[str] = list(WEBHOOK_EVENTS)
    secret_env: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,63}$")

    @model_validator(mode="after")
    def _known_events(self) -> WebhookEndpoint:
        unknown = sorted(set(self.events) - set(WEBHOOK_EVENTS))
        if unknown:
            raise ValueError(
                f"unknown event(s) {', '.join(unknown)}; use {', '.join(WEBHOOK_EVENTS)}"
            )
        return self


class Settings(BaseSettings):
    """Everything Earshot needs to run; see `.env.example` and `config.yml`."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    environment: Literal["development", "production"] = "development"
    log_level: str = "INFO"

    company: Company = Company(name="Example Company")
    products: list[Product] = []
    languages: list[str] = ["en"]
    default_language: str = "en"
    knowledge_base: Path = Path("kb")

    ask_interval_days: int = Field(default=14, ge=0)
    retention_days: int = Field(default=180, ge=1)
    # Rasa re-reads and replays a conversation's whole session on every turn; past this
    # many events a new session starts with the slots carried over (0: never).
    session_max_events: int = Field(default=200, ge=0)
    # An answer whose top two FAQ topics are closer than this goes to the dashboard's
    # Misunderstood queue (as do fallbacks, out-of-scope requests and 👎 votes).
    misunderstood_margin: float = Field(default=0.15, ge=0.0, le=1.0)
    support_chat_id: int | None = None
    team: list[int] = []
    campaigns: list[Campaign] = []

    data_dir: Path = Path("data")
    database_url: str = ""

    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_webhook_listen: str = "127.0.0.1"
    telegram_webhook_port: int = 8443
    # Telegram lets a bot send about 30 messages/s in all (Bot FAQ); the bot's rate limiter
    # keeps to this. Lower it if Telegram often answers 429; 0: no limit (test doubles).
    telegram_messages_per_second: float = Field(default=30.0, ge=0)
    # At peaks, send the messages over that limit at once as paid broadcasts (0.1 Stars each)
    # rather than hold them; nothing is paid under the limit.
    telegram_paid_overflow: bool = False

    # WhatsApp Business (Cloud API): the webhook runs when the token and number id are set.
    whatsapp: WhatsApp = WhatsApp()
    whatsapp_access_token: SecretStr | None = None
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = None
    # The Graph API root; tests and the benchmark point it at the local fake.
    whatsapp_api_base_url: str = "https://graph.facebook.com"
    whatsapp_api_version: str = "23.0"
    whatsapp_webhook_listen: str = "127.0.0.1"
    whatsapp_webhook_port: int = 8444
    whatsapp_webhook_path: str = "/whatsapp"
    # Cloud API throughput per business number (80 messages/s by default; Meta raises it
    # to 1,000 for large senders). 0: no limit (test doubles).
    whatsapp_messages_per_second: float = Field(default=80.0, ge=0)

    # Facebook Messenger (and Instagram direct messages through the same Page): the webhook
    # runs when the Page access token is set.
    messenger: Messenger = Messenger()
    messenger_page_access_token: SecretStr | None = None
    messenger_app_secret: SecretStr | None = None
    messenger_verify_token: SecretStr | None = None
    # The Graph API root; tests point it at the local fake.
    messenger_api_base_url: str = "https://graph.facebook.com"
    messenger_api_version: str = "23.0"
    messenger_webhook_listen: str = "127.0.0.1"
    messenger_webhook_port: int = 8445
    messenger_webhook_path: str = "/messenger"
    # Instagram direct messages of the professional account connected to the Page: the
    # same webhook (object "instagram") and Send API, with Instagram's limits.
    instagram_enabled: bool = False

    # X (Twitter) direct messages: the Account Activity webhook runs when the app's consumer
    # key and secret, the account's access token and secret and its user id are set.
    x_consumer_key: str | None = None
    x_consumer_secret: SecretStr | None = None
    x_access_token: SecretStr | None = None
    x_access_token_secret: SecretStr | None = None
    x_user_id: str | None = Field(default=None, pattern=r"^[0-9]{1,20}$")
    # The X API root; tests point it at the local fake.
    x_api_base_url: str = "https://api.x.com"
    x_webhook_listen: str = "127.0.0.1"
    x_webhook_port: int = 8446
    x_webhook_path: str = "/x"
    # A DM refused with 429 waits for the rate-limit window to reset, at most this long.
    x_max_rate_wait_s: float = Field(default=900.0, ge=0)

    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: SecretStr = SecretStr("dev-only-rasa-token")
    rasa_timeout_s: float = 20.0
    # The trained model `earshot run` serves; empty: models/earshot.tar.gz (make train).
    rasa_model: Path | None = None
    # Show "typing…" only when an answer takes longer than this (0: always).
    typing_after_s: float = 0.8
    action_server_port: int = 5055
    # Where Rasa finds the action server; default: this machine's action_server_port.
    action_endpoint_url: str | None = None
    redis_url: str | None = None

    web_port: int = 8000  # the review dashboard and web chat, on 127.0.0.1
    # Request bodies above this many bytes get 413 before they are parsed (dashboard,
    # login and web chat).
    max_request_body_bytes: int = Field(default=16 * 1024, ge=1024)
    # Messages (and button presses) one Telegram customer may send per minute; above it
    # one polite notice, then silence until the minute has passed (0: no limit).
    customer_messages_per_minute: int = Field(default=20, ge=0)

    earshot_secret: SecretStr = SecretStr(DEFAULT_SECRET)
    admin_password: SecretStr | None = None

    # Integrations (earshot/integrations, docs/operations.md "Integrations").
    # Where links in webhooks, Slack and issues point: the dashboard as teams reach it.
    dashboard_url: str | None = None
    webhooks: list[WebhookEndpoint] = []
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    # Tries per delivery before it is marked failed (the dashboard can retry it).
    webhook_max_attempts: int = Field(default=10, ge=1)
    # Backoff: base * 2^(attempt-1), capped, times a random factor in [0.5, 1) (jitter).
    webhook_retry_base_s: float = Field(default=10.0, gt=0)
    webhook_retry_max_s: float = Field(default=3600.0, gt=0)
    # Deliveries in flight at once, over all endpoints.
    webhook_concurrency: int = Field(default=16, ge=1)
    # How often the deliverer looks for new events.
    webhook_poll_s: float = Field(default=0.25, gt=0)
    # Delivered events and their attempt log are kept this long.
    webhook_log_days: int = Field(default=30, ge=1)
    # Run the deliverer inside the dashboard process (`earshot web`, `earshot run`).
    integrations_deliverer: bool = True

    slack_bot_token: SecretStr | None = None
    slack_channel: str | None = None
    slack_api_base_url: str = "https://slack.com/api/"
    # Important: a problem or complaint with sentiment at or below this, or an item
    # reaching this many supporters (0: never by supporters).
    slack_negative_sentiment: float = Field(default=-0.3, ge=-1, le=1)
    slack_supporters: int = Field(default=5, ge=0)
    # The weekly digest goes to Slack on this ISO weekday (1 = Monday; 0: never) at this
    # UTC hour, covering the seven days before.
    slack_digest_weekday: int = Field(default=1, ge=0, le=7)
    slack_digest_hour: int = Field(default=9, ge=0, le=23)

    github_token: SecretStr | None = None
    github_repo: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")
    github_api_base_url: str = "https://api.github.com"
    github_webhook_secret: SecretStr | None = None

    jira_base_url: str | None = None  # e.g. https://lumen.atlassian.net
    jira_email: str | None = None
    jira_api_token: SecretStr | None = None
    jira_project: str | None = None
    jira_issue_type: str = "Task"
    jira_webhook_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _check(self) -> Settings:
        keys = [p.key for p in self.products]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"products: duplicate key(s) {', '.join(dupes)}")
        for c in self.campaigns:
            if c.product and c.product not in keys:
                raise ValueError(f"campaigns.{c.id}.product: unknown product '{c.product}'")
        if self.default_language not in self.languages:
            raise ValueError("default_language: must be one of languages")
        for purpose, names in self.whatsapp.templates.model_dump().items():
            for lang, name in names.items():
                if lang not in self.languages:
                    raise ValueError(f"whatsapp.templates.{purpose}.{lang}: not one of languages")
                if not re.fullmatch(r"[a-z0-9_]{1,512}", name):
                    raise ValueError(
                        f"whatsapp.templates.{purpose}.{lang}: '{name}' is not a template "
                        "name (lowercase letters, digits and _)"
                    )
        if self.whatsapp_access_token and not self.whatsapp_app_secret:
            raise ValueError("WHATSAPP_APP_SECRET: required with WHATSAPP_ACCESS_TOKEN")
        if self.whatsapp_access_token and not self.whatsapp_phone_number_id:
            raise ValueError("WHATSAPP_PHONE_NUMBER_ID: required with WHATSAPP_ACCESS_TOKEN")
        if self.messenger_page_access_token and not self.messenger_app_secret:
            raise ValueError("MESSENGER_APP_SECRET: required with MESSENGER_PAGE_ACCESS_TOKEN")
        if self.instagram_enabled and not self.messenger_page_access_token:
            raise ValueError("INSTAGRAM_ENABLED: needs MESSENGER_PAGE_ACCESS_TOKEN (its Page's)")
        tag = self.messenger.notice_tag
        if tag is not None and tag not in MESSENGER_TAGS:
            raise ValueError(
                f"messenger.notice_tag: '{tag}' is not one of {', '.join(MESSENGER_TAGS)}"
            )
        x_parts = {
            "X_CONSUMER_KEY": self.x_consumer_key,
            "X_CONSUMER_SECRET": self.x_consumer_secret,
            "X_ACCESS_TOKEN": self.x_access_token,
            "X_ACCESS_TOKEN_SECRET": self.x_access_token_secret,
        }
        if any(x_parts.values()):  # the credentials come all or none, with the account's id
            x_parts["X_USER_ID"] = self.x_user_id
        if any(x_parts.values()) and not all(x_parts.values()):
            missing = ", ".join(k for k, v in x_parts.items() if not v)
            raise ValueError(f"{missing}: required for X direct messages (or leave all X_ unset)")
        if self.environment == "production":
            if self.earshot_secret.get_secret_value() in ("", DEFAULT_SECRET):
                raise ValueError("EARSHOT_SECRET: must be set to a private value in production")
            if len(self.earshot_secret.get_secret_value()) < 16:
                raise ValueError("EARSHOT_SECRET: must be at least 16 characters in production")
            if self.rasa_token.get_secret_value() == "dev-only-rasa-token":
                raise ValueError("RASA_TOKEN: must be set in production")
            if self.telegram_webhook_url and not self.telegram_webhook_secret:
                raise ValueError("TELEGRAM_WEBHOOK_SECRET: required in webhook mode")
        return self

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL of the app database (SQLite under data/ by default)."""
        if self.database_url:
            return normalise_db_url(self.database_url)
        return f"sqlite:///{(self.data_dir / 'earshot.db').resolve()}"

    @property
    def dashboard_base(self) -> str:
        """The dashboard's address for links (no trailing slash)."""
        return (self.dashboard_url or f"http://127.0.0.1:{self.web_port}").rstrip("/")

    @property
    def catalogue(self) -> dict[str, list[str]]:
        """Product key -> names and synonyms, for text matching."""
        return {p.key: [p.name, *p.synonyms] for p in self.products}

    @property
    def x_enabled(self) -> bool:
        """True when the X direct-message webhook has what it needs to run."""
        return bool(self.x_consumer_secret and self.x_access_token and self.x_user_id)

    @property
    def whatsapp_enabled(self) -> bool:
        """True when the WhatsApp webhook has what it needs to run."""
        return bool(self.whatsapp_access_token and self.whatsapp_phone_number_id)

    @property
    def messenger_enabled(self) -> bool:
        """True when the Messenger webhook has what it needs to run."""
        return bool(self.messenger_page_access_token and self.messenger_app_secret)

    def product_name(self, key: str | None) -> str | None:
        return next((p.name for p in self.products if p.key == key), None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            _YamlSource(settings_cls),
        )


def normalise_db_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given in the common short forms."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def config_path() -> Path:
    return Path(os.environ.get("EARSHOT_CONFIG", "config.yml"))


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the operator's `config.yml`, refusing secrets in it."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ is used instead

    def __call__(self) -> dict[str, Any]:
        path = config_path()
        if not path.exists():
            return {}
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: must be a mapping of keys to values")
        for key in SECRET_KEYS:
            if key in data:
                raise ConfigError(
                    f"{path}: '{key}' is a secret; set it as the environment variable "
                    f"{key.upper()} instead of in the config file"
                )
        unknown = sorted(set(data) - set(self.settings_cls.model_fields))
        if unknown:
            raise ConfigError(f"{path}: unknown key(s): {', '.join(unknown)}")
        return data


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        lines.append(f"  {loc}: {err['msg']}")
    return "invalid configuration:\n" + "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation errors into one readable ConfigError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def is_loopback(host: str) -> bool:
    """True when `host` is reachable only from this machine."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposed_secret(
    settings: Settings, *, listen_host: str | None = None, users_exist: bool = False
) -> None:
    """Refuse to start an instance others can reach with a missing or default secret.

    Exposed: the dashboard listens on a non-loopback address, a Telegram webhook is set,
    or someone can log in (ADMIN_PASSWORD or dashboard users). Only an explicit
    ENVIRONMENT=development skips the check, so a laptop's `make run` (loopback, no
    users) works with the defaults.
    """
    if settings.environment == "development" and "environment" in settings.model_fields_set:
        return
    reasons = []
    if listen_host is not None and not is_loopback(listen_host):
        reasons.append(f"the dashboard listens on {listen_host}")
    if settings.telegram_webhook_url:
        reasons.append("TELEGRAM_WEBHOOK_URL is set")
    if settings.whatsapp_enabled:
        reasons.append("the WhatsApp webhook is set up")
    if settings.messenger_enabled:
        reasons.append("the Messenger webhook is set up")
    if settings.x_enabled:
        reasons.append("the X webhook is set up")
    if settings.admin_password and settings.admin_password.get_secret_value():
        reasons.append("ADMIN_PASSWORD is set")
    if users_exist:
        reasons.append("dashboard users exist")
    secret = settings.earshot_secret.get_secret_value()
    if reasons and (secret in ("", DEFAULT_SECRET) or len(secret) < 16):
        raise ConfigError(
            "EARSHOT_SECRET: set a private value of at least 16 characters: this instance "
            f"is exposed ({'; '.join(reasons)}). For local development only, set "
            "ENVIRONMENT=development explicitly."
        )


def configure_logging(settings: Settings) -> None:
    """Log lines at `log_level` for a channel process (the Telegram bot, the webhooks).

    httpx logs every request URL at INFO, and Telegram's URLs carry the bot token, so
    httpx only says what went wrong."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
