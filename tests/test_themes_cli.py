"""`earshot themes run|update|list|show` against a database of its own (SQLite, PostgreSQL)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from earshot.cli import themes as themes_cli
from earshot.feedback import queries as feedback_queries
from earshot.feedback.schemas import FeedbackIn, FeedbackType
from earshot.settings import get_settings
from earshot.storage.db import session_scope
from earshot.storage.models import Feedback, Theme, ThemeModel

CONFIG = """
company: {name: Test Co, ref_prefix: TT}
products:
  - {key: plug, name: Lumen Plug}
  - {key: hub, name: Lumen Hub}
languages: [en, nl]
"""


@pytest.fixture
def env(committing_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    cfg = tmp_path / "config.yml"
    cfg.write_text(CONFIG, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EARSHOT_CONFIG", str(cfg))
    monkeypatch.setenv("DATABASE_URL", committing_db)
    get_settings.cache_clear()
    yield committing_db
    get_settings.cache_clear()
    with session_scope(committing_db) as s:
        s.execute(delete(Feedback))
        s.execute(delete(Theme))
        s.execute(delete(ThemeModel))


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="earshot")
    themes_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return int(args.fn(args))


def add(url: str, text: str, product: str) -> None:
    with session_scope(url) as s:
        item = FeedbackIn(product=product, type=FeedbackType.problem, description=text)
        feedback_queries.create_feedback(s, item=item, ref_prefix="TT")


def test_run_list_show_and_update(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("themes", "list") == 0
    assert "no themes yet" in capsys.readouterr().out
    for text, product in [
        ("The plug loses its Wi-Fi connection every night", "plug"),
        ("my plug drops off the wifi every night", "plug"),
        ("the hub loses the wifi connection at night", "hub"),
        ("please add a dark mode to the app", "plug"),
    ]:
        add(env, text, product)
    assert cli("themes", "run") == 0
    out = capsys.readouterr().out
    assert out.startswith("4 items in en: 1 themes (0 kept, 1 new, 0 retired), 1 items in no theme")
    assert cli("themes", "list") == 0
    listing = capsys.readouterr().out
    (theme_id,) = re.findall(r"^\s+(\d+)\s+en\s+3\s", listing, re.M)
    assert "[emerging]" not in listing  # three items: below the minimum of five
    assert cli("themes", "show", theme_id) == 0
    shown = capsys.readouterr().out
    assert "3 items" in shown and "Lumen Plug 2" in shown and "Lumen Hub 1" in shown
    assert "my plug drops off the wifi every night" in shown
    add(env, "every night the plug loses the wifi", "plug")
    assert cli("themes", "update") == 0
    assert capsys.readouterr().out.startswith("1 new item themed")
    assert cli("themes", "list", "--min-size", "4") == 0
    assert re.search(rf"^\s+{theme_id}\s+en\s+4\s", capsys.readouterr().out, re.M)
    assert cli("themes", "show", "999999") == 1
