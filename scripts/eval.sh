#!/usr/bin/env bash
# `make eval`: regenerate the KB's Rasa files, then run the NLU evaluation
# (3-fold cross-validation + held-out + out-of-domain sets) -> reports/eval.{md,json}.
# Extra arguments go to scripts/eval_nlu.py, e.g. `--no-cv` or `--model models/x.tar.gz`.
set -euo pipefail
cd "$(dirname "$0")/.."
export RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=2
.venv/bin/python -m earshot kb build
exec .venv-rasa/bin/python scripts/eval_nlu.py "$@"
