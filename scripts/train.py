"""Train the Rasa model only when its inputs changed (content hash, not timestamps).

The hash is taken before training starts, so an edit made during a long training run
makes the next `make train` train again.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "earshot.tar.gz"
STAMP = MODEL.with_suffix(".inputs")
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"


def inputs() -> list[Path]:
    project = ROOT / "rasa_project"
    files = [
        p
        for p in [*project.rglob("*.yml"), *project.glob("components/*.py")]
        if "tests" not in p.relative_to(project).parts
    ]
    files += list((ROOT / "requirements").glob("rasa*.txt"))
    # The KB reaches Rasa through the generated files above (`make kb` first); learned
    # examples are hashed too, so a new assignment retrains even before they are built.
    files += list((ROOT / "kb" / "learned").glob("*.yml"))
    return sorted(files)


def fingerprint() -> str:
    h = hashlib.sha256()
    for path in inputs():
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def command(out: str, name: str, project: str = "rasa_project") -> list[str]:
    """`rasa train` of our model into `out`/`name`.tar.gz (shared with the benchmark);
    `project`: another copy of rasa_project (the learning end-to-end test's)."""
    return [
        str(RASA),
        "train",
        "--config",
        f"{project}/config.yml",
        "--domain",
        f"{project}/domain",
        "--data",
        f"{project}/data",
        "--out",
        out,
        "--fixed-model-name",
        name,
        "--force",
    ]


def environment() -> dict[str, str]:
    # PYTHONPATH: the pipeline's custom components live in rasa_project/components.
    path = [str(ROOT), str(ROOT / "rasa_project"), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "PYTHONPATH": os.pathsep.join(path).rstrip(os.pathsep),
    }


def main() -> int:
    digest = fingerprint()
    if MODEL.exists() and STAMP.exists() and STAMP.read_text().strip() == digest:
        print(f"model is up to date ({MODEL.relative_to(ROOT)})")
        return 0
    tmp_name = f"earshot-{os.getpid()}"
    cmd = command("models", tmp_name)
    print("training the Rasa model:", " ".join(cmd[1:]), flush=True)
    result = subprocess.run(cmd, cwd=ROOT, env=environment(), check=False)
    built = ROOT / "models" / f"{tmp_name}.tar.gz"
    if result.returncode != 0 or not built.exists():
        built.unlink(missing_ok=True)
        print("training failed", file=sys.stderr)
        return result.returncode or 1
    built.replace(MODEL)  # atomic: a running Rasa never sees a half-written model
    STAMP.write_text(digest + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
