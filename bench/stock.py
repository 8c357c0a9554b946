"""The baseline: stock Rasa 3.6 (the `rasa init` default config) on Earshot's domain and data.

The model is cached under models/stock-<hash>.tar.gz, keyed by everything that goes into
it, because training it (TED, UnexpecTED, DIET, ResponseSelector at 100 epochs) takes
several minutes on a 2-core machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RASA_VENV = ROOT / ".venv-rasa"
RASA = RASA_VENV / "bin" / "rasa"
MODELS = ROOT / "models"


def default_config_text() -> str:
    """Rasa's own default config: what `rasa init`'s empty config.yml is filled with.

    Read from the installed package, so the baseline is exactly the 3.6 default.
    """
    found = sorted(
        RASA_VENV.glob(
            "lib/python3*/site-packages/rasa/engine/recipes/config_files/default_config.yml"
        )
    )
    if not found:
        raise FileNotFoundError("Rasa's default_config.yml not found in .venv-rasa")
    return found[0].read_text(encoding="utf-8")


def training_inputs() -> list[Path]:
    project = ROOT / "rasa_project"
    files = [*project.glob("domain/**/*.yml"), *project.glob("data/**/*.yml")]
    return [*sorted(files), ROOT / "requirements" / "rasa.txt"]


def inputs_hash(config_text: str) -> str:
    h = hashlib.sha256(b"config\0" + config_text.encode() + b"\0")
    for path in training_inputs():
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def stock_model(
    workdir: Path, log: Path, epochs: int | None = None
) -> tuple[Path, float | None, bool]:
    """The cached stock model, training it first if needed.

    Returns (model path, training seconds, trained now). Training seconds are kept next
    to the model so a cached run still reports them. `epochs` overrides the default 100
    (for `--quick` harness checks only: that model is not the baseline).
    """
    config_text = default_config_text()
    if epochs is not None:
        config_text = config_text.replace("epochs: 100", f"epochs: {epochs}")
    digest = inputs_hash(config_text)
    model = MODELS / f"stock-{digest}.tar.gz"
    meta = model.with_name(f"stock-{digest}.json")
    if model.exists():
        seconds = json.loads(meta.read_text())["train_s"] if meta.exists() else None
        return model, seconds, False
    config = workdir / "stock-config.yml"
    config.write_text(config_text, encoding="utf-8")
    tmp_name = f"stock-{digest}-{os.getpid()}"
    cmd = [
        str(RASA),
        "train",
        "--config",
        str(config),
        "--domain",
        "rasa_project/domain",
        "--data",
        "rasa_project/data",
        "--out",
        str(MODELS),
        "--fixed-model-name",
        tmp_name,
    ]
    env = {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # An empty cache: restoring components trained earlier would flatter the time.
        "RASA_CACHE_DIRECTORY": str(workdir / "stock-rasa-cache"),
    }
    start = time.monotonic()
    with open(log, "ab") as out:
        result = subprocess.run(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - start
    built = MODELS / f"{tmp_name}.tar.gz"
    if result.returncode != 0 or not built.exists():
        built.unlink(missing_ok=True)
        raise RuntimeError(f"stock training failed (exit {result.returncode}); see {log}")
    built.replace(model)  # atomic: a half-written model is never cached
    meta.write_text(json.dumps({"train_s": round(seconds, 1)}) + "\n")
    return model, seconds, True
