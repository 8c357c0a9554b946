#!/usr/bin/env bash
# `make eval`: NLU cross-validation (3 folds) plus the held-out and out-of-domain sets
# -> reports/eval.md and reports/eval.json (Rasa's raw reports in reports/rasa/), then the
# independent evaluation on public and fresh data never trained on
# -> reports/eval-independent.md and .json (scripts/eval_independent.py).
# Regenerates the KB's Rasa files and reuses the trained model (scripts/train.py only
# retrains when an input changed). Extra arguments go to scripts/eval_nlu.py, e.g.
# `--no-cv` for a quick run or `--strict` to fail when a target is missed (both reports).
set -euo pipefail
cd "$(dirname "$0")/.."
export RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=2
.venv/bin/python -m earshot kb build
.venv/bin/python scripts/train.py
.venv-rasa/bin/python scripts/eval_nlu.py --model models/earshot.tar.gz "$@"
strict=()
for arg in "$@"; do if [[ $arg == --strict ]]; then strict=(--strict); fi; done
exec .venv-rasa/bin/python scripts/eval_independent.py --model models/earshot.tar.gz "${strict[@]}"
