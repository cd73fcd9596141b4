# The two commands the README names: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The hashed locks `make lock` writes from pyproject.toml: the app's dependencies (the
# Dockerfile installs these) and those plus the dev tools, pip and setuptools (the venv).
RUNTIME_LOCK := requirements/runtime.txt
DEV_LOCK := requirements/dev.txt

.PHONY: run test test-deps unit screenshots lint format bench install lock clean

# Every package from the lock, each file checked against its hash; then the project
# itself, editable, which cannot be hashed: no dependencies, and built by the locked
# setuptools instead of one downloaded into an isolated build. Reinstall only when the
# lock or pyproject.toml changes, so a second `make run` is fast.
$(STAMP): $(DEV_LOCK) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP)

# Rewrite both locks from pyproject.toml, keeping every pin that still fits; the dev lock
# takes the runtime lock's pins. `make lock LOCK_ARGS=--upgrade` moves every pin to the
# newest allowed, `LOCK_ARGS='--upgrade-package django'` only that one.
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes \
	--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_ARGS)
lock: $(STAMP)
	$(PIP_COMPILE) --output-file $(RUNTIME_LOCK) pyproject.toml
	$(PIP_COMPILE) --extra dev --build-deps-for editable --constraint $(RUNTIME_LOCK) \
		--output-file $(DEV_LOCK) pyproject.toml

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
