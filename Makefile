# giftwave: `make demo` serves a seeded demo on SQLite; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck pytest services bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/giftwave demo

services:
	bash scripts/services.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

pytest: $(STAMP) services
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(STAMP) services
	$(BIN)/giftwave bench ledger

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache giftwave.db giftwave.db-*
