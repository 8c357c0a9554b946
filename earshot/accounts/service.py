"""Dashboard accounts: who may sign in, with which role, and their sessions.

One list of the team: a user signs in to the dashboard with a name and password (argon2
hash, argon2-cffi) and, with a `telegram_id`, may also use /stats (viewer) and /export
(triager) in Telegram. Roles are ordered: a viewer reads; a triager also triages, assigns
and exports; an admin also manages users. `ADMIN_PASSWORD` keeps working as the bootstrap
account `admin`; the `team` ids of config.yml count as triagers in Telegram only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from earshot.storage.models import DashboardSession, DashboardUser, utcnow

ROLES = ("viewer", "triager", "admin")
BOOTSTRAP_ADMIN = "admin"
MIN_PASSWORD = 12
_NAME = re.compile(r"^[\w.@+-]{1,64}$")
_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
# Verified against when the account does not exist, so a wrong name costs as much time
# as a wrong password and does not tell which names exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(Exception):
    """A user command that cannot be carried out; the message says why."""


def role_at_least(role: str | None, needed: str) -> bool:
    """True when `role` includes the rights of `needed`."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must be at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def _valid_name(name: str) -> str:
    if not _NAME.match(name):
        raise AccountError("a user name is 1-64 letters, digits or . @ + - _")
    return name


def _valid_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    return role


def add_user(
    session: Session, *, name: str, role: str, password: str, telegram_id: int | None = None
) -> DashboardUser:
    if session.scalar(select(DashboardUser).where(DashboardUser.name == _valid_name(name))):
        raise AccountError(f"user {name!r} already exists")
    if telegram_id is not None and session.scalar(
        select(DashboardUser).where(DashboardUser.telegram_id == telegram_id)
    ):
        raise AccountError("that Telegram id belongs to another user")
    user = DashboardUser(
        name=name,
        role=_valid_role(role),
        password_hash=hash_password(password),
        telegram_id=telegram_id,
    )
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, name: str) -> DashboardUser | None:
    return session.scalar(select(DashboardUser).where(DashboardUser.name == name))


def list_users(session: Session) -> list[DashboardUser]:
    return list(session.scalars(select(DashboardUser).order_by(DashboardUser.name)))


def users_exist(session: Session) -> bool:
    return session.scalar(select(DashboardUser.id).limit(1)) is not None


def remove_user(session: Session, name: str) -> None:
    user = get_user(session, name)
    if user is None:
        raise AccountError(f"no user {name!r}")
    session.delete(user)
    end_sessions(session, name)


def set_password(session: Session, name: str, password: str) -> None:
    """A new password, which also signs the user out everywhere."""
    user = get_user(session, name)
    if user is None:
        raise AccountError(f"no user {name!r}")
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    end_sessions(session, name)


def set_role(session: Session, name: str, role: str) -> None:
    user = get_user(session, name)
    if user is None:
        raise AccountError(f"no user {name!r}")
    user.role = _valid_role(role)


def authenticate(
    session: Session, name: str, password: str, *, admin_password: str = ""
) -> str | None:
    """The role of `name` when `password` is right, else None (constant effort)."""
    user = get_user(session, name)
    if user is None:
        try:
            _hasher.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        if name == BOOTSTRAP_ADMIN and admin_password:
            given = hashlib.sha256(password.encode()).digest()
            expected = hashlib.sha256(admin_password.encode()).digest()
            if hmac.compare_digest(given, expected):
                return "admin"
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user.role


def role_of(session: Session, name: str, *, admin_password: str = "") -> str | None:
    """The current role of a signed-in name (None: the account is gone)."""
    user = get_user(session, name)
    if user is not None:
        return user.role
    return "admin" if name == BOOTSTRAP_ADMIN and admin_password else None


def telegram_role(session: Session, telegram_id: int, team: list[int]) -> str | None:
    """The role of a Telegram user: their dashboard account's, or triager for `team` ids."""
    role = session.scalar(
        select(DashboardUser.role).where(DashboardUser.telegram_id == telegram_id)
    )
    if role is not None:
        return role
    return "triager" if telegram_id in team else None


# --- sessions ------------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, name: str, max_age_s: int) -> str:
    """A new session for `name`; returns the token for the cookie (stored only hashed)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.execute(delete(DashboardSession).where(DashboardSession.expires_at < now))
    session.add(
        DashboardSession(
            id=_digest(token),
            user_name=name,
            created_at=now,
            expires_at=now + timedelta(seconds=max_age_s),
        )
    )
    return token


def session_user(session: Session, token: str, now: datetime | None = None) -> str | None:
    """The name signed in with `token`, or None when it ended or expired."""
    row = session.get(DashboardSession, _digest(token))
    if row is None or row.expires_at <= (now or utcnow()):
        return None
    return row.user_name


def end_session(session: Session, token: str) -> None:
    session.execute(delete(DashboardSession).where(DashboardSession.id == _digest(token)))


def end_sessions(session: Session, name: str) -> int:
    """Sign `name` out everywhere; returns how many sessions ended."""
    result = session.execute(delete(DashboardSession).where(DashboardSession.user_name == name))
    return int(getattr(result, "rowcount", 0) or 0)


# --- login throttling ---------------------------------------------------------------------


@dataclass
class _Failures:
    count: int = 0
    until: float = 0.0  # no attempt before this (monotonic seconds)
    last: float = 0.0


class LoginThrottle:
    """Slows down password guessing without letting anyone lock a colleague out.

    Failures are counted per (account, address) pair and per address, never per account
    alone: a guesser at one address waits, doubling each time, after `free` failures for
    that account (up to `max_wait`), and after `per_address` failures on any accounts;
    the account's owner at another address is not affected. A success clears the pair.
    Failures are forgotten after `forget` quiet seconds. In memory: one dashboard process.
    """

    def __init__(
        self,
        *,
        free: int = 5,
        per_address: int = 20,
        base_wait: float = 30.0,
        max_wait: float = 3600.0,
        forget: float = 3600.0,
        max_keys: int = 50_000,
    ) -> None:
        self.free, self.per_address = free, per_address
        self.base_wait, self.max_wait, self.forget = base_wait, max_wait, forget
        self.max_keys = max_keys
        self._table: dict[tuple[str, str], _Failures] = {}
        self._lock = threading.Lock()

    def _get(self, key: tuple[str, str], now: float) -> _Failures:
        entry = self._table.get(key)
        if entry is not None and now - entry.last > self.forget:
            entry = None
        if entry is None:
            if len(self._table) >= self.max_keys:
                self._prune(now)
            entry = self._table[key] = _Failures()
        return entry

    def _prune(self, now: float) -> None:
        old = [k for k, e in self._table.items() if now - e.last > self.forget]
        for k in old or list(self._table)[: self.max_keys // 2]:
            del self._table[k]

    def retry_after(self, account: str, address: str, now: float | None = None) -> int:
        """Seconds to wait before the next attempt (0: go ahead)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            pair = self._get((account.lower(), address), now)
            addr = self._get(("", address), now)
            wait = max(pair.until, addr.until) - now
        return int(wait + 0.999) if wait > 0 else 0

    def failed(self, account: str, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            for key, free in (
                ((account.lower(), address), self.free),
                (("", address), self.per_address),
            ):
                entry = self._get(key, now)
                entry.count += 1
                entry.last = now
                if entry.count >= free:
                    wait = min(self.max_wait, self.base_wait * 2 ** (entry.count - free))
                    entry.until = now + wait

    def succeeded(self, account: str, address: str) -> None:
        with self._lock:
            self._table.pop((account.lower(), address), None)
