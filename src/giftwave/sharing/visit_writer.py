"""Anonymous visits, written in batches by one thread so the redirect never waits for a commit.

A commit costs a few milliseconds on either database (an fsync; measured in docs/sharing.md),
more than the redirect itself. The queue is bounded (``max_pending``): when it is full,
``offer`` says so and the caller writes the visit itself, on a worker thread, before answering.
A batch is committed at most ``linger_s`` after its first visit, or at ``batch_max`` visits.

Best effort, by choice: a visit whose redirect was answered is in memory until its batch
commits, so a crash loses at most the visits of the last ``linger_s`` (never more than
``max_pending``). Visits of logged-in visitors carry a touch that attribution needs, so they
are not queued: they are committed before their redirect (``Sharing.write``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import Engine

from giftwave.batch_thread import BATCH_MAX, LINGER_S, MAX_PENDING, BatchThread
from giftwave.db.tables import share_visits


@dataclass(frozen=True, slots=True)
class Visit:
    share_id: int
    visitor_hash: str
    user_id: int | None
    visited_at_us: int


def write_visits(db: Engine, visits: list[Visit]) -> None:
    """Commit visits in one transaction, as one multi-row INSERT.

    Not ``executemany``: SQLite's driver lets go of the GIL around every row's step and must
    win it back from the event loop each time, which with the short switch interval we run
    (giftwave/tuning.py) cost the loop a wait per row: redirects at 5,000/s had a p99 of
    190 ms beside the writer and 9 ms without it. Nor SQLAlchemy's multi-row ``values()``:
    compiling 500 rows took the loop's time instead (docs/benchmarks.md)."""
    if not visits:
        return
    with db.begin() as conn:
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        params: list[object] = []
        for v in visits:
            params += (v.share_id, v.visitor_hash, v.user_id, v.visited_at_us)
        conn.exec_driver_sql(_insert_visits(mark, len(visits)), tuple(params))


@functools.cache
def _insert_visits(mark: str, rows: int) -> str:
    row = f"({mark}, {mark}, {mark}, {mark})"
    return (
        f"INSERT INTO {share_visits.name} (share_id, visitor_hash, user_id, visited_at_us) "
        f"VALUES {', '.join([row] * rows)}"
    )


class VisitWriter(BatchThread[Visit]):
    """Anonymous visits, committed in batches by one thread (``giftwave.batch_thread``)."""

    def __init__(
        self,
        db: Engine,
        *,
        max_pending: int = MAX_PENDING,
        batch_max: int = BATCH_MAX,
        linger_s: float = LINGER_S,
    ) -> None:
        super().__init__(
            functools.partial(write_visits, db),
            name="share-visits",
            max_pending=max_pending,
            batch_max=batch_max,
            linger_s=linger_s,
        )
