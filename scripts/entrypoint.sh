#!/usr/bin/env bash
# Container entrypoint: one role per container (docker-compose) or everything at once.
# Each role runs the same module that `make run` supervises, so CI tests what ships.
set -euo pipefail
cd /app
export PYTHONPATH=/app:/app/rasa_project
role="${1:-all}"
case "$role" in
  all)      exec .venv/bin/python -m earshot run ;;
  migrate)  exec .venv/bin/python -m earshot migrate ;;
  actions)  SANIC_HOST=0.0.0.0 exec .venv/bin/python -m actions ;;
  bot)      .venv/bin/python -m earshot migrate && exec .venv/bin/python -m bot ;;
  whatsapp) .venv/bin/python -m earshot migrate && exec .venv/bin/python -m whatsapp ;;
  messenger) .venv/bin/python -m earshot migrate && exec .venv/bin/python -m messenger ;;
  x)        .venv/bin/python -m earshot migrate && exec .venv/bin/python -m xdm ;;
  rasa)
    : "${RASA_TOKEN:?RASA_TOKEN is required}"
    .venv/bin/python -m earshot rasa-endpoints --out /tmp/endpoints.yml
    EARSHOT_SESSION_MAX_EVENTS="$(.venv/bin/python -c \
      'from earshot.settings import load_settings; print(load_settings().session_max_events)')"
    export EARSHOT_SESSION_MAX_EVENTS  # read by rasa_project/addons/patches.py (config.yml: session_max_events)
    exec .venv-rasa/bin/rasa run --model models/earshot.tar.gz --endpoints /tmp/endpoints.yml \
      --credentials rasa_project/credentials.yml --interface 0.0.0.0 --port 5005 \
      --enable-api ;;  # the API and channel check RASA_TOKEN from the environment (a header)
  web)      exec .venv/bin/python -m earshot web --host 0.0.0.0 --port "${WEB_PORT:-8000}" ;;
  *) echo "unknown role: $role (all|migrate|actions|bot|whatsapp|messenger|x|rasa|web)" >&2; exit 2 ;;
esac
