"""The batch hash chain: each committed batch's hash covers its transfers and the previous hash.

``verify`` recomputes the chain from the stored rows, so the serialization must depend on
nothing but the row values: orjson of a list of plain tuples of str, int and None.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Final

import orjson

GENESIS_HASH: Final = "0" * 64


def batch_hash(
    prev_hash: str, batch_seq: int, created_at_us: int, rows: Sequence[tuple[Any, ...]]
) -> str:
    """Hash of one batch, chained to ``prev_hash`` (hex)."""
    content = hashlib.sha256(orjson.dumps(list(rows))).digest()
    header = (
        bytes.fromhex(prev_hash) + batch_seq.to_bytes(8, "big") + created_at_us.to_bytes(8, "big")
    )
    return hashlib.sha256(header + content).hexdigest()
