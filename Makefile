# Quick start: `make run` (serve the demo on http://127.0.0.1:5000) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000
CATALOGUES := $(wildcard biobank/translations/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGUES:.po=.mo)

.PHONY: install run test test-e2e lint format translations extract-messages bench bench-load clean

install: $(VENV)/.runtime $(COMPILED)

$(VENV)/bin/python:
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements.txt | $(VENV)/bin/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

# Compiled catalogues are built, never committed.
%.mo: %.po | $(VENV)/.runtime
	$(BIN)/pybabel compile -i $< -o $@

translations: $(COMPILED)

run: install
	$(FLASK) db upgrade
	$(FLASK) demo setup
	$(FLASK) run --host $(HOST) --port $(PORT)

test: $(VENV)/.dev $(COMPILED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

test-e2e: $(VENV)/.dev $(COMPILED)
	$(BIN)/python -m pytest tests/e2e

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Refresh the catalogues after changing user-facing strings; then translate the new
# entries in biobank/translations/*/LC_MESSAGES/messages.po.
extract-messages: $(VENV)/.runtime
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output \
		--omit-header -o biobank/translations/messages.pot .
	$(BIN)/pybabel update -i biobank/translations/messages.pot -d biobank/translations \
		--no-fuzzy-matching --ignore-obsolete

bench: install
	$(BIN)/python bench/scan_lookup.py

# The API under load through gunicorn, on a throw-away PostgreSQL database (bench/load.py).
bench-load: $(VENV)/.dev $(COMPILED)
	$(BIN)/python bench/load.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
