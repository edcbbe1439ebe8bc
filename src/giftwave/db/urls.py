"""Database URLs: the one place that maps ``GIFTWAVE_DATABASE_URL`` onto drivers."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import urlsplit


class Backend(enum.Enum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    backend: Backend
    url: str  # as the operator wrote it

    @property
    def sqlalchemy_url(self) -> str:
        """The URL SQLAlchemy needs: PostgreSQL always through psycopg 3."""
        if self.backend is Backend.POSTGRESQL:
            return "postgresql+psycopg://" + self.url.split("://", 1)[1]
        return self.url

    @property
    def sqlite_path(self) -> str:
        assert self.backend is Backend.SQLITE
        return self.url.removeprefix("sqlite:///")

    @property
    def libpq_url(self) -> str:
        """A URI libpq (and so psycopg) understands directly."""
        assert self.backend is Backend.POSTGRESQL
        return "postgresql://" + self.url.split("://", 1)[1]


def parse_database_url(url: str) -> DatabaseUrl:
    """Accept ``sqlite:///path`` or ``postgresql://…``; raise ``ValueError`` for anything else."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        if not url.startswith("sqlite:///") or url == "sqlite:///":
            raise ValueError("SQLite URLs look like sqlite:///./giftwave.db (a file path)")
        if ":memory:" in url:
            raise ValueError("an in-memory SQLite database cannot be shared; use a file path")
        return DatabaseUrl(Backend.SQLITE, url)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        if not urlsplit(url).path.strip("/"):
            raise ValueError("PostgreSQL URLs must name a database: postgresql://host/dbname")
        return DatabaseUrl(Backend.POSTGRESQL, url)
    raise ValueError(f"unsupported scheme {scheme!r}: use sqlite:/// or postgresql://")
