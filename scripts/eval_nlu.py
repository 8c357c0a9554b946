"""NLU evaluation for Earshot: cross-validation, held-out set and out-of-domain set.

Run with the Rasa venv (`.venv-rasa/bin/python scripts/eval_nlu.py`) after the KB
generator has written rasa_project/*/generated/. Rasa's own reports land in
reports/rasa/{cv,holdout,ood}/; the summary goes to reports/eval.json and eval.md.

Rasa's `test nlu` undoes the FallbackClassifier's decision before scoring, so the
rejection and fallback rates here come from parsing every message with the trained
model exactly as the bot would (fallback included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FALLBACK = "nlu_fallback"
OUT_OF_SCOPE = "out_of_scope"
REJECTED = {FALLBACK, OUT_OF_SCOPE}
RETRIEVAL_INTENT = "faq"
TARGETS = {"holdout_topic_accuracy": 0.95, "ood_rejection": 0.80, "in_domain_to_fallback": 0.05}

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _rasa(*args: str) -> float:
    """Run the Rasa CLI of this interpreter's venv; returns wall time in seconds."""
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "rasa", *args], cwd=ROOT, check=True)
    return time.monotonic() - start


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _load_examples(path: Path) -> list[tuple[str, str]]:
    """(text, label) pairs of a Rasa NLU YAML file; label is `faq/<key>` for topics."""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    pairs = []
    for block in data.get("nlu", []):
        for line in str(block.get("examples", "")).splitlines():
            line = line.strip()
            if line.startswith("- "):
                pairs.append((line[2:].strip(), block["intent"]))
    return pairs


def _report_summary(report_dir: Path, name: str) -> dict[str, Any] | None:
    report = _read_json(report_dir / name)
    if not report:
        return None
    macro = report.get("macro avg", {})
    return {
        "accuracy": report.get("accuracy"),
        "macro_f1": macro.get("f1-score"),
        "weighted_f1": report.get("weighted avg", {}).get("f1-score"),
        "support": macro.get("support"),
    }


def _confused_pairs(errors: Any, limit: int = 10) -> list[dict[str, Any]]:
    """Most frequent (target, predicted) pairs in a Rasa *_errors.json file."""
    counts: Counter[tuple[str, str]] = Counter()
    for err in errors or []:
        target = err.get("intent_response_key_target") or err.get("intent")
        predicted = err.get("intent_response_key_prediction") or err.get("intent_prediction")
        if isinstance(predicted, dict):
            predicted = predicted.get("name")
        counts[(str(target), str(predicted))] += 1
    return [{"target": t, "predicted": p, "count": n} for (t, p), n in counts.most_common(limit)]


async def _parse_all(model: Path, examples: list[tuple[str, str]]) -> tuple[list[dict[str, Any]], float]:
    """Parse each text with the full NLU pipeline (fallback included)."""
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    await agent.parse_message("warm up")  # first call builds TF graphs; don't time it
    rows = []
    start = time.monotonic()
    for text, label in examples:
        result = await agent.parse_message(text)
        intent = result.get("intent") or {}
        predicted = intent.get("name")
        selector = (result.get("response_selector") or {}).get(RETRIEVAL_INTENT, {})
        topic = selector.get("response", {}).get("intent_response_key")
        full = topic if predicted == RETRIEVAL_INTENT and topic else predicted
        rows.append(
            {
                "text": text,
                "target": label,
                "predicted": full,
                "confidence": round(float(intent.get("confidence") or 0.0), 4),
                "selector_topic": topic,
            }
        )
    elapsed = time.monotonic() - start
    return rows, len(examples) / elapsed if elapsed else 0.0


async def _rasa_test(model: Path, data: Path, out: Path) -> None:
    """Rasa's standard NLU test (reports, successes, errors) in-process."""
    from rasa.core.agent import Agent
    from rasa.nlu.test import run_evaluation

    out.mkdir(parents=True, exist_ok=True)
    agent = Agent.load(str(model))
    await run_evaluation(
        str(data),
        agent.processor,
        output_directory=str(out),
        successes=True,
        errors=True,
        disable_plotting=True,
        report_as_dict=True,
    )


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _holdout_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    topics = [r for r in rows if r["target"].startswith(f"{RETRIEVAL_INTENT}/")]
    in_domain = [r for r in rows if r["target"] != OUT_OF_SCOPE]
    core = [r for r in rows if r not in topics]
    confusions: Counter[tuple[str, str]] = Counter(
        (r["target"], str(r["predicted"])) for r in rows if r["predicted"] != r["target"]
    )
    return {
        "examples": len(rows),
        "topic_accuracy_end_to_end": _rate(sum(r["predicted"] == r["target"] for r in topics), len(topics)),
        "topic_examples": len(topics),
        "core_intent_accuracy": _rate(sum(r["predicted"] == r["target"] for r in core), len(core)),
        "overall_accuracy": _rate(sum(r["predicted"] == r["target"] for r in rows), len(rows)),
        "in_domain_to_fallback": _rate(sum(r["predicted"] in REJECTED for r in in_domain), len(in_domain)),
        "in_domain_examples": len(in_domain),
        "top_confusions": [
            {"target": t, "predicted": p, "count": n} for (t, p), n in confusions.most_common(15)
        ],
    }


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1%}" if value <= 1 else f"{value:.1f}"
    return "n/a" if value is None else str(value)


def _markdown(summary: dict[str, Any]) -> str:
    cv, ho, ood = summary.get("cross_validation") or {}, summary["holdout"], summary["ood"]
    lines = [
        "# NLU evaluation",
        "",
        f"Model: `{summary['model']}`" + (f" (trained in {summary['train_seconds']:.0f} s)" if summary.get("train_seconds") else ""),
        "",
        "## Targets",
        "",
        "| metric | value | target | ok |",
        "| --- | --- | --- | --- |",
    ]
    for name, check in summary["checks"].items():
        lines.append(f"| {name} | {_fmt(check['value'])} | {check['target']} | {'yes' if check['ok'] else 'NO'} |")
    lines += ["", "## Cross-validation on training data", ""]
    if cv:
        lines += [
            f"- folds: {cv['folds']}, wall time {cv['seconds']:.0f} s",
            f"- intent accuracy {_fmt((cv.get('intent') or {}).get('accuracy'))}, macro-F1 {_fmt((cv.get('intent') or {}).get('macro_f1'))}",
            f"- topic (response selector) accuracy {_fmt((cv.get('response_selection') or {}).get('accuracy'))}, macro-F1 {_fmt((cv.get('response_selection') or {}).get('macro_f1'))}",
            "",
            "Most confused topic pairs:",
            "",
        ]
        lines += [f"- {c['target']} -> {c['predicted']} ({c['count']})" for c in cv.get("confused_topics", [])] or ["- none"]
    else:
        lines.append("skipped")
    lines += [
        "",
        "## Held-out set",
        "",
        f"- Rasa intent accuracy {_fmt((ho.get('rasa_intent') or {}).get('accuracy'))}, macro-F1 {_fmt((ho.get('rasa_intent') or {}).get('macro_f1'))} (fallback undone)",
        f"- Rasa topic (response selector) accuracy {_fmt((ho.get('rasa_response_selection') or {}).get('accuracy'))}",
        f"- end-to-end topic accuracy {_fmt(ho['topic_accuracy_end_to_end'])} on {ho['topic_examples']} topic questions (intent faq + right topic, fallback applied)",
        f"- end-to-end core intent accuracy {_fmt(ho['core_intent_accuracy'])}",
        f"- in-domain sent to fallback/out_of_scope {_fmt(ho['in_domain_to_fallback'])} of {ho['in_domain_examples']}",
        "",
        "Most confused (end to end):",
        "",
    ]
    lines += [f"- {c['target']} -> {c['predicted']} ({c['count']})" for c in ho["top_confusions"]] or ["- none"]
    lines += [
        "",
        "## Out-of-domain set",
        "",
        f"- rejected (nlu_fallback or out_of_scope): {_fmt(ood['rejection_rate'])} of {ood['examples']}",
        "",
        "Accepted out-of-domain messages:",
        "",
    ]
    lines += [f"- \"{r['text']}\" -> {r['predicted']} ({r['confidence']:.2f})" for r in ood["accepted"]] or ["- none"]
    lines += ["", f"Parse throughput (NLU only, one process): {summary['parse_per_second']:.0f} messages/s", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="use this trained model instead of training one")
    parser.add_argument("--config", type=Path, default=Path("rasa_project/config.yml"))
    parser.add_argument("--nlu", type=Path, default=Path("rasa_project/data"))
    parser.add_argument("--holdout", type=Path, default=Path("rasa_project/tests/nlu_holdout_en.yml"))
    parser.add_argument("--ood", type=Path, default=Path("rasa_project/tests/ood_en.yml"))
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--no-cv", action="store_true", help="skip cross-validation (quick runs)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    os.chdir(ROOT)
    raw = args.out / "rasa"
    summary: dict[str, Any] = {}

    model = args.model
    if model is None:
        models = raw / "models"
        summary["train_seconds"] = round(
            _rasa("train", "nlu", "--config", str(args.config), "--nlu", str(args.nlu),
                  "--out", str(models), "--fixed-model-name", "eval-nlu"),
            1,
        )
        model = models / "eval-nlu.tar.gz"
    summary["model"] = str(model)

    if not args.no_cv:
        cv_dir = raw / "cv"
        seconds = _rasa("test", "nlu", "--nlu", str(args.nlu), "--config", str(args.config),
                        "--cross-validation", "--folds", str(args.folds), "--out", str(cv_dir),
                        "--errors", "--disable-plotting")
        summary["cross_validation"] = {
            "folds": args.folds,
            "seconds": round(seconds, 1),
            "intent": _report_summary(cv_dir, "intent_report.json"),
            "response_selection": _report_summary(cv_dir, "response_selection_report.json"),
            "confused_topics": _confused_pairs(_read_json(cv_dir / "response_selection_errors.json")),
        }

    for name, data in (("holdout", args.holdout), ("ood", args.ood)):
        asyncio.run(_rasa_test(model, data, raw / name))
    holdout_rows, rate_a = asyncio.run(_parse_all(model, _load_examples(args.holdout)))
    ood_rows, rate_b = asyncio.run(_parse_all(model, _load_examples(args.ood)))

    holdout = _holdout_metrics(holdout_rows)
    holdout["rasa_intent"] = _report_summary(raw / "holdout", "intent_report.json")
    holdout["rasa_response_selection"] = _report_summary(raw / "holdout", "response_selection_report.json")
    holdout["confused_topics"] = _confused_pairs(_read_json(raw / "holdout" / "response_selection_errors.json"))
    summary["holdout"] = holdout
    accepted = [r for r in ood_rows if r["predicted"] not in REJECTED]
    summary["ood"] = {
        "examples": len(ood_rows),
        "rejection_rate": _rate(len(ood_rows) - len(accepted), len(ood_rows)),
        "accepted": accepted,
    }
    summary["parse_per_second"] = round(min(rate_a, rate_b), 1)
    checks = {
        "holdout_topic_accuracy": (holdout["topic_accuracy_end_to_end"], ">=", TARGETS["holdout_topic_accuracy"]),
        "ood_rejection": (summary["ood"]["rejection_rate"], ">=", TARGETS["ood_rejection"]),
        "in_domain_to_fallback": (holdout["in_domain_to_fallback"], "<=", TARGETS["in_domain_to_fallback"]),
    }
    summary["checks"] = {
        name: {
            "value": value,
            "target": f"{op} {limit:.0%}",
            "ok": value is not None and (value >= limit if op == ">=" else value <= limit),
        }
        for name, (value, op, limit) in checks.items()
    }
    summary["holdout_predictions"] = holdout_rows

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (args.out / "eval.md").write_text(_markdown(summary), encoding="utf-8")
    print(_markdown(summary))
    missed = [name for name, check in summary["checks"].items() if not check["ok"]]
    if missed:
        print(f"targets missed: {', '.join(missed)}", file=sys.stderr)
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    raise SystemExit(main())
