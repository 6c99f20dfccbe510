# The two commands a developer needs: `make run` and `make test`.
#
# Needs only Python 3.11 (as python3), Node.js with npm, and GNU make. Dependencies are
# installed into .venv/ and node_modules/ and re-installed only when pyproject.toml or
# package-lock.json change (stamp files inside those folders record the last install).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

# Python 3.11 (pyproject.toml's requires-python): python3.11 if it is on PATH, else python3.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed-from-pyproject
NPM_STAMP := node_modules/.installed-from-lock
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

# `make run` and the demo seed always use the base settings with DEBUG on; production
# settings refuse DEBUG, and the demo seed refuses to run without it.
DEV_ENV := DJANGO_SETTINGS_MODULE=workspace.settings.base DEBUG=1 LOG_FORMAT=text

.PHONY: help run deps assets migrate seed test lint deploy-check clean distclean

help:
	@echo "make run           install, build, migrate, seed demo data, serve on http://$(HOST):$(PORT)/"
	@echo "make test          install, build, run the test suite (PYTEST_ARGS=... passed to pytest)"
	@echo "make lint          ruff check ."
	@echo "make deploy-check  manage.py check --deploy with the production settings"
	@echo "make clean         remove built assets, collected static files and caches"
	@echo "make distclean     clean, and remove .venv, node_modules and var/ (the dev database)"

# --- dependencies --------------------------------------------------------------------

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { \
	  echo "Python 3.11 is needed: $(PYTHON) is $$($(PYTHON) --version 2>&1)." \
	       "Install it, or run make PYTHON=/path/to/python3.11 ..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(PY_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check --quiet -e '.[dev]'
	touch $@

# A rule with no prerequisites runs only when the file is missing: the lock file is
# generated once, then kept (and committed) so every install resolves the same versions.
package-lock.json:
	npm install --package-lock-only --no-audit --no-fund

$(NPM_STAMP): package-lock.json package.json
	npm ci --no-audit --no-fund
	touch $@

deps: $(PY_STAMP) $(NPM_STAMP)

# --- assets, database, demo data -----------------------------------------------------

# Rebuilt only when its sources change, so two `make test` at once never build together.
ASSETS := workspace/static/build/app.css
assets: $(ASSETS)

$(ASSETS): $(NPM_STAMP) frontend/app.scss frontend/build.mjs
	npm run build --silent
	touch $@

migrate: $(PY_STAMP)
	$(DEV_ENV) $(BIN)/python manage.py migrate --noinput

seed: migrate
	$(DEV_ENV) $(BIN)/python manage.py seed_demo

# --- the two commands ----------------------------------------------------------------

run: deps assets seed
	@echo "Serving on http://$(HOST):$(PORT)/ (Ctrl+C to stop)"
	$(DEV_ENV) $(BIN)/python -m workspace.serve -b $(HOST) -p $(PORT) workspace.asgi:application

test: deps assets
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(PY_STAMP)
	$(BIN)/ruff check .

# The production profile with a throwaway 64-byte key and a real host name; DEBUG unset.
deploy-check: $(PY_STAMP)
	env -u DEBUG \
	  DJANGO_SETTINGS_MODULE=workspace.settings.production \
	  SECRET_KEY="$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
	  ALLOWED_HOSTS=workspace.example.org \
	  $(BIN)/python manage.py check --deploy --fail-level WARNING

# --- tidying -------------------------------------------------------------------------

clean:
	rm -rf workspace/static/build staticfiles .pytest_cache .ruff_cache .hypothesis test-results
	rm -f var/test*.sqlite3 var/test*.sqlite3-wal var/test*.sqlite3-shm
	find . -path ./node_modules -prune -o -path ./$(VENV) -prune -o \
	  -type d -name __pycache__ -print0 | xargs -0 rm -rf

distclean: clean
	rm -rf $(VENV) node_modules var *.egg-info
