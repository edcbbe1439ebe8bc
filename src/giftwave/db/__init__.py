"""Storage: SQLAlchemy Core tables, Alembic migrations, engine setup."""
