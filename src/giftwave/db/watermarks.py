"""Named positions in the ledger's ``transfers.seq`` for jobs that follow it exactly once.

``seq`` is assigned under the chain head lock, gap-free and in commit order, so a transfer
committed later never appears below a position already passed. A job fixes the chunk past its
position (its head: the last ``seq`` committed in it) and reads up to that head only, then
claims the position (the first statement writes the row: a second job, on any node, waits
there), checks that it has not moved, writes its results and advances the position to the head
in the same transaction: run again, twice at once or after a crash, nothing is skipped or done
twice. The head comes first because the reads are separate statements outside the write
transaction: a transfer committed while the chunk is read lies past the head, and is the next
chunk's (a read bounded by ``position + limit`` instead took it in, and the next chunk counted
it again: a gift counted twice under load).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from giftwave.clock import now_us
from giftwave.db.tables import analytics_watermarks, transfers
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


def chunk_head(conn: Connection, last: int, limit: int) -> int:
    """The last ``seq`` committed in the chunk of at most ``limit`` transfers past ``last``
    (``last`` itself: nothing past it yet)."""
    seq = transfers.c.seq
    head = conn.execute(select(func.max(seq)).where(seq > last, seq <= last + limit)).scalar()
    return last if head is None else int(head)


class LedgerFollower:
    """A job that follows ``transfers.seq`` from the position ``name``, one bounded chunk per
    transaction: fix the chunk's head, ``read`` the rows the job wants of the transfers up to
    it, ``apply`` them, advance to the head, commit."""

    def __init__(self, db: Engine, name: str, chunk_max_transfers: int) -> None:
        assert 1 <= chunk_max_transfers <= 100_000
        self._db = db
        self._name = name
        self._chunk = chunk_max_transfers

    def read(self, conn: Connection, last: int, head: int) -> Any:
        """What the job needs of the transfers with ``last < seq <= head`` (never past
        ``head``: those are the next chunk's), as ``apply`` takes it. Read before the position
        is locked: on SQLite the write transaction holds the one write lock the ledger's
        writer waits for, so whatever can be read or computed here should be."""
        raise NotImplementedError

    def apply(self, conn: Connection, rows: Any) -> None:
        """Write what ``read`` returned, in the transaction that advances the position."""
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
            head = chunk_head(conn, last, self._chunk)
            if head <= last:
                return 0
            rows = self.read(conn, last, head)
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
