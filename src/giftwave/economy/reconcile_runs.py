"""A reconciliation run: both sides read, compared (economy/reconcile.py), and remembered.

Each side is read from a margin before ``since`` (``MARGIN_US``): a payment taken at the
provider just before the window may be credited in it, and must be found on both sides to
match. The run is stored in ``reconcile_runs`` with its counts and its first
``STORED_MISMATCHES`` mismatches (the admin console shows the last run; the command's own
output has them all); only the newest ``RUNS_KEPT`` runs are kept.

Both sides are read at one moment each, one after the other: a payment or a transfer in flight
at that moment (its webhook not yet taken) can show as a mismatch that the next run no longer
has. A mismatch found by two runs in a row is real.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final

import orjson
from sqlalchemy import Connection, Engine, delete, func, insert, select

from giftwave.clock import now_us
from giftwave.db.tables import reconcile_runs
from giftwave.economy.reconcile import Mismatch, compare, count_mismatches, in_window
from giftwave.economy.reconcile_ledger import ledger_records
from giftwave.payments.records import Record, RecordSource

MARGIN_US: Final = 7 * 86_400 * 1_000_000  # longer than a provider retries a webhook
STORED_MISMATCHES: Final = 200
RUNS_KEPT: Final = 100


@dataclass(frozen=True, slots=True)
class Run:
    provider: str
    since_us: int
    started_at_us: int
    finished_at_us: int
    ledger_records: int
    provider_records: int
    counts: dict[str, int]
    mismatch_count: int
    mismatches: list[dict[str, Any]]  # as ``mismatch_out`` shapes them; the first ones

    @property
    def clean(self) -> bool:
        return self.mismatch_count == 0

    def as_dict(self) -> dict[str, Any]:
        """The shape both the command's ``--json`` and the admin route answer."""
        return {
            "provider": self.provider,
            "since_us": self.since_us,
            "started_at_us": self.started_at_us,
            "finished_at_us": self.finished_at_us,
            "clean": self.clean,
            "records": {"ledger": self.ledger_records, "provider": self.provider_records},
            "counts": self.counts,
            "mismatch_count": self.mismatch_count,
            "mismatches": self.mismatches,
            "truncated": len(self.mismatches) < self.mismatch_count,
        }


def _record_out(record: Record | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "amount_minor": record.amount_minor,
        "currency": record.currency,
        "state": record.state,
        "at_us": record.at_us,
    }


def mismatch_out(m: Mismatch) -> dict[str, Any]:
    return {
        "mismatch": m.mismatch.value,
        "kind": m.kind.value,
        "reference": m.reference,
        "ledger": _record_out(m.ledger),
        "provider": _record_out(m.provider),
    }


def _read_ledger(db: Engine, provider: str, floor_us: int) -> list[Record]:
    with db.connect() as conn:
        return ledger_records(conn, provider, floor_us)


async def reconcile(db: Engine, source: RecordSource, since_us: int) -> tuple[Run, list[Mismatch]]:
    """Compare the ledger with ``source`` from ``since_us`` on and store the run; the run and
    every mismatch. ``ProviderUnavailable`` when the provider cannot be read (nothing stored)."""
    started_at_us = now_us()
    floor_us = max(0, since_us - MARGIN_US)
    theirs = await source.records(floor_us)
    mine = await asyncio.to_thread(_read_ledger, db, source.name, floor_us)
    mismatches = compare(mine, theirs, since_us)
    run = Run(
        provider=source.name,
        since_us=since_us,
        started_at_us=started_at_us,
        finished_at_us=now_us(),
        ledger_records=in_window(mine, since_us),
        provider_records=in_window(theirs, since_us),
        counts=count_mismatches(mismatches),
        mismatch_count=len(mismatches),
        mismatches=[mismatch_out(m) for m in mismatches[:STORED_MISMATCHES]],
    )
    await asyncio.to_thread(_store, db, run)
    return run, mismatches


def _store(db: Engine, run: Run) -> None:
    with db.begin() as conn:
        conn.execute(
            insert(reconcile_runs).values(
                provider=run.provider,
                since_us=run.since_us,
                started_at_us=run.started_at_us,
                finished_at_us=run.finished_at_us,
                ledger_records=run.ledger_records,
                provider_records=run.provider_records,
                mismatch_count=run.mismatch_count,
                counts_json=orjson.dumps(run.counts).decode(),
                mismatches_json=orjson.dumps(run.mismatches).decode(),
            )
        )
        newest = conn.execute(select(func.max(reconcile_runs.c.id))).scalar_one()
        conn.execute(delete(reconcile_runs).where(reconcile_runs.c.id <= newest - RUNS_KEPT))


def _last(conn: Connection) -> Run | None:
    row = conn.execute(select(reconcile_runs).order_by(reconcile_runs.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    return Run(
        provider=row.provider,
        since_us=int(row.since_us),
        started_at_us=int(row.started_at_us),
        finished_at_us=int(row.finished_at_us),
        ledger_records=int(row.ledger_records),
        provider_records=int(row.provider_records),
        counts=orjson.loads(row.counts_json),
        mismatch_count=int(row.mismatch_count),
        mismatches=orjson.loads(row.mismatches_json),
    )


def last_run(db: Engine) -> Run | None:
    """The newest stored run (None before the first)."""
    with db.connect() as conn:
        return _last(conn)
