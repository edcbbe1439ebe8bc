# giftwave: `make demo` serves a seeded demo on SQLite; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck pytest services bench clean messages

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

# New or changed strings in the pages: extract them and merge them into each catalog, then
# translate the empty or fuzzy entries (tests/unit/test_i18n.py demands every one). Each part
# of the site with its own catalog (web/i18n.py) has its babel-<part>.cfg.
LOCALE_DIR := src/giftwave/web/locale
CATALOGS := messages studio
messages: $(STAMP)
	for domain in $(CATALOGS); do \
	  cfg=babel-$$domain.cfg; [ $$domain = messages ] && cfg=babel.cfg; \
	  $(BIN)/pybabel extract --no-location --sort-output -F $$cfg -o $(LOCALE_DIR)/$$domain.pot . && \
	  $(BIN)/pybabel update --ignore-obsolete --no-fuzzy-matching -i $(LOCALE_DIR)/$$domain.pot -d $(LOCALE_DIR) -D $$domain \
	  || exit 1; \
	done

bench: $(STAMP) services
	$(BIN)/giftwave bench ledger

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache giftwave.db giftwave.db-*
