"""Issue 19, doors: capped request bodies, dashboard accounts and roles, no default secret
on an exposed instance. Accounts run on SQLite and PostgreSQL (the `web_db` fixture)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from earshot.accounts import service as accounts
from earshot.settings import ROOT, ConfigError, check_exposed_secret, load_settings
from earshot.storage.db import session_scope
from earshot.storage.models import FeedbackEvent
from earshot.web.app import create_app
from tests.test_web import PASSWORD, FakeRasa, Web, csrf, make_settings, web, web_db  # noqa: F401

OTHER_PASSWORD = "another long passphrase"


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body sent chunked, without Content-Length."""
    sent = 0
    while sent < total:
        yield b"a" * min(size, total - sent)
        sent += size


# --- 1. request bodies ----------------------------------------------------------------------


def test_big_bodies_get_413_before_parsing_even_chunked(web: Web) -> None:  # noqa: F811 - the fixture
    token = web.csrf("/login")
    big = {"csrf": token, "user": "admin", "password": "x" * 20_000}
    r = web.client.post("/login", data=big)  # with Content-Length
    assert r.status_code == 413 and "too large" in r.text
    # Chunked: no Content-Length to go by; counted as it streams.
    r = web.client.post(
        "/login", content=_chunks(3 * 1024 * 1024), headers={"content-type": "text/plain"}
    )
    assert r.status_code == 413
    # The web chat answers in JSON.
    r = web.client.post("/chat/send", content=_chunks(200_000))
    assert r.status_code == 413 and "too large" in r.json()["error"]
    # A normal login still works (the body is replayed to the app).
    web.login()
    assert web.client.get("/", follow_redirects=False).status_code == 200


def test_the_cap_is_a_setting(web_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811 - the fixture
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EARSHOT_CONFIG", str(tmp_path / "none.yml"))
    app = create_app(make_settings(web_db, max_request_body_bytes=64 * 1024))
    with TestClient(app) as client:
        token = csrf(client.get("/login").text)
        body = {"csrf": token, "user": "admin", "password": "x" * 20_000}
        assert client.post("/login", data=body).status_code == 401  # parsed: wrong password


# --- 2. accounts ------------------------------------------------------------------------------


def test_roles_are_enforced_on_every_route(web: Web) -> None:  # noqa: F811 - the fixture
    ref = web.add()
    web.login("vera", role="viewer")
    assert web.client.get("/", follow_redirects=False).status_code == 200
    assert web.client.get(f"/items/{ref}").status_code == 200
    assert web.client.get("/overview").status_code == 200
    assert web.client.get("/export.csv").status_code == 403
    assert web.client.get("/users").status_code == 403
    token = web.csrf(f"/items/{ref}")
    for path, data in [
        (f"/items/{ref}/status", {"status": "planned"}),
        (f"/items/{ref}/tags", {"tag": "x"}),
        (f"/items/{ref}/notes", {"note": "x"}),
        (f"/items/{ref}/merge", {"into": ref}),
        ("/misunderstood/assign", {"ids": "1", "target": "out_of_scope"}),
    ]:
        r = web.client.post(path, data={**data, "csrf": token})
        assert r.status_code == 403 and "triager" in r.text, path
    assert web.item(ref).status == "new" and web.item(ref).tags == []

    web.client.post("/logout", data={"csrf": token})
    web.login("tom", role="triager")
    token = web.csrf(f"/items/{ref}")
    r = web.client.post(f"/items/{ref}/status", data={"csrf": token, "status": "planned"})
    assert r.status_code == 200 and f"{ref} is now planned" in r.text
    assert web.client.get("/export.csv").status_code == 200
    assert web.client.get("/users").status_code == 403
    with session_scope(web.url) as s:  # the audit history names the real user
        actors = set(s.scalars(select(FeedbackEvent.actor)))
        assert "tom" in actors

    web.client.post("/logout", data={"csrf": token})
    web.login()  # ADMIN_PASSWORD's bootstrap admin
    r = web.client.get("/users")
    assert r.status_code == 200 and "vera" in r.text and "viewer" in r.text


def test_typed_name_without_account_cannot_use_admin_password(web: Web) -> None:  # noqa: F811 - the fixture
    token = web.csrf("/login")
    r = web.client.post("/login", data={"csrf": token, "user": "mallory", "password": PASSWORD})
    assert r.status_code == 401
    assert web.client.get("/", follow_redirects=False).status_code == 303


def test_logout_and_password_change_end_sessions_on_the_server(web: Web) -> None:  # noqa: F811 - the fixture
    web.login("sam", role="triager")
    stolen = dict(web.client.cookies)
    token = web.csrf("/")
    web.client.post("/logout", data={"csrf": token})
    web.client.cookies.clear()
    web.client.cookies.update(stolen)  # a copy of the cookie from before the logout
    assert web.client.get("/", follow_redirects=False).status_code == 303

    web.client.cookies.clear()
    web.login("sam")
    with TestClient(web.client.app) as other:  # the same user on a second device
        r = other.get("/login")
        other.post("/login", data={"csrf": csrf(r.text), "user": "sam", "password": PASSWORD})
        assert other.get("/", follow_redirects=False).status_code == 200
        with session_scope(web.url) as s:
            accounts.set_password(s, "sam", OTHER_PASSWORD)
        assert other.get("/", follow_redirects=False).status_code == 303
    assert web.client.get("/", follow_redirects=False).status_code == 303
    web.client.cookies.clear()
    r = web.client.get("/login")
    r = web.client.post(
        "/login", data={"csrf": csrf(r.text), "user": "sam", "password": OTHER_PASSWORD}
    )
    assert web.client.get("/", follow_redirects=False).status_code == 200


def test_guessing_from_one_address_does_not_lock_out_the_owner(web: Web) -> None:  # noqa: F811 - the fixture
    web.login("owen", role="viewer")
    web.client.cookies.clear()
    app = web.client.app
    with TestClient(app, client=("203.0.113.9", 4000)) as attacker:
        token = csrf(attacker.get("/login").text)
        for _ in range(5):
            r = attacker.post("/login", data={"csrf": token, "user": "owen", "password": "guess"})
            assert r.status_code == 401
        r = attacker.post("/login", data={"csrf": token, "user": "owen", "password": PASSWORD})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    with TestClient(app, client=("198.51.100.7", 5000)) as owner:
        token = csrf(owner.get("/login").text)
        r = owner.post("/login", data={"csrf": token, "user": "owen", "password": PASSWORD})
        assert r.status_code == 200 and "Inbox" in r.text


def test_throttle_backs_off_per_pair_and_per_address() -> None:
    t = accounts.LoginThrottle(free=3, per_address=5, base_wait=10, max_wait=100)
    for _ in range(3):
        assert t.retry_after("ann", "a", now=0) == 0
        t.failed("ann", "a", now=0)
    assert t.retry_after("ann", "a", now=0) == 10
    assert t.retry_after("ann", "b", now=0) == 0  # another address: not affected
    assert t.retry_after("ann", "a", now=11) == 0
    t.failed("ann", "a", now=11)
    assert t.retry_after("ann", "a", now=11) == 20  # doubled
    # Spraying many accounts from one address is held back by the address limit.
    t.failed("bob", "a", now=12)
    assert t.retry_after("carol", "a", now=12) > 0
    t.succeeded("ann", "a")


def _earshot(
    args: list[str], stdin: str, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "earshot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_users_cli_reads_passwords_from_stdin_never_argv(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": url,
        "EARSHOT_CONFIG": str(tmp_path / "none.yml"),
    }
    r = _earshot(
        ["users", "add", "ann", "--role", "triager", "--telegram-id", "42"],
        PASSWORD + "\n",
        env,
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "user ann added (triager)" in r.stdout
    r = _earshot(["users", "add", "bob", "--role", "viewer"], "short\n", env, tmp_path)
    assert r.returncode == 1 and "at least 12" in r.stderr
    r = _earshot(
        ["users", "add", "ann", "--password", "x" * 20, "--role", "viewer"], "", env, tmp_path
    )
    assert r.returncode == 2  # no such option
    r = _earshot(["users", "list"], "", env, tmp_path)
    assert "ann\ttriager  telegram:42" in r.stdout and "bob" not in r.stdout
    with session_scope(url) as s:
        assert accounts.authenticate(s, "ann", PASSWORD) == "triager"
        assert accounts.telegram_role(s, 42, []) == "triager"
        assert accounts.telegram_role(s, 43, [43]) == "triager"
        assert accounts.telegram_role(s, 44, []) is None
    r = _earshot(["users", "set-password", "ann"], OTHER_PASSWORD + "\n", env, tmp_path)
    assert r.returncode == 0
    with session_scope(url) as s:
        assert accounts.authenticate(s, "ann", PASSWORD) is None
        assert accounts.authenticate(s, "ann", OTHER_PASSWORD) == "triager"
        assert accounts.get_user(s, "ann").password_hash.startswith("$argon2id$")  # type: ignore[union-attr]
    assert _earshot(["users", "remove", "ann"], "", env, tmp_path).returncode == 0
    assert "no users" in _earshot(["users", "list"], "", env, tmp_path).stdout


def test_accounts_and_sessions_on_both_databases(web_db: str) -> None:  # noqa: F811 - the fixture
    with session_scope(web_db) as s:
        accounts.add_user(s, name="dbcheck", role="admin", password=PASSWORD, telegram_id=777)
        with pytest.raises(accounts.AccountError, match="already exists"):
            accounts.add_user(s, name="dbcheck", role="admin", password=PASSWORD)
        token = accounts.start_session(s, "dbcheck", 60)
        assert accounts.session_user(s, token) == "dbcheck"
        assert accounts.end_sessions(s, "dbcheck") == 1
        assert accounts.session_user(s, token) is None
        assert accounts.telegram_role(s, 777, []) == "admin"
        accounts.remove_user(s, "dbcheck")


# --- 4. no default secret on an exposed instance ----------------------------------------


def test_default_secret_stops_an_exposed_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EARSHOT_CONFIG", str(tmp_path / "none.yml"))
    for key in ("ENVIRONMENT", "EARSHOT_SECRET", "ADMIN_PASSWORD", "TELEGRAM_WEBHOOK_URL"):
        monkeypatch.delenv(key, raising=False)
    laptop = load_settings()
    check_exposed_secret(laptop, listen_host="127.0.0.1", users_exist=False)  # make run: fine
    for kwargs, settings in [
        ({"listen_host": "0.0.0.0"}, laptop),
        ({"users_exist": True}, laptop),
        ({}, load_settings(admin_password="p" * 16)),
        ({}, load_settings(telegram_webhook_url="https://bot.example/hook")),
    ]:
        with pytest.raises(ConfigError, match="EARSHOT_SECRET"):
            check_exposed_secret(settings, **kwargs)  # type: ignore[arg-type]
    check_exposed_secret(load_settings(admin_password="p" * 16, earshot_secret="s" * 16))
    monkeypatch.setenv("ENVIRONMENT", "development")  # said explicitly: a developer's machine
    check_exposed_secret(load_settings(admin_password="p" * 16), listen_host="0.0.0.0")


def test_earshot_web_refuses_to_listen_outside_with_the_default_secret(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        "EARSHOT_CONFIG": str(tmp_path / "none.yml"),
    }
    r = _earshot(["web", "--host", "0.0.0.0", "--port", "1"], "", env, tmp_path)
    assert r.returncode == 2 and "EARSHOT_SECRET" in r.stderr and "0.0.0.0" in r.stderr
    r = _earshot(["run"], "", {**env, "ADMIN_PASSWORD": "p" * 16}, tmp_path)
    assert r.returncode == 2 and "ADMIN_PASSWORD is set" in r.stderr


# --- 3. only the front doors are open -------------------------------------------------------


def test_endpoints_file_is_private_and_carries_the_action_secret(tmp_path: Path) -> None:
    import os
    import stat

    import yaml

    from earshot.cli.supervise import write_endpoints

    path = tmp_path / "endpoints.yml"
    path.write_text("old")
    path.chmod(0o644)
    settings = load_settings(rasa_token="t" * 20, database_url=f"sqlite:///{tmp_path}/x.db")
    write_endpoints(settings, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    action = yaml.safe_load(path.read_text())["action_endpoint"]
    assert action["headers"] == {"X-Earshot-Token": "t" * 20}
    assert "token" not in action  # Rasa would append ?token= to the URL


def test_rasa_gets_its_token_from_the_environment_not_the_command_line(tmp_path: Path) -> None:
    from earshot.cli.supervise import build_parts

    settings = load_settings(
        rasa_token="secret-token-123456",
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path}/x.db",
    )
    parts = build_parts(settings, log_dir=tmp_path, base_env={})
    for part in parts:
        assert not any("secret-token-123456" in a for a in part.argv), part.name
        assert "--auth-token" not in part.argv
    actions, rasa, _ = parts
    assert rasa.env["RASA_TOKEN"] == actions.env["RASA_TOKEN"] == "secret-token-123456"
    credentials = (ROOT / "rasa_project" / "credentials.yml").read_text()
    assert "rest:" not in credentials  # Rasa's REST channel takes messages without a secret


def test_compose_publishes_only_the_front_doors() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == {"bot", "web", "whatsapp", "messenger", "x"}  # webhooks, dashboard
    assert compose["networks"]["internal"]["internal"] is True
    for name in ("postgres", "redis", "rasa", "actions", "migrate"):
        assert services[name]["networks"] == ["internal"], name
    for name in ("rasa", "actions", "bot", "web", "whatsapp", "messenger", "x"):
        env = services[name].get("environment") or compose["x-earshot"]["environment"]
        assert "${REDIS_PASSWORD" in env["REDIS_URL"], name
    assert "requirepass" in " ".join(services["redis"]["command"])
    assert "${REDIS_PASSWORD:?" in services["redis"]["environment"]["REDIS_PASSWORD"]


def test_action_server_wants_the_shared_secret(tmp_path: Path) -> None:
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "ACTION_SERVER_PORT": str(port),
        "RASA_TOKEN": "action-secret-42",
        "EARSHOT_CONFIG": str(tmp_path / "none.yml"),
        "DATABASE_URL": f"sqlite:///{tmp_path}/a.db",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "actions"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("the action server did not start")
        body = {"next_action": "action_listen", "sender_id": "x", "tracker": {}, "domain": {}}
        assert httpx.get(base + "/actions").status_code == 401
        assert httpx.post(base + "/webhook", json=body).status_code == 401
        wrong = {"X-Earshot-Token": "guess"}
        assert httpx.post(base + "/webhook", json=body, headers=wrong).status_code == 401
        right = {"X-Earshot-Token": "action-secret-42"}
        r = httpx.get(base + "/actions", headers=right)
        assert r.status_code == 200 and any(a["name"] == "action_ask_helpful" for a in r.json())
    finally:
        proc.terminate()
        proc.wait(10)


# --- 5. floods --------------------------------------------------------------------------------


def test_inbound_limit_notices_once_then_is_silent_until_the_window_passes() -> None:
    from earshot.gateway.limits import InboundLimit, Verdict

    limit = InboundLimit(3, window=60)
    assert [limit.hit(1, now=t) for t in (0, 1, 2)] == [Verdict.OK] * 3
    assert limit.hit(1, now=3) is Verdict.NOTICE
    assert limit.hit(1, now=4) is Verdict.DROP
    assert limit.hit(2, now=4) is Verdict.OK  # another customer is not affected
    assert limit.hit(1, now=30) is Verdict.DROP
    assert limit.hit(1, now=60.5) is Verdict.OK  # the first message left the window
    assert limit.hit(1, now=61) is Verdict.OK  # and the second one
    assert limit.hit(1, now=61.5) is Verdict.NOTICE  # told again, once, on the next flood
    assert InboundLimit(0).hit(1) is Verdict.OK  # 0: no limit


# --- 6. known vulnerabilities ------------------------------------------------------------------


def _advisory_db(tmp_path: Path, package: str, versions: list[str]) -> Path:
    import yaml

    folder = tmp_path / "vulns" / package
    folder.mkdir(parents=True)
    record = {
        "id": "CVE-2025-62727",
        "summary": "Range header parsing in FileResponse takes quadratic time",
        "affected": [
            {
                "package": {"name": package, "ecosystem": "PyPI"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0.39.0"}, {"fixed": "0.49.1"}]}
                ],
                "versions": versions,
            }
        ],
    }
    (folder / "CVE-2025-62727.yaml").write_text(yaml.safe_dump(record))
    return tmp_path


def _audit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "audit.py"), *args],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip


def test_audit_fails_on_a_known_vulnerability_and_starlette_is_fixed(tmp_path: Path) -> None:
    from importlib.metadata import version

    installed = version("starlette")
    # The starlette advisory of the issue: the installed version is no longer affected.
    db = _advisory_db(tmp_path / "real", "starlette", ["0.47.3", "0.48.0", "0.49.0"])
    r = _audit("--advisory-db", str(db))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "No known vulnerabilities found" in r.stderr
    # The same advisory said of the installed version: the audit fails and names it.
    db = _advisory_db(tmp_path / "fake", "starlette", [installed])
    r = _audit("--advisory-db", str(db))
    assert r.returncode == 1 and "CVE-2025-62727" in r.stdout and installed in r.stdout
