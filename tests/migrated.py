"""Migrated databases for the tests, made by copying where copying is cheap.

Running every migration takes a few tenths of a second per database, and about a thousand tests
each want a fresh one. On SQLite each worker migrates one template file and every test gets a
copy of it: byte for byte what ``migrate`` made, seeded rows included.

PostgreSQL keeps a new schema per test, migrated. A copy there would be ``CREATE DATABASE …
TEMPLATE``, and its ``DROP DATABASE`` forces a checkpoint: measured at 14 and 30 s each while
the suite ran beside it, against about 0.3 s to migrate a schema.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from giftwave.bench.scratch import scratch_database
from giftwave.db.engine import make_engine, migrate
from giftwave.db.urls import DatabaseUrl, parse_database_url


class MigratedDatabases:
    """Fresh migrated databases: copies of one migrated SQLite file, or migrated schemas."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._sqlite_template: Path | None = None

    @contextmanager
    def fresh(self, backend: str, base_url: str) -> Iterator[DatabaseUrl]:
        """A new migrated database next to ``base_url``, removed on exit."""
        if backend == "sqlite":
            with self._sqlite_copy(base_url) as db:
                yield db
            return
        with scratch_database(base_url, "test") as db:
            engine = make_engine(db)
            migrate(engine)
            engine.dispose()
            yield db

    @contextmanager
    def _sqlite_copy(self, base_url: str) -> Iterator[DatabaseUrl]:
        directory = Path(parse_database_url(base_url).sqlite_path).parent
        target = directory / f"copy-{secrets.token_hex(4)}" / "ledger.db"
        target.parent.mkdir()
        shutil.copyfile(self._sqlite(), target)
        try:
            yield parse_database_url(f"sqlite:///{target}")
        finally:
            shutil.rmtree(target.parent, ignore_errors=True)

    def _sqlite(self) -> Path:
        if self._sqlite_template is None:
            path = self._directory / "template.db"
            engine = make_engine(parse_database_url(f"sqlite:///{path}"))
            migrate(engine)
            engine.dispose()  # the last connection's close checkpoints the WAL into the file
            if path.with_name(path.name + "-wal").exists():
                raise RuntimeError("the SQLite template still has a WAL file: not a whole copy")
            self._sqlite_template = path
        return self._sqlite_template
