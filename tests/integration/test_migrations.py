"""Migrations build exactly the schema the code declares, on both backends, repeatably."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

from giftwave.db.engine import SchemaOutOfDate, check_schema, make_engine, migrate
from giftwave.db.tables import metadata
from giftwave.db.urls import parse_database_url


def test_migrated_schema_matches_the_tables(sa_engine: Engine) -> None:
    with sa_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_migrate_is_idempotent_and_serve_check_passes(sa_engine: Engine) -> None:
    migrate(sa_engine)
    check_schema(sa_engine)
    with sa_engine.connect() as conn:
        head = conn.execute(text("SELECT batch_seq, transfer_seq, hash FROM ledger_head")).all()
    assert head == [(0, 0, "0" * 64)]


def test_an_unmigrated_database_is_refused(tmp_path: Path) -> None:
    engine = make_engine(parse_database_url(f"sqlite:///{tmp_path}/empty.db"))
    with pytest.raises(SchemaOutOfDate, match="giftwave migrate"):
        check_schema(engine)
    engine.dispose()
