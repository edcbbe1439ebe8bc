"""Reconciliation's rule, pure: the ledger's records and the provider's in, every mismatch out.

Records are matched on (kind, reference) (payments/records.py). For each pair:

    only in the ledger            missing_at_provider
    only at the provider          missing_in_ledger
    currencies differ             currency_differs   (the amounts then mean nothing side by side)
    amounts differ                amount_differs     } both, when both differ
    states differ                 state_differs      }

A pair is in the window when any of its records happened at or after ``since_us``; sources may
answer more than the window (they read a margin before it, so that a payment credited a moment
after the provider took it is still found on both sides), and what they read early is only used
to match. The answer is sorted (kind, reference, mismatch), so two runs over the same books
print the same lines.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from giftwave.payments.records import Record, RecordKind


class MismatchKind(enum.StrEnum):
    MISSING_AT_PROVIDER = "missing_at_provider"
    MISSING_IN_LEDGER = "missing_in_ledger"
    CURRENCY_DIFFERS = "currency_differs"
    AMOUNT_DIFFERS = "amount_differs"
    STATE_DIFFERS = "state_differs"


_KIND_ORDER: Final = {k: i for i, k in enumerate(RecordKind)}
_MISMATCH_ORDER: Final = {k: i for i, k in enumerate(MismatchKind)}


@dataclass(frozen=True, slots=True)
class Mismatch:
    mismatch: MismatchKind
    kind: RecordKind
    reference: str
    ledger: Record | None
    provider: Record | None


class DuplicateRecord(ValueError):
    """A source answered two records for one (kind, reference): a source's bug, never data."""


def _by_key(records: Iterable[Record], side: str) -> dict[tuple[RecordKind, str], Record]:
    found: dict[tuple[RecordKind, str], Record] = {}
    for record in records:
        key = (record.kind, record.reference)
        if key in found:
            raise DuplicateRecord(f"the {side} has two {record.kind} records {record.reference!r}")
        found[key] = record
    return found


def _pair(
    key: tuple[RecordKind, str], mine: Record | None, theirs: Record | None
) -> list[Mismatch]:
    kind, reference = key
    if theirs is None:
        return [Mismatch(MismatchKind.MISSING_AT_PROVIDER, kind, reference, mine, None)]
    if mine is None:
        return [Mismatch(MismatchKind.MISSING_IN_LEDGER, kind, reference, None, theirs)]
    found = []
    if mine.currency != theirs.currency:
        found.append(MismatchKind.CURRENCY_DIFFERS)
    elif mine.amount_minor != theirs.amount_minor:
        found.append(MismatchKind.AMOUNT_DIFFERS)
    if mine.state != theirs.state:
        found.append(MismatchKind.STATE_DIFFERS)
    return [Mismatch(m, kind, reference, mine, theirs) for m in found]


def compare(
    ledger: Iterable[Record], provider: Iterable[Record], since_us: int = 0
) -> list[Mismatch]:
    """Every mismatch between the two sides within the window, sorted."""
    mine = _by_key(ledger, "ledger")
    theirs = _by_key(provider, "provider")
    found: list[Mismatch] = []
    for key in mine.keys() | theirs.keys():
        a, b = mine.get(key), theirs.get(key)
        if max(r.at_us for r in (a, b) if r is not None) < since_us:
            continue  # read only to match: before the window on every side it is on
        found.extend(_pair(key, a, b))
    found.sort(key=lambda m: (_KIND_ORDER[m.kind], m.reference, _MISMATCH_ORDER[m.mismatch]))
    return found


def count_mismatches(mismatches: Iterable[Mismatch]) -> dict[str, int]:
    """How many of each mismatch, every kind named (zeros included): a stable shape."""
    counted = Counter(m.mismatch for m in mismatches)
    return {kind.value: counted.get(kind, 0) for kind in MismatchKind}


def in_window(records: Iterable[Record], since_us: int) -> int:
    """How many records happened at or after ``since_us``: what a run says it read."""
    return sum(1 for r in records if r.at_us >= since_us)
