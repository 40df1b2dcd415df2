# HaloBestie backend task runner. `make help` lists targets.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The lock tool: uv's pip-compatible resolver, pinned in requirements-dev.in. Resolves from the
# default package index only (--no-config), for Linux / CPython 3.11 (dev machines, CI, the image).
LOCK := $(VENV)/bin/uv pip compile --quiet --no-config --generate-hashes --python-version 3.11 \
	--python-platform linux --custom-compile-command "make lock"

.DEFAULT_GOAL := help

help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r requirements.txt -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the locked dependencies (runtime + dev, hash-checked)

lock: $(STAMP) ## re-resolve requirements*.in into the hashed locks (keeps existing pins; see docs/operations.md)
	$(LOCK) requirements.in -o requirements.txt
	$(LOCK) requirements-dev.in -o requirements-dev.txt

run: $(STAMP) ## run the whole system (web + worker + beat; starts local Postgres/Valkey if none)
	$(PY) scripts/dev_up.py

test: $(STAMP) ## run the test suite (real Postgres, a Valkey server the tests start; no fault or fuzz suite)
	$(PY) -m pytest -q -m "not fault and not fuzz"

faults: $(STAMP) ## the fault suite: every test marked `fault` (tests/faults, and e.g. tests/care's worker restart)
	@$(PY) -m pytest -q -m fault tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "faults: no fault tests collected yet"; exit 0; fi; exit $$rc

fuzz: $(STAMP) ## schemathesis over every operation (scripts/fuzz.py; FUZZ_MAX_EXAMPLES, default 40)
	$(PY) scripts/fuzz.py

smoke: ## runtime lock alone in a fresh venv; web + worker + beat; one paid pairing round trip
	$(PYTHON) scripts/smoke.py

lint: $(STAMP) ## ruff lint + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## apply ruff formatting and fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

types: $(STAMP) ## mypy with django-stubs
	$(VENV)/bin/mypy .

# Without a DATABASE_URL, the migration-history check reads the server's maintenance database (no
# history there, nothing to disagree with) instead of waiting 10 s for a database that may not exist.
migrations-check: $(STAMP) ## fail if models and migrations disagree
	DJANGO_SETTINGS_MODULE=halobestie.settings.test \
	DATABASE_URL="$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}" \
	$(PY) manage.py makemigrations --check --dry-run

imports: $(STAMP) ## import direction: the import-linter contracts in pyproject.toml
	$(VENV)/bin/lint-imports

check: lint types imports test migrations-check ## what CI runs first: lint + types + imports + tests + migrations check

bench: $(STAMP) ## run the benchmarks (results go to docs/performance.md by hand)
	$(PY) -m bench

.PHONY: help install lock run test faults fuzz smoke lint format types imports migrations-check check bench
