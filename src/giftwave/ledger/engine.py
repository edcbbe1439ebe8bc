"""The posting engine: many callers, one writer, one transaction per batch.

    results = await engine.submit([coins_leg._replace(linked=True), diamonds_leg])
    results = await engine.submit(pair, annex=(GIFT_SENDS.name, row))  # see ledger.annex

Callers put a submission on a bounded queue and await a future. One writer task per process
takes everything queued (up to ``batch_max_transfers``) and hands it to the store on a
dedicated thread, where it becomes one database transaction. Futures resolve only after the
commit returned, so an acknowledged transfer is durable. While one batch commits, the next
one gathers: under load batches grow, and when idle a lone transfer goes at once.

Exceptions: ``EngineStopped`` (submit after stop), ``LedgerUnavailable`` (the batch could not
be committed; none of its transfers were acknowledged and a retry with the same ids is safe),
``ValueError`` (a submission larger than one batch, or an annex of no registered table).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Final

from giftwave import metrics
from giftwave.ledger.annex import (
    PAYOUT_EXPIRED_DECISION,
    PAYOUT_PENDING_PREFIX,
    Annex,
    check_annex,
    expiry_annex,
)
from giftwave.ledger.model import Outcome, Transfer, TransferCode, TransferKind
from giftwave.ledger.store import BatchStore, PipelinedStore
from giftwave.logs import audit
from giftwave.periodic import PeriodicTask, Schedule

log = logging.getLogger(__name__)

EXPIRY_SWEEP_LIMIT: Final = 1000
# The queue gauge is also set by a submission every this many queued, so a writer stuck in a
# commit still shows its queue growing; setting it on every gift would cost each ~0.7 µs (measured,
# multiprocess mode).
_QUEUE_GAUGE_EVERY: Final = 256


class EngineStopped(Exception):
    """The engine is not running: nothing was submitted."""


class LedgerUnavailable(Exception):
    """The database refused the batch: nothing in it was acknowledged, retrying is safe."""


@dataclass(slots=True)
class EngineStats:
    batches: int = 0
    transfers: int = 0
    submissions: int = 0
    largest_batch_transfers: int = 0
    failed_batches: int = 0
    expired_pending: int = 0


def now_us() -> int:
    return time.time_ns() // 1000


def expiry_void_id(pending_id: str) -> str:
    """The id of the void that expiry records: the same in every process, so it happens once."""
    return "expire:" + hashlib.sha256(pending_id.encode()).hexdigest()[:40]


_Item = tuple[Sequence[Transfer], Annex | None, "asyncio.Future[list[Outcome]]"]


class PostingEngine:
    def __init__(
        self,
        store: BatchStore,
        *,
        batch_max_transfers: int = 8192,
        queue_max_submissions: int = 100_000,
        linger_ms: float = 0.0,
        expiry_interval_s: float = 1.0,
        clock_us: Callable[[], int] = now_us,
    ) -> None:
        assert batch_max_transfers >= 1
        assert queue_max_submissions >= 1
        assert 0 <= linger_ms <= 5
        self._store = store
        # A pipelined store (a writer process) gets the next batch while the previous one
        # commits: the child then never waits for the event loop between two batches (it did
        # ~15% of the time). Two in flight are enough for that; more would only queue there.
        self._pipelined = store if isinstance(store, PipelinedStore) else None
        self._in_flight_max = 2 if self._pipelined is not None else 1
        self._batch_max = batch_max_transfers
        self._queue_max = queue_max_submissions
        self._linger_s = linger_ms / 1000
        self._clock_us = clock_us
        # A deque with explicit bounds instead of asyncio.Queue: the writer takes a whole
        # batch at a time, and per-item Queue bookkeeping was a visible share of a gift's cost.
        self._queue: deque[_Item] = deque()
        self._writer_idle = False
        self._wakeup = asyncio.Event()  # set when the idle writer has work
        self._room = asyncio.Event()  # set when a full queue drained below its bound
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-writer")
        self._writer: asyncio.Task[None] | None = None
        # A failed sweep (the database away) is tried again, backing off; its voids are
        # idempotent, so two processes sweeping at once void once.
        self._expiry = PeriodicTask("ledger-expiry", self._expire, Schedule(expiry_interval_s))
        self._accepting = False
        self._stopping = False
        self.stats = EngineStats()

    async def __aenter__(self) -> PostingEngine:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def max_submission_transfers(self) -> int:
        """The most transfers one ``submit`` may carry: they must fit in one batch."""
        return self._batch_max

    @property
    def queued_submissions(self) -> int:
        return len(self._queue)

    @property
    def writer_alive(self) -> bool:
        """Accepting submissions, and the task that commits them is running."""
        return self._accepting and self._writer is not None and not self._writer.done()

    async def start(self) -> None:
        assert self._writer is None, "start() once"
        self._accepting = True
        self._writer = asyncio.create_task(self._write_loop(), name="ledger-writer")
        metrics.LEDGER_WRITER_DOWN.set(0)
        self._expiry.start()

    async def stop(self) -> None:
        """Stop accepting, commit everything already queued, then release the database."""
        if not self._accepting:
            return
        self._accepting = False
        await self._expiry.stop()
        self._stopping = True
        self._wakeup.set()
        self._room.set()  # submitters waiting for room give up with EngineStopped
        if self._writer is not None:
            await self._writer
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._store.close)
        self._executor.shutdown(wait=True)

    async def submit(
        self, transfers: Sequence[Transfer], annex: Annex | None = None
    ) -> list[Outcome]:
        """Post ``transfers`` (linked chains succeed or fail whole); one outcome per transfer.

        ``annex``: a row written in the same transaction if every transfer is newly committed
        (``ledger.annex``); the submission is then all new or all replayed, never part.
        """
        if not self._accepting:
            raise EngineStopped("the posting engine is not running")
        if not 0 < len(transfers) <= self._batch_max:
            raise ValueError(f"a submission holds 1..{self._batch_max} transfers")
        if annex is not None:
            check_annex(annex)
        while len(self._queue) >= self._queue_max:  # backpressure: wait for room, never grow
            self._room.clear()
            await self._room.wait()
            if not self._accepting:
                raise EngineStopped("the posting engine stopped")
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        self._queue.append((transfers, annex, future))
        if not len(self._queue) % _QUEUE_GAUGE_EVERY:  # a stalled writer's queue still shows
            metrics.LEDGER_QUEUE.set(len(self._queue))
        if self._writer_idle:
            self._writer_idle = False
            self._wakeup.set()
        return await future

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        in_flight: deque[asyncio.Task[None]] = deque()  # oldest first: they finish in order
        try:
            while True:
                while in_flight and (len(in_flight) >= self._in_flight_max or in_flight[0].done()):
                    await in_flight.popleft()
                if not queue:
                    if self._stopping:
                        return
                    self._writer_idle = True
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                if self._linger_s and len(queue) < self._batch_max:
                    await asyncio.sleep(self._linger_s)
                batch: list[_Item] = []
                size = 0
                while queue and size + len(queue[0][0]) <= self._batch_max:
                    item = queue.popleft()
                    batch.append(item)
                    size += len(item[0])
                if len(queue) < self._queue_max:
                    self._room.set()
                metrics.LEDGER_QUEUE.set(len(queue))  # once a batch: off each gift's path
                if self._in_flight_max == 1:
                    await self._commit(loop, batch, size)
                else:
                    in_flight.append(asyncio.create_task(self._commit(loop, batch, size)))
        finally:
            for task in in_flight:  # _commit never raises: it fails its futures instead
                await task
            metrics.LEDGER_WRITER_DOWN.set(1)  # stopped, or died: either way nothing commits

    async def _commit(self, loop: asyncio.AbstractEventLoop, batch: list[_Item], size: int) -> None:
        requests = [item[0] for item in batch]
        annexed = [item[1] for item in batch]
        # None when no submission carries one: nothing to send to a writer process.
        annexes = annexed if any(annexed) else None
        started_s = time.perf_counter()
        try:
            if self._pipelined is not None:
                committed = await loop.run_in_executor(
                    self._executor,
                    self._pipelined.submit_batch,
                    requests,
                    self._clock_us(),
                    annexes,
                )
                results = await asyncio.wrap_future(committed)
            else:
                results = await loop.run_in_executor(
                    self._executor, self._store.apply_batch, requests, self._clock_us(), annexes
                )
        except Exception as exc:
            self.stats.failed_batches += 1
            metrics.LEDGER_FAILED_BATCHES.inc()
            log.exception("ledger batch of %d submissions failed", len(batch))
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(LedgerUnavailable(str(exc)))
            return
        metrics.LEDGER_COMMIT.observe(time.perf_counter() - started_s)
        metrics.LEDGER_BATCH_TRANSFERS.observe(size)
        stats = self.stats
        stats.batches += 1
        stats.submissions += len(batch)
        stats.transfers += size
        stats.largest_batch_transfers = max(stats.largest_batch_transfers, size)
        for (_, _, future), outcome in zip(batch, results, strict=True):
            if not future.done():  # a caller that gave up still had its transfers committed
                future.set_result(outcome)

    async def _expire(self) -> None:
        """Void the pending transfers past their timeout (a bounded number per run)."""
        expired = await asyncio.get_running_loop().run_in_executor(
            self._executor, self._store.expired_pending, self._clock_us(), EXPIRY_SWEEP_LIMIT
        )
        if not expired:
            return
        # One submission per void, each with what else it changes (a payout's row): written
        # in the void's transaction, by whichever process wins it. They are queued in this
        # turn of the loop, so they still share a batch.
        try:
            results = await asyncio.gather(
                *(
                    self.submit(
                        [
                            Transfer(
                                expiry_void_id(pending_id),
                                0,
                                0,
                                0,
                                TransferCode(code),
                                kind=TransferKind.VOID_PENDING,
                                pending_id=pending_id,
                            )
                        ],
                        annex=expiry_annex(pending_id, code),
                    )
                    for pending_id, code in expired
                )
            )
        except EngineStopped:  # stopping: the next start voids them
            return
        self.stats.expired_pending += sum(r[0] is Outcome.OK for r in results)
        for (pending_id, _), (outcome, *_) in zip(expired, results, strict=True):
            # OK: this process's void won (another process's writes the line).
            if outcome is Outcome.OK and pending_id.startswith(PAYOUT_PENDING_PREFIX):
                payout_id = pending_id.removeprefix(PAYOUT_PENDING_PREFIX)
                audit(
                    "audit.payout_expired",
                    payout_id=payout_id,
                    transfer_id=expiry_void_id(pending_id),
                )
                # The decision the void recorded with it (ledger/annex.py), as every decision
                # on a payout is audited (economy/payout_decisions.py).
                audit(
                    "audit.payout_decided",
                    payout_id=payout_id,
                    reviewer_id=None,
                    **dict(PAYOUT_EXPIRED_DECISION.constants),
                )
