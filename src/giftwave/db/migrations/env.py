"""Alembic environment: the connection comes from giftwave, never from an ini file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from giftwave.db.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


_run(context.config.attributes["connection"])
