"""Migrations build exactly the schema the code declares, on both backends, repeatably."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

from giftwave.db.engine import SchemaOutOfDate, check_schema, make_engine, migrate
from giftwave.db.tables import metadata
from giftwave.db.urls import DatabaseUrl, parse_database_url


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


def test_0031_carries_each_clubs_chat_mode_to_its_creator(bare_db_url: DatabaseUrl) -> None:
    """The data migration: a club in members mode keeps it (as the creator's setting), at
    level N too, a subscribers-only club stays so, an everyone club needs no row."""
    engine = make_engine(bare_db_url)
    try:
        migrate(engine, "0030")
        with engine.begin() as conn:
            for creator_id, mode, level in (
                (1, "members", 1),
                (2, "members_level", 4),
                (3, "subscribers", 1),
                (4, "everyone", 1),
            ):
                conn.execute(
                    text(
                        "INSERT INTO fan_clubs (creator_id, name, chat_mode, chat_min_level,"
                        " created_at_us, updated_at_us) VALUES (:id, :name, :mode, :level, 5, 7)"
                    ),
                    {"id": creator_id, "name": f"Club {creator_id}", "mode": mode, "level": level},
                )
        migrate(engine)
        with engine.connect() as conn:
            settings = conn.execute(
                text(
                    "SELECT creator_id, mode, min_level, updated_at_us FROM creator_chat_settings"
                    " ORDER BY creator_id"
                )
            ).all()
            clubs = conn.execute(text("SELECT * FROM fan_clubs ORDER BY creator_id")).all()
        assert [tuple(r) for r in settings] == [
            (1, "members", 1, 7),
            (2, "members_level", 4, 7),
            (3, "subscribers", 1, 7),
        ]
        assert [r._mapping["name"] for r in clubs] == [f"Club {n}" for n in (1, 2, 3, 4)]
        assert "chat_mode" not in clubs[0]._mapping
        check_schema(engine)
    finally:
        engine.dispose()
