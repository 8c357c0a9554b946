# Earshot: `make run` to talk to the assistant, `make test` to check everything.
# Both set up what they need (Python 3.10 venvs, the database, the model) by themselves.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Rasa 3.6 supports no newer Python: find a real python3.10 on PATH, then under pyenv.
PYTHON310 ?= $(shell for c in python3.10 "$$(pyenv root 2>/dev/null || echo $$HOME/.pyenv)"/versions/3.10*/bin/python3.10; do \
	"$$c" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1 && { echo "$$c"; break; }; done)
VENV := .venv
RASA_VENV := .venv-rasa
PY := $(VENV)/bin/python
RASA := $(RASA_VENV)/bin/rasa
export RASA_TELEMETRY_ENABLED := false
export PYTHONPATH := $(CURDIR):$(CURDIR)/rasa_project
MODEL := models/earshot.tar.gz
CHROMIUM ?= $(or $(EARSHOT_CHROMIUM),/usr/bin/chromium)
RASA_ARGS := --config rasa_project/config.yml --domain rasa_project/domain
PYTEST_ARGS ?=
# Progress lines count from when make started (earshot/cli/progress.py reads the same variable).
export EARSHOT_T0 := $(shell date +%s)
PHASE = @t=$$(( $$(date +%s) - $(EARSHOT_T0) )); printf 'earshot [%d:%02d] %s\n' $$((t / 60)) $$((t % 60))

.PHONY: help setup run test lint audit audit-rasa validate test-stories train train-classify eval eval-themes bench-themes eval-languages bench bench-whatsapp bench-export chaos clean kb browser screens

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: $(VENV)/.stamp $(RASA_VENV)/.stamp ## Create both venvs and the database (fast when nothing changed)
	@$(PY) -m earshot migrate >/dev/null

# Only the dashboard's browser tests need a browser: Debian's Chromium, driven through
# Playwright (no download). Installed with apt-get when run as root; otherwise the browser
# tests are skipped with the same advice (and fail under CI=1).
browser: ## Chromium for the browser tests (apt-get as root; otherwise says how)
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Chromium for the browser tests (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; \
	else \
		echo "no Chromium at $(CHROMIUM), and no root apt-get to install it: the browser tests will be skipped (install chromium, or set EARSHOT_CHROMIUM to it)" >&2; \
	fi

$(VENV)/.stamp: requirements/app.txt requirements/app-nodeps.txt pyproject.toml
	@test -n "$(PYTHON310)" || { echo "Python 3.10 not found (PATH or pyenv); install it, e.g. 'pyenv install 3.10'" >&2; exit 1; }
	$(PHASE) "installing the app's environment in $(VENV) (about a minute the first time)"
	@test -x $(PY) || $(PYTHON310) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip==24.0
	@$(PY) -m pip install -q -r requirements/app.txt
	@$(PY) -m pip install -q --no-deps -r requirements/app-nodeps.txt
	@$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $@
	$(PHASE) "$(VENV) ready"

$(RASA_VENV)/.stamp: requirements/rasa.txt requirements/rasa-nodeps.txt
	@test -n "$(PYTHON310)" || { echo "Python 3.10 not found (PATH or pyenv); install it, e.g. 'pyenv install 3.10'" >&2; exit 1; }
	$(PHASE) "installing Rasa's environment in $(RASA_VENV) (a few minutes the first time: Rasa and TensorFlow)"
	@test -x $(RASA_VENV)/bin/python || $(PYTHON310) -m venv $(RASA_VENV)
	@$(RASA_VENV)/bin/python -m pip install -q --upgrade pip==24.0
	@$(RASA_VENV)/bin/python -m pip install -q -r requirements/rasa.txt
	@$(RASA_VENV)/bin/python -m pip install -q --no-deps -r requirements/rasa-nodeps.txt
	@touch $@
	$(PHASE) "$(RASA_VENV) ready"

kb: $(VENV)/.stamp ## Validate the knowledge base and generate Rasa's FAQ files from it
	@$(PY) -m earshot kb build

train: setup kb ## Train the Rasa model if it is missing or out of date with the data
	@$(PY) scripts/train.py

train-classify: setup ## Retrain the feedback classifier on ../shared/datasets and rewrite reports/classify.md
	$(PY) -m earshot.classify.train --report reports/classify.md

run: train ## Run the product: Rasa, actions, dashboard and Telegram (or a terminal chat without a token)
	@$(PY) -m earshot run

# mypy runs in .venv, where rasa is not installed: it types rasa's names as Any
# (ignore_missing_imports) and checks the Rasa side's own code too.
lint: $(VENV)/.stamp ## ruff and mypy over every Python file
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy earshot bot whatsapp messenger xdm actions bench testkit tests
	$(VENV)/bin/mypy scripts/bench.py  # apart from bench/: mypy sees two modules named bench
	$(VENV)/bin/mypy $(filter-out scripts/bench.py,$(wildcard scripts/*.py))
	$(VENV)/bin/mypy rasa_project/addons rasa_project/components  # rasa's names typed Any
	$(VENV)/bin/hadolint Dockerfile

validate: train ## rasa data validate
	$(RASA) data validate $(RASA_ARGS) --data rasa_project/data

test-stories: train ## Rasa test stories, failing on any prediction error
	$(RASA) test core --model $(MODEL) --stories rasa_project/tests --fail-on-prediction-errors --out reports/rasa-core-test >/dev/null

# Skips with a message only where PyPI's JSON API is unreachable (see scripts/audit.py).
audit: $(VENV)/.stamp ## pip-audit: fail on any known vulnerability in the app venv
	$(PY) scripts/audit.py

audit-rasa: $(VENV)/.stamp $(RASA_VENV)/.stamp ## pip-audit on the Rasa venv (what it lists: docs/security.md)
	$(PY) scripts/audit.py --path $(RASA_VENV)

test: train lint audit validate test-stories browser ## Everything: lint, audit, Rasa checks, unit, storage, end-to-end and browser tests
	EARSHOT_CHROMIUM=$(CHROMIUM) $(PY) -m pytest -q $(PYTEST_ARGS)

screens: setup browser ## Refresh the dashboard screenshots in reports/screens/ (make test writes them to a temp dir)
	EARSHOT_CHROMIUM=$(CHROMIUM) EARSHOT_SCREENS=reports/screens $(PY) -m pytest -q tests/browser

eval: train eval-themes ## NLU cross-validation, held-out and independent evaluation -> reports/eval.md, eval-independent.md
	bash scripts/eval.sh

# Development sets (tuned on) -> reports/themes-dev.md; the independent labelled set (never
# tuned on) -> reports/themes.md when it is there.
eval-themes: setup ## Themes (AMI) and duplicate suggestions (precision/recall) -> reports/themes.md, themes-dev.md
	$(PY) scripts/eval_themes.py --set scripts/data/themes_dev.csv --set scripts/data/themes_dev2.csv --out reports/themes-dev.md
	@if [ -f tests/data/themes/labelled.csv ]; then \
		$(PY) scripts/eval_themes.py --set tests/data/themes/labelled.csv --out reports/themes.md; \
	else echo "no tests/data/themes/labelled.csv: only the development set was evaluated"; fi

bench-themes: setup ## Themes for 100,000 synthetic items and incremental assignment -> reports/bench-themes.md
	$(PY) scripts/bench_themes.py

chaos: train ## Kill each part in turn; print fault -> outcome -> lost, duplicated (both must be 0)
	$(PY) -m pytest -q -rN tests/chaos

eval-languages: train ## One multilingual NLU model vs one per language -> reports/eval-languages.json (shown by make eval)
	$(PY) scripts/eval_languages.py

bench-export: setup ## Export 1M synthetic items from PostgreSQL and SQLite -> reports/bench-export.md
	$(PY) scripts/bench_export.py

bench: train ## Full-path benchmark against stock Rasa -> reports/bench.json, bench.md
	$(PY) scripts/bench.py

bench-whatsapp: train ## WhatsApp next to Telegram through their fakes -> reports/bench-whatsapp.md
	$(PY) scripts/bench.py --ours-only --whatsapp

clean: ## Remove models, venvs and local data
	rm -rf models $(VENV) $(RASA_VENV) data/earshot.db* data/run data/logs
