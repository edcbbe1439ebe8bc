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
import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Engine

from giftwave.db.tables import share_visits

log = logging.getLogger(__name__)

MAX_PENDING: Final = 10_000
BATCH_MAX: Final = 500
LINGER_S: Final = 0.05


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


class VisitWriter:
    """A bounded queue of visits and the thread that commits them in batches.

    The thread sleeps while a batch fills: it is woken once when the first visit of a batch
    arrives and once when a batch is full, never per visit. A thread woken for every visit (a
    ``queue.Queue``) took the GIL from the event loop thousands of times a second and gave
    redirects a p99 in the hundreds of milliseconds (docs/benchmarks.md)."""

    def __init__(
        self,
        db: Engine,
        *,
        max_pending: int = MAX_PENDING,
        batch_max: int = BATCH_MAX,
        linger_s: float = LINGER_S,
    ) -> None:
        assert max_pending >= 1
        assert batch_max >= 1
        assert linger_s > 0
        self.db = db
        self._max_pending = max_pending
        self._batch_max = batch_max
        self._linger_s = linger_s
        self._pending: deque[Visit] = deque()
        self._lock = threading.Lock()
        self._queued = threading.Event()  # set while visits wait
        self._full = threading.Event()  # set while a batch is full, or on stop
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.lost_visits = 0  # batches the database refused (logged)

    def offer(self, visit: Visit) -> bool:
        """Queue a visit; False when the queue is full (write it yourself)."""
        with self._lock:
            waiting = len(self._pending)
            if waiting >= self._max_pending:
                return False
            self._pending.append(visit)
        if waiting == 0:
            self._queued.set()
        elif waiting + 1 == self._batch_max:
            self._full.set()
        return True

    def start(self) -> None:
        assert self._thread is None
        self._thread = threading.Thread(target=self._run, name="share-visits", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        if self._thread is None:
            return
        with self._lock:
            self._stopping = True
        self._full.set()
        self._queued.set()
        self._thread.join()
        self._thread = None

    def _run(self) -> None:
        while True:
            self._queued.wait()
            self._full.wait(self._linger_s)  # the batch fills meanwhile
            with self._lock:
                take = min(len(self._pending), self._batch_max)
                batch = [self._pending.popleft() for _ in range(take)]
                if not self._pending:
                    self._queued.clear()
                if len(self._pending) < self._batch_max and not self._stopping:
                    self._full.clear()
                done = self._stopping and not self._pending
            self._write(batch)
            if done:
                return

    def _write(self, visits: list[Visit]) -> None:
        try:
            write_visits(self.db, visits)
        except Exception:  # the redirects were answered; these visits are not counted
            self.lost_visits += len(visits)
            log.exception("could not write %d share visits", len(visits))
