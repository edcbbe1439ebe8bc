"""Ids for ``WHERE id IN (...)``, in parts a statement can take.

Every backend limits the parameters of one statement (SQLite 32,766, PostgreSQL 65,535, and
long lists plan slowly); 2,000 ids a part stays well under both.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final, TypeVar

T = TypeVar("T")

IN_LIST_MAX: Final = 2_000


def in_parts(ids: Sequence[T], size: int = IN_LIST_MAX) -> Iterator[Sequence[T]]:
    """``ids`` in consecutive parts of at most ``size``."""
    assert size >= 1
    for i in range(0, len(ids), size):
        yield ids[i : i + size]
