# giftwave: `make demo` serves a seeded demo on SQLite; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-long lint typecheck pytest bytecode services bench chaos clean messages lock

# Exactly the locked versions, each checked against its hash; then giftwave itself, whose own
# dependencies the lock already holds (refresh the lock with `make lock`, DEVELOPERS.md).
$(STAMP): pyproject.toml requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# The locks, from pyproject.toml: requirements.lock (what the image installs) and
# requirements-dev.lock (with the dev extra). uv resolves for every platform, Python 3.11.
UV_COMPILE := uv pip compile --quiet --universal --python-version 3.11 --generate-hashes
lock:
	$(UV_COMPILE) -o requirements.lock pyproject.toml
	$(UV_COMPILE) --extra dev -o requirements-dev.lock pyproject.toml

demo: $(STAMP)
	$(BIN)/giftwave demo

services:
	bash scripts/services.sh

# lint-imports: the layers, pyproject.toml's [tool.importlinter] (docs/architecture.md).
lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

# Most tests wait on real servers, browsers and sleeps rather than compute: with one worker per
# core the CPUs were busy 60% of a run (27 min of user time in 25 min on 2 cores), so one worker
# more than the cores, each taking whole files (a module's shared server stays in one worker).
WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
# Every server, CLI and worker the suite starts imports giftwave: compiled once here, or each
# process compiles ~300 modules again (0.4 s of CPU a start) where PYTHONDONTWRITEBYTECODE is
# set, as on the CI machines. compileall writes the caches whatever that variable says.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q -j 0 src tests > /dev/null

pytest: $(STAMP) services bytecode
	$(BIN)/pytest -n $(WORKERS) --dist loadfile --durations=15 -m "not long"

test: lint typecheck pytest

# The long campaigns (tests marked `long`: many kill -9 cases, long storms, two-node runs), each
# with a short version inside `make test`. About ten minutes; run before a release.
test-long: $(STAMP) services bytecode
	$(BIN)/pytest -n $(WORKERS) --dist loadfile --durations=15 -m long
	GIFTWAVE_TEST_FUZZ_EXAMPLES=50 $(BIN)/pytest -n auto --dist loadfile tests/integration/test_api_schemathesis.py

# New or changed strings in the pages: extract them and merge them into each catalog, then
# translate the empty or fuzzy entries (tests/unit/test_i18n.py demands every one).
LOCALE_DIR := src/giftwave/web/locale
messages: $(STAMP)
	$(BIN)/pybabel extract --no-location --sort-output -F babel.cfg -o $(LOCALE_DIR)/messages.pot .
	$(BIN)/pybabel update --ignore-obsolete --no-fuzzy-matching -i $(LOCALE_DIR)/messages.pot -d $(LOCALE_DIR) -D messages

bench: $(STAMP) services
	$(BIN)/giftwave bench ledger

# The long fault campaign (docs/reliability.md). It restarts the local PostgreSQL: run it only
# when nothing else uses that server. CHAOS_SECONDS sets its length.
CHAOS_SECONDS ?= 150
chaos: $(STAMP) services
	GIFTWAVE_DATABASE_URL=$${GIFTWAVE_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test} \
	  $(BIN)/giftwave chaos --seconds $(CHAOS_SECONDS) --restart-postgres --json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache giftwave.db giftwave.db-*
