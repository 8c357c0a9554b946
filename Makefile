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
CHROMIUM := /usr/bin/chromium
RASA_ARGS := --config rasa_project/config.yml --domain rasa_project/domain
PYTEST_ARGS ?=

.PHONY: help setup run test lint validate test-stories train train-classify eval eval-languages bench bench-export chaos clean kb

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: $(VENV)/.stamp $(RASA_VENV)/.stamp $(CHROMIUM) ## Create both venvs and the database (fast when nothing changed)
	@$(PY) -m earshot migrate >/dev/null

# The dashboard's browser tests drive Debian's Chromium through Playwright (no download).
$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "install Chromium at $(CHROMIUM) to run the browser tests" >&2; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null

$(VENV)/.stamp: requirements/app.txt pyproject.toml
	@test -n "$(PYTHON310)" || { echo "Python 3.10 not found (PATH or pyenv); install it, e.g. 'pyenv install 3.10'" >&2; exit 1; }
	test -x $(PY) || $(PYTHON310) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==24.0
	$(PY) -m pip install -q -r requirements/app.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

$(RASA_VENV)/.stamp: requirements/rasa.txt requirements/rasa-nodeps.txt
	@test -n "$(PYTHON310)" || { echo "Python 3.10 not found (PATH or pyenv); install it, e.g. 'pyenv install 3.10'" >&2; exit 1; }
	test -x $(RASA_VENV)/bin/python || $(PYTHON310) -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/python -m pip install -q --upgrade pip==24.0
	$(RASA_VENV)/bin/python -m pip install -q -r requirements/rasa.txt
	$(RASA_VENV)/bin/python -m pip install -q --no-deps -r requirements/rasa-nodeps.txt
	touch $@

kb: $(VENV)/.stamp ## Validate the knowledge base and generate Rasa's FAQ files from it
	@$(PY) -m earshot kb build

train: setup kb ## Train the Rasa model if it is missing or out of date with the data
	@$(PY) scripts/train.py

train-classify: setup ## Retrain the feedback classifier on ../shared/datasets and rewrite reports/classify.md
	$(PY) -m earshot.classify.train --report reports/classify.md

run: train ## Run the product: Rasa, actions and Telegram (or a terminal chat without a token)
	$(PY) -m earshot run

lint: $(VENV)/.stamp ## ruff and mypy
	$(VENV)/bin/ruff check earshot bot actions tests scripts rasa_project/components
	$(VENV)/bin/mypy earshot bot
	$(VENV)/bin/mypy bench
	$(VENV)/bin/mypy scripts/bench.py  # apart from bench/: mypy sees two modules named bench
	$(VENV)/bin/hadolint Dockerfile

validate: train ## rasa data validate
	$(RASA) data validate $(RASA_ARGS) --data rasa_project/data

test-stories: train ## Rasa test stories, failing on any prediction error
	$(RASA) test core --model $(MODEL) --stories rasa_project/tests --fail-on-prediction-errors --out reports/rasa-core-test >/dev/null

test: train lint validate test-stories ## Everything: lint, Rasa checks, unit, storage and end-to-end tests
	$(PY) -m pytest -q $(PYTEST_ARGS)

eval: train ## NLU cross-validation and held-out evaluation -> reports/eval.md
	bash scripts/eval.sh

chaos: train ## Kill each part in turn; print fault -> outcome -> lost (must be 0)
	$(PY) -m pytest -q -rN tests/chaos

eval-languages: train ## One multilingual NLU model vs one per language -> reports/eval-languages.json (shown by make eval)
	$(PY) scripts/eval_languages.py

bench-export: setup ## Export 1M synthetic items from PostgreSQL and SQLite -> reports/bench-export.md
	$(PY) scripts/bench_export.py

bench: train ## Full-path benchmark against stock Rasa -> reports/bench.json, bench.md
	$(PY) scripts/bench.py

clean: ## Remove models, venvs and local data
	rm -rf models $(VENV) $(RASA_VENV) data/earshot.db* data/run data/logs
