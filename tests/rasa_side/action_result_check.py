"""Earshot's per-event check of custom action results against Rasa's full JSON schema:
the verdicts for valid and broken results, printed as JSON. Runs in the Rasa venv."""

import copy
import json

from jsonschema import ValidationError, validators
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    AllSlotsReset,
    BotUttered,
    FollowupAction,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
)

EVENTS = [
    UserUttered("hi", {"name": "greet", "confidence": 0.9}, [{"entity": "lang", "value": "nl"}]),
    BotUttered("hello", {"buttons": [{"title": "Yes", "payload": "/affirm"}]}),
    ActionExecuted("action_listen"),
    SlotSet("language", "nl"),
    SlotSet("feedback_product", None),
    FollowupAction("action_ask_feedback"),
    ActiveLoop("feedback_form"),
    ActiveLoop(None),
    AllSlotsReset(),
    Restarted(),
    SessionStarted(),
]


def broken(event: dict) -> list:
    """Ways an action server could get an event wrong."""
    out = []
    for key in [k for k in event if k != "event"]:
        wrong = copy.deepcopy(event)
        wrong[key] = {"not": "expected"} if not isinstance(event[key], dict) else 7
        out.append(wrong)
    out.append({**event, "event": "no_such_event"})
    out.append({k: v for k, v in event.items() if k != "event"})
    out.append({**event, "event": 3})
    return out


def main() -> dict:
    from addons.patches import compile_action_result_check

    schema = RemoteAction.action_response_format_spec()
    full = validators.validator_for(schema)(schema)
    check = compile_action_result_check(schema)
    events = [e.as_dict() for e in EVENTS]
    results: list = [{"events": events, "responses": [{"text": "hi"}]}, {"events": []}, {}]
    results += [{"events": [e]} for e in events]
    results += [{"events": [events[0], b]} for e in events for b in broken(e)]
    results += [[], {"events": {}}, {"events": [1]}, {"responses": [1]}, {"events": None}]
    verdicts = []
    for result in results:
        pair = []
        for validate in (full.validate, check):
            try:
                validate(result)
                pair.append(True)
            except ValidationError:
                pair.append(False)
        verdicts.append(pair)
    return {
        "cases": len(verdicts),
        "valid": sum(ok for ok, _ in verdicts),
        "disagreements": [r for r, (a, b) in zip(results, verdicts, strict=False) if a != b][:5],
    }


if __name__ == "__main__":
    print(json.dumps(main(), default=str))
