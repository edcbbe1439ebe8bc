"""A writer process killed with a batch in its hands, at the same instant every run.

Killing after the N-th acknowledgement raced the writer: on a loaded machine the writer had
often answered both batches it held and sat idle waiting for the next, so the kill lost
nothing and the test saw every gift acknowledged. Here the kill follows the hand-over of the
N-th batch in the same call, microseconds after it was sent and long before a batch commits.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from concurrent.futures import Future

from giftwave.db.urls import DatabaseUrl
from giftwave.ledger.annex import Annex
from giftwave.ledger.model import Outcome, Transfer
from giftwave.ledger.writer_process import ProcessStore


class KillsWriterMidBatch(ProcessStore):
    """Sends batches as ``ProcessStore`` does, and SIGKILLs the writer after sending batch N."""

    def __init__(self, db: DatabaseUrl, *, kill_after_batches: int) -> None:
        super().__init__(db)
        self._kill_after = kill_after_batches
        self._sent = 0
        self.killed_pid: int | None = None

    def submit_batch(
        self,
        requests: Sequence[Sequence[Transfer]],
        now_us: int,
        annexes: Sequence[Annex | None] | None = None,
    ) -> Future[list[list[Outcome]]]:
        reply = super().submit_batch(requests, now_us, annexes)
        self._sent += 1
        if self._sent == self._kill_after:
            self.killed_pid = self.pid
            assert self.killed_pid is not None
            os.kill(self.killed_pid, signal.SIGKILL)
        return reply
