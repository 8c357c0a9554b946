"""Event types resolved through Earshot's patched `Event.resolve_by_type` against Rasa's
own walk over the subclasses; prints the comparison as JSON. Runs in the Rasa venv."""

import json

import rasa.shared.utils.common
from rasa.shared.core.events import Event, SlotSet, UserUttered


def rasa_answer(name: str) -> str:
    for cls in rasa.shared.utils.common.all_subclasses(Event):
        if cls.type_name == name:
            return cls.__name__
    return ""


def main() -> dict:
    from addons.patches import install_patches

    install_patches()
    names = sorted({cls.type_name for cls in rasa.shared.utils.common.all_subclasses(Event)})
    twice = [Event.resolve_by_type(n) for n in names] + [Event.resolve_by_type(n) for n in names]
    try:
        Event.resolve_by_type("no_such_event")
        unknown = "no error"
    except ValueError as exc:
        unknown = str(exc)
    events = [UserUttered("hi", {"name": "greet"}), SlotSet("language", "nl")]
    back = [Event.from_parameters(e.as_dict()) for e in events]
    return {
        "names": len(names),
        "mismatches": [
            n
            for n, cls in zip(names * 2, twice, strict=False)
            if cls is None or cls.__name__ != rasa_answer(n)
        ],
        "default": Event.resolve_by_type("no_such_event", SlotSet).__name__,
        "topic": Event.resolve_by_type("topic"),
        "unknown": unknown,
        "round_trip": [b == e for b, e in zip(back, events, strict=False)],
    }


if __name__ == "__main__":
    print(json.dumps(main()))
