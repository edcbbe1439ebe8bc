"""One typed settings object, read from ``GIFTWAVE_*`` environment variables.

A bad value fails at start with a message that names the variable, never later at first use.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "GIFTWAVE_"


class ConfigError(Exception):
    """A ``GIFTWAVE_*`` variable holds a value giftwave cannot run with."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    database_url: str = "sqlite:///./giftwave.db"
    broker_url: str = "memory://"
    # Bearer token for the operator's ledger API; unset means that API is switched off.
    admin_token: SecretStr | None = None

    # Posting engine: one writer per process drains a bounded queue into one transaction.
    ledger_batch_max_transfers: Annotated[int, Field(ge=1, le=100_000)] = 8192
    ledger_queue_max_submissions: Annotated[int, Field(ge=1, le=10_000_000)] = 100_000
    ledger_batch_linger_ms: Annotated[float, Field(ge=0, le=5)] = 0.0
    ledger_expiry_interval_s: Annotated[float, Field(gt=0, le=3600)] = 1.0

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        from giftwave.db.urls import parse_database_url

        parse_database_url(value)  # raises ValueError naming what is wrong
        return value

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://")):
            raise ValueError("must start with memory:// or redis://")
        return value


def load_settings() -> Settings:
    """Read the environment once; raise ``ConfigError`` naming every bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            lines.append(f"{ENV_PREFIX}{field.upper()}: {error['msg']}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
