"""One multilingual NLU model, or one model per language? Measure both (issue 8).

Trains NLU-only models on (a) every language together, as shipped, and (b) each
language alone, evaluates each on the held-out and out-of-domain sets of its language,
and writes reports/eval-languages.json, which `make eval` folds into reports/eval.md.
Run with the app venv: `.venv/bin/python scripts/eval_languages.py` (after `make kb`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from earshot.knowledge.kb import load_kb, render_nlu  # noqa: E402
from earshot.settings import load_settings  # noqa: E402

RASA_PY = ROOT / ".venv-rasa/bin/python"
DATA = ROOT / "rasa_project/data"
TESTS = ROOT / "rasa_project/tests"
HAND_WRITTEN = {"en": "core.yml", "nl": "core_nl.yml"}


def _data_dir(base: Path, language: str | None) -> Path:
    """NLU data of one language (or all): KB examples, hand-written intents, lookups."""
    settings = load_settings()
    kb = load_kb(ROOT / settings.knowledge_base, languages=settings.languages)
    out = base / (language or "all")
    (out / "nlu").mkdir(parents=True)
    (out / "faq.yml").write_text(render_nlu(kb, language), encoding="utf-8")
    shutil.copy(DATA / "nlu/lookups.yml", out / "nlu/lookups.yml")
    for lang, name in HAND_WRITTEN.items():
        if language in (None, lang):
            shutil.copy(DATA / "nlu" / name, out / "nlu" / name)
    return out


SETS = {"en": ("holdout", "ood"), "nl": ("holdout_nl", "ood_nl")}


def _evaluate(data: Path, out: Path) -> dict[str, dict[str, object]]:
    """Train an NLU-only model on ``data``; its metrics per test language."""
    cmd = [str(RASA_PY), str(ROOT / "scripts/eval_nlu.py"), "--nlu", str(data), "--no-cv"]
    subprocess.run([*cmd, "--out", str(out)], cwd=ROOT, check=True, capture_output=True)
    summary = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    results = {}
    for lang, (in_domain, ood_set) in SETS.items():
        holdout, ood = summary["in_domain"].get(in_domain), summary["ood"].get(ood_set)
        if holdout and ood:
            results[lang] = {
                "topic_accuracy": holdout["topic_accuracy"],
                "core_intent_accuracy": holdout["core_intent_accuracy"],
                "in_domain_to_fallback": holdout["in_domain_to_fallback"],
                "ood_rejection": ood["rejection_rate"],
                "train_seconds": summary.get("train_seconds"),
            }
    return results


def main() -> int:
    languages = load_settings().languages
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="earshot-lang-") as tmp:
        base = Path(tmp)
        shared = _evaluate(_data_dir(base, None), base / "out-all")
        for lang in languages:
            results[f"multilingual, tested on {lang}"] = shared[lang]
            alone = _evaluate(_data_dir(base, lang), base / f"out-{lang}")
            results[f"{lang} only, tested on {lang}"] = alone[lang]
            print(lang, shared[lang], alone[lang], flush=True)
    out = ROOT / "reports/eval-languages.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
