"""Anonymous visits, written in batches by one thread so the redirect never waits for a commit.

A commit costs a few milliseconds on either database (an fsync; measured in docs/sharing.md),
more than the redirect itself. The queue is bounded (``max_pending``): when it is full,
``offer`` says so and the caller writes the visit itself, on a worker thread, before answering.
A batch is committed at most ``linger_s`` after its first visit, or at ``batch_max`` visits.

Best effort, by choice: a visit whose redirect was answered is in memory until its batch
commits, so a crash loses at most the visits of the last ``linger_s`` (never more than
``max_pending``). Visits of logged-in visitors carry a touch that attribution needs, so they
are not queued: they are committed before their redirect (see ``Sharing.open``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
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
    """Commit visits in one transaction."""
    if not visits:
        return
    with db.begin() as conn:
        conn.execute(
            share_visits.insert(),
            [
                {
                    "share_id": v.share_id,
                    "visitor_hash": v.visitor_hash,
                    "user_id": v.user_id,
                    "visited_at_us": v.visited_at_us,
                }
                for v in visits
            ],
        )


_STOP: Final = object()


class VisitWriter:
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
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_pending)
        self._batch_max = batch_max
        self._linger_s = linger_s
        self._thread: threading.Thread | None = None
        self.lost_visits = 0  # batches the database refused (logged)

    def offer(self, visit: Visit) -> bool:
        """Queue a visit; False when the queue is full (write it yourself)."""
        try:
            self._queue.put_nowait(visit)
        except queue.Full:
            return False
        return True

    def start(self) -> None:
        assert self._thread is None
        self._thread = threading.Thread(target=self._run, name="share-visits", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)  # waits for room: the thread is draining
        self._thread.join()
        self._thread = None

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stopping = False
            deadline = time.monotonic() + self._linger_s
            while len(batch) < self._batch_max and not stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    item = self._queue.get(timeout=left)
                except queue.Empty:
                    break
                stopping = item is _STOP
                if not stopping:
                    batch.append(item)
            self._write([v for v in batch if isinstance(v, Visit)])
            if stopping:
                return

    def _write(self, visits: list[Visit]) -> None:
        try:
            write_visits(self.db, visits)
        except Exception:  # the redirects were answered; these visits are not counted
            self.lost_visits += len(visits)
            log.exception("could not write %d share visits", len(visits))
