"""Request field types that take exactly what the OpenAPI schema says, nothing lax.

Pydantic's lax mode would read ``0`` as ``false`` and ``0`` or ``"0"`` as 1970-01-01: a
client that sends those gets a 422 naming the field, not a silent guess.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Final

from pydantic import BeforeValidator, StrictBool

__all__ = ["IsoDate", "PlainText", "StrictBool"]

_ISO_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: object) -> object:
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise ValueError("a date is written YYYY-MM-DD")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


def _plain_text(value: object) -> object:
    # Control characters (other than newline and tab) are never meant, and PostgreSQL cannot
    # store NUL at all: refuse them here, before anything is written.
    if isinstance(value, str) and any(
        (ord(c) < 32 and c not in "\n\t") or c == "\x7f" for c in value
    ):
        raise ValueError("text may not contain control characters")
    return value


PlainText = Annotated[str, BeforeValidator(_plain_text)]
