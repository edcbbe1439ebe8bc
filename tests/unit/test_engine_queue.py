"""The posting engine's queue is bounded, results wait for the commit, stop drains."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Sequence

import pytest

from giftwave.ledger.annex import Annex
from giftwave.ledger.engine import EngineStopped, LedgerUnavailable, PostingEngine
from giftwave.ledger.model import Outcome, Transfer, TransferCode


class GatedStore:
    """Commits only when the test opens the gate; records what each batch held."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.batches: list[int] = []
        self.fail = False

    def apply_batch(
        self,
        requests: Sequence[Sequence[Transfer]],
        now_us: int,
        annexes: Sequence[Annex | None] | None = None,
    ) -> list[list[Outcome]]:
        assert self.gate.wait(timeout=10), "test never opened the gate"
        if self.fail:
            raise RuntimeError("database went away")
        self.batches.append(len(requests))
        return [[Outcome.OK] * len(r) for r in requests]

    def expired_pending(self, now_us: int, limit: int) -> list[tuple[str, str]]:
        return []

    def close(self) -> None:
        self.gate.set()


def _gift(n: int) -> list[Transfer]:
    return [Transfer(f"t{n}", 1, 2, 1, TransferCode.GIFT)]


async def _until(predicate: Callable[[], bool], limit_s: float = 5.0) -> None:
    for _ in range(int(limit_s / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


async def test_queue_is_bounded_and_results_wait_for_the_commit() -> None:
    store = GatedStore()
    engine = PostingEngine(store, queue_max_submissions=2)
    await engine.start()
    first = asyncio.create_task(engine.submit(_gift(0)))
    await _until(lambda: engine.queued_submissions == 0)  # the writer holds it, uncommitted
    queued = [asyncio.create_task(engine.submit(_gift(n))) for n in (1, 2, 3)]
    await asyncio.sleep(0.1)
    assert engine.queued_submissions == 2  # the third caller waits for room, never grows it
    assert not first.done()  # no result before the commit
    store.gate.set()
    assert await first == [Outcome.OK]
    assert [await q for q in queued] == [[Outcome.OK]] * 3
    await engine.stop()
    assert sum(store.batches) == 4


async def test_a_failed_commit_acknowledges_nothing_and_stop_refuses_new_work() -> None:
    store = GatedStore()
    store.fail = True
    store.gate.set()
    engine = PostingEngine(store)
    await engine.start()
    with pytest.raises(LedgerUnavailable):
        await engine.submit(_gift(1))
    assert engine.stats.failed_batches == 1
    await engine.stop()
    with pytest.raises(EngineStopped):
        await engine.submit(_gift(2))


async def test_a_submission_larger_than_a_batch_is_refused() -> None:
    store = GatedStore()
    store.gate.set()
    engine = PostingEngine(store, batch_max_transfers=2)
    async with engine:
        with pytest.raises(ValueError, match=re.escape("1..2 transfers")):
            await engine.submit(_gift(1) + _gift(2) + _gift(3))
