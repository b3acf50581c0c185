# AOC Functions: `make run` serves the app and its console on http://127.0.0.1:7071; `make test` checks
# the code, then runs the whole suite (browser tests included); `make unit` runs the fast tier alone.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := devtools/node_modules/.installed
# The console (web/): npm packages from its lock file, then the esbuild build into web/dist.
WEB_STAMP := web/node_modules/.installed
WEB_BUILT := web/dist/.built
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) $(wildcard web/*.html web/*.svg) \
	web/build.mjs web/staticwebapp.config.json
CHROMIUM := /usr/bin/chromium
CHROMIUM_PACKAGES := chromium fonts-liberation

.PHONY: install run check lint typecheck test unit format clean web browser

install: $(PY_STAMP) $(NODE_STAMP) $(WEB_BUILT)

$(PY_STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required; set PYTHON=/path/to/python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(NODE_STAMP): devtools/package.json devtools/package-lock.json
	@command -v npm >/dev/null || { echo "npm is required (Node.js 20 or newer)"; exit 1; }
	cd devtools && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(WEB_STAMP): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "npm is required (Node.js 20 or newer)"; exit 1; }
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(WEB_BUILT): $(WEB_STAMP) $(WEB_SOURCES)
	cd web && node build.mjs
	@touch $@

web: $(WEB_BUILT)

# Chromium for the browser tests (Playwright drives Debian's package; its own download is not used).
# Installed when missing and we can (root with apt); otherwise the exact command is printed, and the
# browser tests skip (under CI=true they fail).
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Chromium for the browser tests: apt-get install $(CHROMIUM_PACKAGES)"; \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			$(CHROMIUM_PACKAGES); } || echo "warning: no Chromium: the browser tests skip (fail under CI=true)"; \
	else \
		echo "The browser tests need Chromium at $(CHROMIUM). Install it with:"; \
		echo "  sudo apt-get install -y --no-install-recommends $(CHROMIUM_PACKAGES)"; \
		echo "Without it they skip (and fail under CI=true)."; \
	fi

run: install
	$(PY) -m devtools.run

# What CI enforces before any test runs: lint, formatting, types and the layering of shared/.
check: lint typecheck
	$(VENV)/bin/lint-imports --no-cache

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# One mypy run over [tool.mypy] files: strict for shared/, the Blueprints, function_app.py and
# infra/scripts/, the defaults for devtools/, tests/ and bench/ (pyproject.toml).
typecheck: install
	$(VENV)/bin/mypy

test: check browser
	$(PY) -m pytest $(PYTEST_ARGS)

unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) devtools/node_modules web/node_modules web/dist .local .pytest_cache .ruff_cache .mypy_cache
