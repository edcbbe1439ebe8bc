"""What observers want queued, written in one transaction per batch (one commit for many
gifts, as the ledger does): a gift's deliveries and its combo, a goal reached, a reversal.

A gift awaits ``write`` before it is acknowledged, so an acknowledged gift's deliveries are in
the outbox. ``write`` never raises: the gift is committed whatever happens here, and a webhook
that could not be queued (the database refused three times, the queue is full) is logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from giftwave import metrics
from giftwave.economy.gifting import GiftSent
from giftwave.economy.paid_messages import PaidMessageSent
from giftwave.economy.reversals import GiftReversed
from giftwave.live.goals import find_goal
from giftwave.live.streams import find_stream
from giftwave.webhooks.combos import GRACE_US, single_combo_end, track_gift
from giftwave.webhooks.endpoints import Endpoint, endpoints_of
from giftwave.webhooks.events import (
    EventType,
    gift_event,
    gift_reversed_event,
    goal_reached_event,
    paid_message_event,
)
from giftwave.webhooks.outbox import PendingGauge, enqueue

log = logging.getLogger(__name__)

BATCH_MAX_OPS: Final = 500
QUEUE_MAX_OPS: Final = 20_000
WRITE_TRIES: Final = 3  # a deadlock or a busy database: the whole batch again, a bit later
RETRY_PAUSE_S: Final = 0.05
STOP_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class GiftCommitted:
    sent: GiftSent
    sender_handle: str
    comboable: bool
    at_us: int
    endpoints: tuple[Endpoint, ...]  # the creator's, as this process knows them


@dataclass(frozen=True, slots=True)
class GoalReached:
    goal_id: int
    progress: int | None
    at_us: int


@dataclass(frozen=True, slots=True)
class ReversalCommitted:
    done: GiftReversed
    endpoints: tuple[Endpoint, ...]  # the creator's that want it, as this process knows them


@dataclass(frozen=True, slots=True)
class PaidMessageCommitted:
    said: PaidMessageSent
    endpoints: tuple[Endpoint, ...]  # the creator's that want it, as this process knows them


Op = GiftCommitted | GoalReached | ReversalCommitted | PaidMessageCommitted
# Called after each batch with the earliest time a combo it grew can close, if any.
Written = Callable[[int | None], None]


class OutboxWriter:
    def __init__(
        self, db: Engine, gauge: PendingGauge, *, combo_quiet_us: int, on_written: Written
    ) -> None:
        self._db = db
        self._gauge = gauge
        self._quiet_us = combo_quiet_us
        self._on_written = on_written
        self._waiting: list[tuple[Op, asyncio.Future[None] | None]] = []
        self._wakeup = asyncio.Event()
        self._stopping = False
        # One batch at a time, on a thread of its own (not the loop's shared default executor).
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="webhook-writer")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="webhook-outbox-writer")

    async def stop(self) -> None:
        """Write what is queued (bounded in time), then stop."""
        self._stopping = True
        self._wakeup.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), STOP_TIMEOUT_S)
        except TimeoutError:
            log.error("webhook writer: %d events not queued at shutdown", len(self._waiting))
            self._task.cancel()
        for _, future in self._waiting:
            if future is not None and not future.done():
                future.set_result(None)
        # A batch cut off by the timeout finishes first: nothing writes after the engine closed.
        await asyncio.to_thread(self._executor.shutdown, True)

    async def write(self, op: Op) -> None:
        """Queue ``op`` and wait until it is committed (or given up on)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._offer(op, future):
            await future

    def post(self, op: Op) -> None:
        """Queue ``op`` without waiting (from the room's tick, which must not wait)."""
        self._offer(op, None)

    def _offer(self, op: Op, future: asyncio.Future[None] | None) -> bool:
        if self._task is None or self._task.done() or len(self._waiting) >= QUEUE_MAX_OPS:
            log.error("webhook writer full or stopped: an event is not queued (%r)", op)
            metrics.WEBHOOK_DROPPED.inc()
            return False
        self._waiting.append((op, future))
        self._wakeup.set()
        return True

    async def _loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._waiting:
                batch = self._waiting[:BATCH_MAX_OPS]
                del self._waiting[:BATCH_MAX_OPS]
                combo_due: int | None = None
                try:
                    combo_due = await asyncio.get_running_loop().run_in_executor(
                        self._executor, self._write, [op for op, _ in batch]
                    )
                except Exception:
                    log.exception("webhook writer: %d events could not be queued", len(batch))
                    metrics.BACKGROUND_LOST.labels("webhook-events").inc(len(batch))
                finally:  # whatever happened, no gift waits here forever
                    for _, future in batch:
                        if future is not None and not future.done():
                            future.set_result(None)
                self._on_written(combo_due)
            if self._stopping:
                return

    def _write(self, ops: list[Op]) -> int | None:
        for attempt in range(WRITE_TRIES):
            try:
                with self._db.begin() as conn:
                    return self._apply(conn, ops)
            except DBAPIError:
                if attempt == WRITE_TRIES - 1:
                    raise
                time.sleep(RETRY_PAUSE_S * (attempt + 1))
        raise AssertionError("unreachable")

    def _apply(self, conn: Connection, ops: list[Op]) -> int | None:
        combo_due: int | None = None
        for op in ops:
            if isinstance(op, GiftCommitted):
                due = self._gift(conn, op)
                if due is not None:
                    combo_due = due if combo_due is None else min(combo_due, due)
            elif isinstance(op, ReversalCommitted):
                # Its id names the reversal: a replay queues nothing new.
                enqueue(conn, gift_reversed_event(op.done), op.endpoints, self._gauge)
            elif isinstance(op, PaidMessageCommitted):
                # Its id names the gift's send: a retry queues nothing new.
                enqueue(conn, paid_message_event(op.said), op.endpoints, self._gauge)
            else:
                self._goal(conn, op)
        return combo_due

    def _gift(self, conn: Connection, op: GiftCommitted) -> int | None:
        to_gift = [x for x in op.endpoints if x.wants(EventType.GIFT)]
        to_combo = [x for x in op.endpoints if x.wants(EventType.COMBO_END)]
        if to_gift:
            enqueue(conn, gift_event(op.sent, op.sender_handle), to_gift, self._gauge)
        if not to_combo:
            return None
        if not op.comboable:
            event = single_combo_end(op.sent, op.sender_handle, op.at_us)
            enqueue(conn, event, to_combo, self._gauge)
            return None
        for ended in track_gift(
            conn, op.sent, op.sender_handle, at_us=op.at_us, quiet_us=self._quiet_us
        ):
            enqueue(conn, ended, to_combo, self._gauge)
        return op.at_us + self._quiet_us + GRACE_US

    def _goal(self, conn: Connection, op: GoalReached) -> None:
        goal = find_goal(conn, op.goal_id)
        stream = None if goal is None else find_stream(conn, goal.stream_id)
        if goal is None or stream is None:
            return
        wanting = [
            x for x in endpoints_of(conn, stream.creator_id) if x.wants(EventType.GOAL_REACHED)
        ]
        if wanting:
            event = goal_reached_event(goal, stream.creator_id, op.progress, op.at_us)
            enqueue(conn, event, wanting, self._gauge)
