# The two commands the README names: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-deps unit screenshots lint format bench install clean

# Reinstall only when pyproject.toml changes, so a second `make run` is fast.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m devstack.run

# Pushpin, Chromium and PostgreSQL's client, installed when missing (as root on Debian),
# and the local PostgreSQL started when down.
test-deps: $(STAMP)
	$(BIN)/python -m devstack.testdeps

test: test-deps
	$(BIN)/python -m pytest

# The tests that need only PostgreSQL: no Pushpin, no Chromium, no servers.
unit: $(STAMP)
	$(BIN)/python -m pytest -m "not integration and not e2e"

# The README's screenshots (docs/screenshots/), taken by the browser stories.
screenshots: test-deps
	README_SCREENSHOTS=1 $(BIN)/python -m pytest tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf .run staticfiles .pytest_cache
