"""A bounded queue drained by one thread that writes what gathered as one batch.

    writer = BatchThread(partial(write_visits, db), name="share-visits")
    writer.start()
    if not writer.offer(visit):  # full: the caller writes this one itself
        ...
    writer.stop()  # writes what is queued, then ends the thread

For derived records the request does not have to wait for (anonymous share visits): the
request answers without a commit, and one transaction carries many requests' rows.

The thread sleeps while a batch fills: it is woken once when the first item of a batch arrives
and once when a batch is full, never per item. A thread woken for every item (a
``queue.Queue``) took the GIL from the event loop thousands of times a second and gave share
redirects a p99 in the hundreds of milliseconds (docs/benchmarks.md). A batch is written at
most ``linger_s`` after its first item, or at once when ``batch_max`` items wait.

Best effort, by choice: an item is in memory until its batch commits, so a crash loses at most
the items of the last ``linger_s`` (never more than ``max_pending``). A batch ``write`` raises
on is logged and counted in ``lost``.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Final, Generic, TypeVar

from giftwave import metrics

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_PENDING: Final = 10_000
BATCH_MAX: Final = 500
LINGER_S: Final = 0.05


class BatchThread(Generic[T]):
    def __init__(
        self,
        write: Callable[[list[T]], None],
        *,
        name: str,
        max_pending: int = MAX_PENDING,
        batch_max: int = BATCH_MAX,
        linger_s: float = LINGER_S,
    ) -> None:
        assert max_pending >= 1
        assert batch_max >= 1
        assert linger_s > 0
        self._write = write
        self._name = name
        self._max_pending = max_pending
        self._batch_max = batch_max
        self._linger_s = linger_s
        self._pending: deque[T] = deque()
        self._lock = threading.Lock()
        self._queued = threading.Event()  # set while items wait
        self._full = threading.Event()  # set while a batch is full, or on stop
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.lost = 0  # items of batches ``write`` raised on (logged)

    def offer(self, item: T) -> bool:
        """Queue an item; False when the queue is full (write it yourself)."""
        with self._lock:
            waiting = len(self._pending)
            if waiting >= self._max_pending:
                return False
            self._pending.append(item)
        if waiting == 0:
            self._queued.set()
        elif waiting + 1 == self._batch_max:
            self._full.set()
        return True

    def start(self) -> None:
        assert self._thread is None
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
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
            if batch:
                try:
                    self._write(batch)
                except Exception:  # the requests were answered; these records are missing
                    self.lost += len(batch)
                    metrics.BACKGROUND_LOST.labels(self._name).inc(len(batch))
                    log.exception("%s: could not write a batch of %d", self._name, len(batch))
            if done:
                return
