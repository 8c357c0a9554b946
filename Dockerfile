# syntax=docker/dockerfile:1
# Same pinned files and the same Makefile targets as a developer's `make setup train`.

FROM python:3.10.13-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RASA_TELEMETRY_ENABLED=false
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends make=4.3-4.1 \
 && rm -rf /var/lib/apt/lists/*

FROM base AS build
COPY requirements/ requirements/
COPY pyproject.toml Makefile ./
COPY earshot/ earshot/
COPY bot/ bot/
COPY actions/ actions/
RUN make PYTHON310=python3.10 .venv/.stamp .venv-rasa/.stamp
COPY . .
# Trains the model at build time: containers start serving at once.
RUN make PYTHON310=python3.10 train \
 && rm -rf /root/.cache data

FROM base AS runtime
RUN useradd --create-home --uid 10001 earshot \
 && mkdir -p /app/data && chown earshot /app/data
COPY --from=build --chown=earshot:earshot /app /app
USER 10001:10001
ENV ENVIRONMENT=production \
    EARSHOT_VECTOR_CACHE=/app/data/sentence-vectors.sqlite3
EXPOSE 8443 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD [".venv/bin/python", "-m", "earshot", "health"]
ENTRYPOINT ["scripts/entrypoint.sh"]
CMD ["all"]
