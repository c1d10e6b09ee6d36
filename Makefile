# Vigil: `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Local runs are plain http on 127.0.0.1; production leaves DEBUG off (see README).
export DEBUG ?= 1

.PHONY: run test test-services test-e2e lint install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py seed_demo
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

test: install-dev
	$(BIN)/pytest -q -n 2
	$(MAKE) --no-print-directory lint

# The real services of this machine; override DATABASE_URL / REDIS_URL to point elsewhere.
test-services: install-dev
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} \
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} \
	$(BIN)/pytest -q --ds portal.settings.services tests/services

test-e2e: install-dev
	$(BIN)/pytest -q tests/e2e

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/mypy .

clean:
	rm -rf $(VENV) var
