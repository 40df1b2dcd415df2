# HaloBestie backend task runner. `make help` lists targets.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install pinned dependencies

run: $(STAMP) ## run the whole system (web + worker + beat; starts local Postgres/Valkey if none)
	$(PY) scripts/dev_up.py

test: $(STAMP) ## run the test suite (real Postgres, a Valkey server the tests start)
	$(PY) -m pytest -q

lint: $(STAMP) ## ruff lint + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## apply ruff formatting and fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

types: $(STAMP) ## mypy with django-stubs
	$(VENV)/bin/mypy .

migrations-check: $(STAMP) ## fail if models and migrations disagree
	DJANGO_SETTINGS_MODULE=halobestie.settings.test $(PY) manage.py makemigrations --check --dry-run

imports: $(STAMP) ## import direction: the import-linter contracts in pyproject.toml
	$(VENV)/bin/lint-imports

check: lint types imports test migrations-check ## what CI runs: lint + types + imports + tests + migrations check

bench: $(STAMP) ## run the benchmarks (results go to docs/performance.md by hand)
	$(PY) -m bench

.PHONY: help install run test lint format types imports migrations-check check bench
