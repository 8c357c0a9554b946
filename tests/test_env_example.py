"""`.env.example` documents every environment variable the running product reads."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

from earshot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# The product's code: what `make run` and the Docker image run (not the dev scripts).
PRODUCT = ["earshot", "bot", "xdm", "actions", "rasa_project"]
# Read by the code but set by `earshot run` or the Makefile, never by an operator.
SET_BY_EARSHOT_RUN = {
    "EARSHOT_SESSION_MAX_EVENTS",  # config.yml's session_max_events, passed on to Rasa
    "EARSHOT_T0",  # when `make` started, for the progress lines (earshot/cli/progress.py)
}


def documented(text: str) -> set[str]:
    """Variables given as `NAME=value` lines (comments are not variables)."""
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def environ_reads(source: str) -> set[str]:
    """Names read with os.environ.get / os.getenv / os.environ[...] / environ.get."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        key: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args:
            f = node.func
            base = f.value if isinstance(f, ast.Attribute) else None
            from_environ = isinstance(base, ast.Attribute) and base.attr == "environ"
            if isinstance(f, ast.Attribute) and (
                f.attr == "getenv" or (f.attr == "get" and from_environ)
            ):
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            if isinstance(node.value, ast.Attribute) and node.value.attr == "environ":
                key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            names.add(key.value)
    return names


def read_by_code() -> set[str]:
    """Every Settings field (pydantic-settings reads each from the environment), every
    variable the product's code reads itself and every one docker-compose.yml substitutes,
    less those that config.yml sets."""
    config_keys = {k.upper() for k in yaml.safe_load((ROOT / "config.yml").read_text())}
    fields = {name.upper() for name in Settings.model_fields} - config_keys
    reads: set[str] = set()
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            reads |= environ_reads(path.read_text(encoding="utf-8"))
    compose = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))
    return (fields | reads | compose) - SET_BY_EARSHOT_RUN


def test_env_example_lists_every_variable_the_code_reads() -> None:
    missing = read_by_code() - documented((ROOT / ".env.example").read_text(encoding="utf-8"))
    assert missing == set()


def test_env_example_lists_nothing_the_code_ignores() -> None:
    stale = documented((ROOT / ".env.example").read_text(encoding="utf-8")) - read_by_code()
    assert stale == set()


def test_the_scan_finds_each_way_of_reading_a_variable() -> None:
    source = (
        "import os\nA = os.environ.get('ONE', 'x')\nB = os.getenv('TWO')\n"
        "C = os.environ['THREE']\nos.environ['SET_ONLY'] = '1'\n"
    )
    assert environ_reads(source) == {"ONE", "TWO", "THREE"}
    assert documented("# COMMENTED=1\nONE=\nTWO=2\n") == {"ONE", "TWO"}
    assert "DATA_DIR" in read_by_code()  # a Settings field no config.yml key sets
