# AOC Functions: `make run` serves the app on http://127.0.0.1:7071; `make test` checks the code, then runs
# the whole suite; `make unit` runs the fast tier (tests/unit) alone.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := devtools/node_modules/.installed

.PHONY: install run check lint typecheck test unit format clean

install: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required; set PYTHON=/path/to/python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(NODE_STAMP): devtools/package.json devtools/package-lock.json
	@command -v npm >/dev/null || { echo "npm is required (Node.js 20 or newer)"; exit 1; }
	cd devtools && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: install
	$(PY) -m devtools.run

# What CI enforces before any test runs: lint, formatting, types and the layering of shared/.
check: lint typecheck
	$(VENV)/bin/lint-imports --no-cache

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# One mypy run over [tool.mypy] files: strict for shared/, the Blueprints and function_app.py, the
# defaults for devtools/, tests/ and bench/ (pyproject.toml).
typecheck: install
	$(VENV)/bin/mypy

test: check
	$(PY) -m pytest $(PYTEST_ARGS)

unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) devtools/node_modules .local .pytest_cache .ruff_cache .mypy_cache
