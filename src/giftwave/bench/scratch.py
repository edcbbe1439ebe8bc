"""A scratch database for a benchmark or a test: made fresh, migrated, removed afterwards."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from giftwave.db.urls import Backend, DatabaseUrl, parse_database_url


def with_search_path(url: str, schema: str) -> str:
    """The same PostgreSQL URL, with every connection's search_path set to ``schema``."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return urlunsplit(parts._replace(query=urlencode(query)))


@contextmanager
def scratch_database(base_url: str, label: str = "scratch") -> Iterator[DatabaseUrl]:
    """A new empty database next to ``base_url``: a temporary SQLite file, or a new
    PostgreSQL schema in the database ``base_url`` names. Removed on exit."""
    base = parse_database_url(base_url)
    if base.backend is Backend.SQLITE:
        directory = Path(os.path.dirname(base.sqlite_path) or ".")
        with tempfile.TemporaryDirectory(prefix=f"giftwave-{label}-", dir=directory) as tmp:
            yield parse_database_url(f"sqlite:///{tmp}/ledger.db")
        return
    schema = f"giftwave_{label}_{secrets.token_hex(4)}"
    admin_url = base.libpq_url
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield parse_database_url(with_search_path(base.url, schema))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
