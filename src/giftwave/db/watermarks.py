"""Named positions in the ledger's ``transfers.seq`` for jobs that follow it exactly once.

``seq`` is assigned under the chain head lock, gap-free and in commit order, so a transfer
committed later never appears below a position already passed. A job reads what lies past its
position, then claims the position (the first statement writes the row: a second job, on any
node, waits there), checks that it has not moved, writes its results and advances the position
in the same transaction: run again, twice at once or after a crash, nothing is skipped or done
twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from giftwave.clock import now_us
from giftwave.db.tables import analytics_watermarks
from giftwave.db.upsert import insert_for

_row = analytics_watermarks.c


def ensure(db: Engine, name: str) -> None:
    """The position ``name`` exists (at 0 if it did not)."""
    with db.begin() as conn:
        conn.execute(
            insert_for(conn, analytics_watermarks)
            .values(name=name, last_seq=0, updated_at_us=now_us())
            .on_conflict_do_nothing(index_elements=["name"])
        )


def claim(conn: Connection, name: str) -> int:
    """Lock the position for this transaction and read it (``ensure`` it first)."""
    conn.execute(
        update(analytics_watermarks).where(_row.name == name).values(updated_at_us=now_us())
    )
    return int(conn.execute(select(_row.last_seq).where(_row.name == name)).scalar_one())


def advance(conn: Connection, name: str, seq: int) -> None:
    conn.execute(update(analytics_watermarks).where(_row.name == name).values(last_seq=seq))


def position(db: Engine, name: str) -> int:
    with db.connect() as conn:
        seq = position_in(conn, name)
    return 0 if seq is None else seq


def position_in(conn: Connection, name: str) -> int | None:
    """The position, or None before it exists."""
    seq = conn.execute(select(_row.last_seq).where(_row.name == name)).scalar()
    return None if seq is None else int(seq)


class LedgerFollower:
    """A job that follows ``transfers.seq`` from the position ``name``, one bounded chunk per
    transaction: ``read`` the chunk past the position (the last ``seq`` it covers, and the rows
    the job wants of it), ``apply`` the rows, advance past the chunk, commit."""

    def __init__(self, db: Engine, name: str, chunk_max_transfers: int) -> None:
        assert 1 <= chunk_max_transfers <= 100_000
        self._db = db
        self._name = name
        self._chunk = chunk_max_transfers

    def read(self, conn: Connection, last: int, limit: int) -> tuple[int, Sequence[Any]]:
        raise NotImplementedError

    def apply(self, conn: Connection, rows: Sequence[Any]) -> None:
        raise NotImplementedError

    def position(self) -> int:
        return position(self._db, self._name)

    def run_once(self) -> int:
        """At most one chunk; the transfers it passed (0: up to date, or another run passed
        this chunk first)."""
        # The chunk is read before the position is locked (committed transfers below the head
        # never change): SQLite has one write lock, and the ledger's writer needs it.
        with self._db.connect() as conn:
            last = position_in(conn, self._name)
            if last is None:  # the first run ever: no write each run just to make sure
                ensure(self._db, self._name)
                last = 0
            head, rows = self.read(conn, last, self._chunk)
        if head <= last:
            return 0
        with self._db.begin() as conn:
            if claim(conn, self._name) != last:
                return 0
            self.apply(conn, rows)
            advance(conn, self._name, head)
        return head - last  # seq is gap-free

    def catch_up(self, max_chunks: int = 1_000) -> int:
        """Chunks until up to date or ``max_chunks`` ran; the transfers passed."""
        assert max_chunks >= 1
        done = 0
        for _ in range(max_chunks):
            n = self.run_once()
            done += n
            if n < self._chunk:
                break
        return done
