"""Train the Rasa model only when its inputs changed (content hash, not timestamps).

The hash is taken before training starts, so an edit made during a long training run
makes the next `make train` train again. Rasa's own output goes to data/logs/train.log;
the terminal gets one line when training starts and one when it ends (or the log's last
lines when it fails).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from earshot.cli.progress import phase  # noqa: E402 - after the repo root is on the path

MODEL = ROOT / "models" / "earshot.tar.gz"
STAMP = MODEL.with_suffix(".inputs")
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"


def inputs() -> list[Path]:
    project = ROOT / "rasa_project"
    files = [
        p
        for p in [*project.rglob("*.yml"), *project.glob("components/*.py")]
        # Rasa's tests and the channels it listens on (credentials.yml) do not shape the model.
        if "tests" not in p.relative_to(project).parts and p.name != "credentials.yml"
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


def log_path() -> Path:
    """data/logs/train.log (under DATA_DIR when that is set)."""
    return ROOT / os.environ.get("DATA_DIR", "data") / "logs" / "train.log"


def main() -> int:
    digest = fingerprint()
    if MODEL.exists() and STAMP.exists() and STAMP.read_text().strip() == digest:
        phase(f"Rasa model up to date ({MODEL.relative_to(ROOT)})")
        return 0
    tmp_name = f"earshot-{os.getpid()}"
    cmd = command("models", tmp_name)
    log = log_path()
    log.parent.mkdir(parents=True, exist_ok=True)
    shown = log.relative_to(ROOT) if log.is_relative_to(ROOT) else log
    phase(f"training the Rasa model (a few minutes; only when its data changed); log: {shown}")
    started = time.monotonic()
    with log.open("wb") as out:
        result = subprocess.run(
            cmd, cwd=ROOT, env=environment(), stdout=out, stderr=subprocess.STDOUT, check=False
        )
    built = ROOT / "models" / f"{tmp_name}.tar.gz"
    if result.returncode != 0 or not built.exists():
        built.unlink(missing_ok=True)
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-30:]
        print("\n".join(tail), file=sys.stderr)
        print(f"earshot: training failed; the whole output is in {shown}", file=sys.stderr)
        return result.returncode or 1
    built.replace(MODEL)  # atomic: a running Rasa never sees a half-written model
    STAMP.write_text(digest + "\n")
    took = int(time.monotonic() - started)
    phase(f"Rasa model trained in {took // 60} min {took % 60} s ({MODEL.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
