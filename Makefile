# AOC Functions: `make run` serves the app on http://127.0.0.1:7071; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := devtools/node_modules/.installed

.PHONY: install run test lint format clean

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

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) devtools/node_modules .local .pytest_cache .ruff_cache
