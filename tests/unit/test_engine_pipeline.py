"""A pipelined store (a writer process) gets the next batch before the previous one committed.

At most two batches are in flight, handed over in arrival order; each caller's result still
waits for its own batch's commit, and a failed batch fails only its own callers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import pytest

from giftwave.ledger.annex import Annex
from giftwave.ledger.engine import LedgerUnavailable, PostingEngine
from giftwave.ledger.model import Outcome, Transfer, TransferCode
from giftwave.ledger.store import PipelinedStore


class HeldStore:
    """Takes batches at once; the test decides when (and whether) each one commits."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []  # transfer ids, in the order handed over
        self.commits: list[Future[list[list[Outcome]]]] = []

    def submit_batch(
        self,
        requests: Sequence[Sequence[Transfer]],
        now_us: int,
        annexes: Sequence[Annex | None] | None = None,
    ) -> Future[list[list[Outcome]]]:
        self.batches.append([t.id for r in requests for t in r])
        future: Future[list[list[Outcome]]] = Future()
        self.commits.append(future)
        return future

    def apply_batch(
        self,
        requests: Sequence[Sequence[Transfer]],
        now_us: int,
        annexes: Sequence[Annex | None] | None = None,
    ) -> list[list[Outcome]]:
        return self.submit_batch(requests, now_us).result()

    def expired_pending(self, now_us: int, limit: int) -> list[tuple[str, str]]:
        return []

    def close(self) -> None:
        pass

    def commit(self, index: int) -> None:
        n = len(self.batches[index])
        self.commits[index].set_result([[Outcome.OK]] * n)


def _gift(n: int) -> list[Transfer]:
    return [Transfer(f"t{n}", 1, 2, 1, TransferCode.GIFT)]


async def _settle() -> None:
    """Time for anything that would happen next (used before asserting it did not)."""
    for _ in range(20):
        await asyncio.sleep(0.005)


async def _until(predicate: Callable[[], bool], limit_s: float = 10.0) -> None:
    for _ in range(int(limit_s / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached in time")


async def test_two_batches_in_flight_in_order_results_after_each_commit() -> None:
    store = HeldStore()
    assert isinstance(store, PipelinedStore)
    engine = PostingEngine(store, batch_max_transfers=2, expiry_interval_s=3600)
    await engine.start()
    calls = [asyncio.create_task(engine.submit(_gift(n))) for n in range(6)]
    await _until(lambda: len(store.batches) == 2)
    await _settle()
    assert store.batches == [["t0", "t1"], ["t2", "t3"]]  # two handed over, the rest wait
    assert not any(c.done() for c in calls)
    store.commit(0)
    await _until(lambda: calls[0].done() and len(store.batches) == 3)
    assert [c.done() for c in calls] == [True, True, False, False, False, False]
    assert store.batches[2] == ["t4", "t5"]  # the next one went as soon as a slot was free
    store.commit(1)
    store.commit(2)
    assert [await c for c in calls] == [[Outcome.OK]] * 6
    await engine.stop()


async def test_a_failed_batch_fails_only_its_callers() -> None:
    store = HeldStore()
    engine = PostingEngine(store, batch_max_transfers=1, expiry_interval_s=3600)
    await engine.start()
    first = asyncio.create_task(engine.submit(_gift(1)))
    second = asyncio.create_task(engine.submit(_gift(2)))
    await _until(lambda: len(store.commits) == 2)
    store.commits[0].set_exception(RuntimeError("writer died"))
    store.commit(1)
    with pytest.raises(LedgerUnavailable):
        await first
    assert await second == [Outcome.OK]
    assert engine.stats.failed_batches == 1
    await engine.stop()


async def test_stop_waits_for_every_batch_in_flight() -> None:
    store = HeldStore()
    engine = PostingEngine(store, batch_max_transfers=1, expiry_interval_s=3600)
    await engine.start()
    calls = [asyncio.create_task(engine.submit(_gift(n))) for n in range(2)]
    await _until(lambda: len(store.commits) == 2)
    stopping = asyncio.create_task(engine.stop())
    await _settle()
    assert not stopping.done()
    store.commit(0)
    store.commit(1)
    await stopping
    assert [c.result() for c in calls] == [[Outcome.OK]] * 2
