"""Every hand-written response exists in every configured language, with the same
buttons (payloads) in each, so no customer meets a half-translated flow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
DOMAIN_FILES = sorted((ROOT / "rasa_project/domain").glob("*.yml"))


def _language(variation: dict[str, Any]) -> str:
    for cond in variation.get("condition") or []:
        if cond.get("name") == "language":
            return str(cond["value"])
    return str(CONFIG["default_language"])


def _responses() -> list[tuple[str, str, list[dict[str, Any]]]]:
    out = []
    for path in DOMAIN_FILES:
        domain = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for name, variations in (domain.get("responses") or {}).items():
            out.append((path.name, name, variations))
    return out


RESPONSES = _responses()


def test_there_are_responses_to_check() -> None:
    assert len(RESPONSES) > 40


@pytest.mark.parametrize(("file", "name", "variations"), RESPONSES, ids=[r[1] for r in RESPONSES])
def test_response_exists_in_every_language(
    file: str, name: str, variations: list[dict[str, Any]]
) -> None:
    by_lang: dict[str, list[dict[str, Any]]] = {}
    for v in variations:
        by_lang.setdefault(_language(v), []).append(v)
    assert set(by_lang) == set(CONFIG["languages"]), (file, name)
    payloads = {
        lang: [sorted(b["payload"] for b in v.get("buttons") or []) for v in vs]
        for lang, vs in by_lang.items()
    }
    first = next(iter(payloads.values()))
    assert all(p == first for p in payloads.values()), (file, name, payloads)
    for v in variations:
        for b in v.get("buttons") or []:
            # JSON in a payload must be escaped from Rasa's {slot} filling.
            assert "{" not in b["payload"] or "{{" in b["payload"], (name, b["payload"])
