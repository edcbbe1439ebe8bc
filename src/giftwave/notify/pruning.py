"""Old notices, push jobs and fan-outs deleted, so the notify tables stay the size of their
retention, not of the site's history.

Three rules, each by creation time: a notice older than ``notice_retention_days`` leaves the
inbox (with its push jobs, whatever their state); a push job that ended (sent or failed) older
than ``push_job_retention_days``; a finished fan-out row as old. A pending push job or fan-out
is never pruned by its own rule: it still has work to do.

Bounded: ``BATCH`` rows a statement, ``BATCHES_PER_ROUND`` statements a rule a round (the rest
next round), each batch its own short transaction so the inbox's readers and the sender never
wait long behind it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Engine, delete, select

from giftwave.db.tables import notice_fanouts, notices, push_jobs

BATCH: Final = 2000
BATCHES_PER_ROUND: Final = 50
DAY_US: Final = 86_400 * 1_000_000
ENDED: Final = ("sent", "failed")

_Batch = Callable[[Connection, int], int]  # one batch deleted; how many rows


@dataclass(frozen=True, slots=True)
class Retention:
    notice_days: int
    push_job_days: int

    def __post_init__(self) -> None:
        assert self.notice_days >= 1
        assert self.push_job_days >= 1


@dataclass(frozen=True, slots=True)
class Pruned:
    notices: int
    push_jobs: int
    fanouts: int


def prune(db: Engine, retention: Retention, *, now_us: int) -> Pruned:
    """One round: at most BATCH x BATCHES_PER_ROUND rows of each kind deleted."""
    notice_before = now_us - retention.notice_days * DAY_US
    job_before = now_us - retention.push_job_days * DAY_US
    return Pruned(
        notices=_in_batches(db, _old_notices, notice_before),
        push_jobs=_in_batches(db, _ended_jobs, job_before),
        fanouts=_in_batches(db, _done_fanouts, job_before),
    )


def _in_batches(db: Engine, one_batch: _Batch, before_us: int) -> int:
    total = 0
    for _ in range(BATCHES_PER_ROUND):
        with db.begin() as conn:
            deleted = one_batch(conn, before_us)
        total += deleted
        if deleted < BATCH:
            break
    return total


def _old_notices(conn: Connection, before_us: int) -> int:
    n = notices.c
    ids = [
        int(i)
        for (i,) in conn.execute(
            select(n.id).where(n.created_at_us < before_us).order_by(n.id).limit(BATCH)
        )
    ]
    if not ids:
        return 0
    conn.execute(delete(push_jobs).where(push_jobs.c.notice_id.in_(ids)))
    return int(conn.execute(delete(notices).where(n.id.in_(ids))).rowcount)


def _ended_jobs(conn: Connection, before_us: int) -> int:
    j = push_jobs.c
    ids = select(j.id).where(j.status.in_(ENDED), j.created_at_us < before_us).limit(BATCH)
    found = [int(i) for (i,) in conn.execute(ids)]
    if not found:
        return 0
    return int(conn.execute(delete(push_jobs).where(j.id.in_(found))).rowcount)


def _done_fanouts(conn: Connection, before_us: int) -> int:
    f = notice_fanouts.c
    ids = select(f.id).where(f.status == "done", f.created_at_us < before_us).limit(BATCH)
    found = [int(i) for (i,) in conn.execute(ids)]
    if not found:
        return 0
    return int(conn.execute(delete(notice_fanouts).where(f.id.in_(found))).rowcount)
