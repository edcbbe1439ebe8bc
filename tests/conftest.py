"""Shared fixtures: every storage test runs on SQLite AND PostgreSQL.

A backend that cannot be reached fails the test (``make test`` starts both services); it is
never skipped, so a green run always means both backends were exercised.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
from migrated import MigratedDatabases
from sqlalchemy import Engine
from suite_env import CHEAP_PASSWORD_HASHES

from giftwave.bench.scratch import scratch_database
from giftwave.db.engine import make_engine
from giftwave.db.urls import DatabaseUrl
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.stores import open_store

POSTGRES_URL = os.environ.get(
    "GIFTWAVE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]

for _name, _value in CHEAP_PASSWORD_HASHES.items():  # the apps tests build in process read them
    os.environ.setdefault(_name, _value)


def _base_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite')}/base.db"
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required and unreachable at {POSTGRES_URL}: {exc}")
    return POSTGRES_URL


@pytest.fixture(scope="session")
def migrated_databases(tmp_path_factory: pytest.TempPathFactory) -> MigratedDatabases:
    """SQLite migrated once per worker, every test's file a copy of it (tests/migrated.py)."""
    return MigratedDatabases(tmp_path_factory.mktemp("templates"))


@pytest.fixture(params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    migrated_databases: MigratedDatabases,
) -> Iterator[DatabaseUrl]:
    """A fresh, migrated database on each backend."""
    base = _base_url(request.param, tmp_path_factory)  # fails the test if PostgreSQL is down
    with migrated_databases.fresh(request.param, base) as db:
        yield db


@pytest.fixture
def sa_engine(db_url: DatabaseUrl) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
async def posting(db_url: DatabaseUrl) -> AsyncIterator[PostingEngine]:
    engine = PostingEngine(open_store(db_url), expiry_interval_s=0.05)
    async with engine:
        yield engine


@pytest.fixture(params=BACKENDS)
def bare_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabaseUrl]:
    """A fresh, empty database on each backend, for tests that run `giftwave migrate` in a
    real process themselves. Parametrize it indirectly to pick one backend."""
    with scratch_database(_base_url(request.param, tmp_path_factory), "proc") as db:
        yield db


@pytest.fixture(scope="module", params=BACKENDS)
def module_bare_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabaseUrl]:
    """bare_db_url shared by a module's tests: one long-lived server per backend for them all."""
    with scratch_database(_base_url(request.param, tmp_path_factory), "proc") as db:
        yield db
