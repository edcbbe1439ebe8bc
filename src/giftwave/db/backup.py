"""``giftwave backup``: a consistent copy of a SQLite database while the server writes to it.

SQLite's online backup API (``sqlite3.Connection.backup``) copies the database page by page.
Copied in ONE step, it reads inside one read transaction: in WAL mode (giftwave's) that is a
snapshot of one instant, and the server's writers are never blocked by it. Copied in several
steps, a write between two of them would restart the copy, or (from the same connection) mix
instants; one step costs a read of the whole file, which is what a backup is anyway.

The copy is written beside the target and renamed into place once it passed SQLite's own
check: a crash midway never leaves a half copy under the name the operator asked for.

PostgreSQL is refused: its own tools (``pg_dump``, base backups with WAL archiving for
point-in-time recovery) do this better than any copy through a client (docs/operations.md).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from giftwave.db.urls import Backend, DatabaseUrl

# How long the copy waits for a lock (a checkpoint in progress, a schema change).
BUSY_TIMEOUT_S: Final = 30.0


class BackupRefused(Exception):
    """This database cannot be backed up by giftwave (said why, and what to use instead)."""


@dataclass(frozen=True, slots=True)
class Copied:
    pages: int
    bytes: int


def backup_sqlite(db: DatabaseUrl, target: Path) -> Copied:
    """Copy the SQLite database named by ``db`` to ``target`` (which must not exist)."""
    if db.backend is Backend.POSTGRESQL:
        raise BackupRefused(
            "giftwave backup copies SQLite databases only; back PostgreSQL up with pg_dump "
            "(pg_dump -Fc -f giftwave.dump DBNAME), or with base backups and WAL archiving "
            "for point-in-time recovery (docs/operations.md, Backups)"
        )
    source = Path(db.sqlite_path)
    if not source.is_file():
        raise BackupRefused(f"no SQLite database at {source}")
    if target.exists():
        raise BackupRefused(f"{target} exists already: choose a new name")
    if not target.parent.is_dir():
        raise BackupRefused(f"no directory {target.parent}")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        copied = _copy(source, partial)
        _fsync(partial)
        partial.rename(target)
        _fsync(target.parent)
    finally:
        partial.unlink(missing_ok=True)
    return copied


def _copy(source: Path, partial: Path) -> Copied:
    with (
        contextlib.closing(sqlite3.connect(source, timeout=BUSY_TIMEOUT_S)) as src,
        contextlib.closing(sqlite3.connect(partial)) as dst,
    ):
        src.backup(dst, pages=-1)  # one step: one read transaction, one instant
        problems = dst.execute("PRAGMA quick_check").fetchall()
        if problems != [("ok",)]:
            raise BackupRefused(f"the copy failed SQLite's check: {problems[:3]}")
        pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
        page_size = int(dst.execute("PRAGMA page_size").fetchone()[0])
    return Copied(pages=pages, bytes=pages * page_size)


def _fsync(path: Path) -> None:
    """On disk before it is named done (a file), or before the rename is (a directory)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
