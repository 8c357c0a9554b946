"""Fault injection against the real processes, run separately so each part can die alone.

`make chaos` runs these and prints a table: fault -> outcome -> lost -> duplicated
(both must be 0: nothing a customer sends is dropped, nothing is stored or sent twice).
The same tests run in `make test`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from earshot.cli.supervise import Part, build_parts, channel_part, healthy
from earshot.settings import load_settings
from earshot.storage.db import migrate
from testkit.stack import MODEL, SECRET, stack_env
from testkit.telegram_api import FakeBotAPI

RESULTS: list[tuple[str, str, int, int]] = []


@dataclass
class Parts:
    """Action server, Rasa and the bot as separate processes, each killable."""

    fake: FakeBotAPI
    env: dict[str, str]
    db_url: str
    workdir: Path
    parts: dict[str, Part] = field(default_factory=dict)

    def start(self, name: str, timeout: float = 180) -> None:
        part = self.parts[name]
        part.start()
        deadline = time.monotonic() + timeout
        if part.health_url:
            while not healthy(part.health_url):
                if not part.alive():
                    raise RuntimeError(f"{name} died:\n{part.tail(40)}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not healthy:\n{part.tail(40)}")
                time.sleep(0.3)
        else:  # the bot: healthy once it polls
            before = len(self.fake.calls_to("getUpdates"))
            while len(self.fake.calls_to("getUpdates")) <= before:
                if not part.alive():
                    raise RuntimeError(f"{name} died:\n{part.tail(40)}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} did not poll")
                time.sleep(0.2)

    def kill(self, name: str) -> None:
        proc = self.parts[name].proc
        assert proc is not None
        proc.kill()
        proc.wait()

    def stop(self, name: str) -> None:
        self.parts[name].stop()

    @property
    def log(self) -> str:
        return "\n".join(f"--- {n} ---\n{p.tail(30)}" for n, p in self.parts.items())

    def key(self, user_id: int) -> str:
        from earshot.privacy.identity import user_key

        return user_key(SECRET, "telegram", user_id)


@contextmanager
def running_parts(workdir: Path, db_url: str) -> Iterator[Parts]:
    """Action server, Rasa and the bot on `db_url`, each started and stoppable alone."""
    if not MODEL.exists():
        raise RuntimeError("no trained model: run `make train`")
    with FakeBotAPI() as fake:
        env = stack_env(fake, workdir, db_url)
        old = dict(os.environ)
        os.environ.update(env)
        try:
            settings = load_settings()
        finally:
            os.environ.clear()
            os.environ.update(old)
        migrate(settings.db_url)
        log_dir = workdir / "logs"
        log_dir.mkdir(exist_ok=True)
        actions, rasa, _web = build_parts(
            settings,
            rasa_port=urlsplit(settings.rasa_url).port or 5005,
            log_dir=log_dir,
            base_env=env,
        )
        bot = channel_part(settings, log_dir, base_env=env)
        bot.log_path = log_dir / "bot.log"
        p = Parts(fake, env, db_url, workdir, {"actions": actions, "rasa": rasa, "bot": bot})
        try:
            for name in ("actions", "rasa", "bot"):
                p.start(name)
            yield p
        finally:
            for part in reversed(list(p.parts.values())):
                part.stop()


@pytest.fixture(scope="session")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Parts]:
    workdir = tmp_path_factory.mktemp("chaos")
    with running_parts(workdir, f"sqlite:///{workdir / 'data' / 'earshot.db'}") as p:
        yield p


@pytest.fixture
def record() -> Iterator[list[tuple[str, str, int, int]]]:
    rows: list[tuple[str, str, int, int]] = []
    yield rows
    RESULTS.extend(rows)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS:
        return
    w = max(len(r[0]) for r in RESULTS)
    o = max(len(r[1]) for r in RESULTS)
    terminalreporter.write_line("")
    terminalreporter.write_line(f"{'input or fault':<{w}} | {'outcome':<{o}} | lost | duplicated")
    terminalreporter.write_line(f"{'-' * w}-+-{'-' * o}-+------+-----------")
    for fault, outcome, lost, duplicated in RESULTS:
        terminalreporter.write_line(f"{fault:<{w}} | {outcome:<{o}} | {lost:>4} | {duplicated:>10}")
    lost_total = sum(r[2] for r in RESULTS)
    duplicated_total = sum(r[3] for r in RESULTS)
    terminalreporter.write_line(f"total lost: {lost_total}, total duplicated: {duplicated_total}")
