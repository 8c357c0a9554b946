"""docker-compose.yml keeps what the bot stored across a stop and lets work in progress end."""

from __future__ import annotations

import re

import yaml

from earshot.settings import ROOT, Settings


def _seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value))


def test_the_bot_keeps_its_data_on_a_volume_and_stops_gracefully() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    bot = compose["services"]["bot"]
    mounts = [v.split(":") for v in bot.get("volumes", [])]
    named = [src for src, target, *_ in mounts if target == "/app/data"]
    assert named and named[0] in (compose.get("volumes") or {})  # a named volume, not a layer
    rasa_timeout = Settings.model_fields["rasa_timeout_s"].default
    assert _seconds(str(bot.get("stop_grace_period", "10s"))) > rasa_timeout


def test_the_whatsapp_webhook_keeps_its_spool_and_is_published() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    wa = compose["services"]["whatsapp"]
    assert wa["command"] == ["whatsapp"] and "public" in wa["networks"]
    assert any(v.endswith(":/app/data") for v in wa["volumes"])
    port = Settings.model_fields["whatsapp_webhook_port"].default
    assert f"{port}:{port}" in wa["ports"]
    entrypoint = (ROOT / "scripts" / "entrypoint.sh").read_text(encoding="utf-8")
    assert "-m whatsapp" in entrypoint


def test_the_messenger_webhook_keeps_its_spool_and_is_published() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    fb = compose["services"]["messenger"]
    assert fb["command"] == ["messenger"] and "public" in fb["networks"]
    assert fb["profiles"] == ["messenger"]
    assert any(v.endswith(":/app/data") for v in fb["volumes"])
    port = Settings.model_fields["messenger_webhook_port"].default
    assert f"{port}:{port}" in fb["ports"]
    entrypoint = (ROOT / "scripts" / "entrypoint.sh").read_text(encoding="utf-8")
    assert "-m messenger" in entrypoint


def test_the_x_webhook_keeps_its_spool_and_is_published() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    x = compose["services"]["x"]
    assert x["command"] == ["x"] and x["profiles"] == ["x"] and "public" in x["networks"]
    mounts = [v.split(":") for v in x["volumes"]]
    assert any(t == "/app/data" and src in compose["volumes"] for src, t, *_ in mounts)
    port = Settings.model_fields["x_webhook_port"].default
    assert f"{port}:{port}" in x["ports"] and str(port) in x["healthcheck"]["test"][-1]
    assert x["environment"]["X_WEBHOOK_LISTEN"] == "0.0.0.0"
    rasa_timeout = Settings.model_fields["rasa_timeout_s"].default
    assert _seconds(str(x.get("stop_grace_period", "10s"))) > rasa_timeout
    entrypoint = (ROOT / "scripts" / "entrypoint.sh").read_text(encoding="utf-8")
    assert "x)" in entrypoint and "-m xdm" in entrypoint
