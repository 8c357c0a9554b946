"""Which Rasa attributes `install_patches` replaces, compared with the list in
addons.patches.PATCHES; prints the result as JSON. Runs in the Rasa venv."""

import importlib
import json


def resolve(target: str) -> object:
    """The attribute a dotted path names: module.Class.attribute or module.function."""
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:-1]:
            owner = getattr(owner, name)
        return owner.__dict__[parts[-1]]  # the raw attribute, staticmethods unwrapped by none
    raise LookupError(target)


def main() -> dict:
    from addons.patches import PATCHES, install_patches

    targets = [target for target, _, _ in PATCHES]
    before = {t: resolve(t) for t in targets}
    install_patches()
    install_patches()  # idempotent: a second call wraps nothing twice
    changed = sorted(t for t in targets if resolve(t) is not before[t])
    return {"listed": sorted(targets), "changed": changed}


if __name__ == "__main__":
    print(json.dumps(main()))
