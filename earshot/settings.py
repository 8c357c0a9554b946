"""Operator configuration: `config.yml` for the company, the environment for secrets.

Precedence (highest first): environment variables, `.env`, `config.yml`, defaults.
Secrets (tokens, keys, passwords) are read only from the environment or `.env`.
"""

from __future__ import annotations

import os
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
)


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
    def catalogue(self) -> dict[str, list[str]]:
        """Product key -> names and synonyms, for text matching."""
        return {p.key: [p.name, *p.synonyms] for p in self.products}

    @property
    def x_enabled(self) -> bool:
        """True when the X direct-message webhook has what it needs to run."""
        return bool(self.x_consumer_secret and self.x_access_token and self.x_user_id)

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


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
