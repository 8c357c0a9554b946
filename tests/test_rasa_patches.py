"""Earshot's adaptations of Rasa internals (addons.patches) that exist for speed
must not change a result: run in the Rasa venv, each check compares with Rasa's own way."""

from __future__ import annotations

from typing import Any

from tests.rasa_venv import run_rasa_check


def _run(script: str) -> dict[str, Any]:
    return dict(run_rasa_check(script))


def test_every_event_type_resolves_as_rasa_resolves_it() -> None:
    result = _run("event_types_check.py")
    assert result["names"] > 20  # user, bot, action, slot, session_started, …
    assert result["mismatches"] == []  # also on the second, cached, lookup
    assert result["default"] == "SlotSet"  # an unknown name falls back to the default
    assert result["topic"] is None  # Rasa's compatibility case for old TopicSet events
    assert "Unknown event name 'no_such_event'" in result["unknown"]
    assert result["round_trip"] == [True, True]


def test_action_results_get_the_verdict_of_rasas_full_schema() -> None:
    # Checked one event branch at a time; valid results and every way an action server
    # could break one.
    result = _run("action_result_check.py")
    assert result["disagreements"] == []
    assert result["cases"] > 60 and 10 < result["valid"] < result["cases"] - 40


def test_action_server_calls_reuse_one_connection_with_the_same_answers() -> None:
    # Rasa opens a new session and TCP connection for every custom action call.
    result = _run("endpoint_pool_check.py")
    expected = [{"echo": i, "token": "s3cret"} for i in range(5)]
    assert result["rasa_answers"] == expected
    assert result["ours_answers"] == expected
    assert result["rasa_connections"] == 5
    assert result["ours_connections"] == 1  # the endpoint's copy reused it too
    assert result["copy_answer"] == {"echo": 99, "token": "s3cret"}
    assert result["pooled_open"] == 1 and result["closed_on_shutdown"]


def test_install_replaces_exactly_the_listed_rasa_methods() -> None:
    # addons.patches.PATCHES names each replacement and the test that proves it.
    result = _run("patches_check.py")
    assert len(result["listed"]) == 8
    assert result["changed"] == result["listed"]
