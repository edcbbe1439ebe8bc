"""Background work that runs again and again: one policy, on an asyncio task or on a thread.

    sweeps = PeriodicTask("battle-referee", referee.sweep, Schedule(interval_s=0.5))
    sweeps.start()
    ...
    await sweeps.stop()  # ends the sleep, or lets the run under way finish (briefly)

    checkpoints = PeriodicThread("ledger-checkpoint", checkpoint, Schedule(interval_s=0.5))
    checkpoints.start()  # for work that blocks (a database driver on its own connection)
    checkpoints.stop()

What both share (``Schedule`` and ``_Runs``, one copy):

- Interval and jitter: the next run starts ``interval_s`` after the last one ended, give or
  take ``jitter`` of it (a fraction, drawn anew each time), so the loops of N nodes started
  together do not hit the database in lockstep.
- Errors: a run that raises is logged with its traceback once (the first of a streak, or a
  failure of another type than the one before); later failures of the streak are one line
  each. The next run waits ``interval_s``, then twice that, four times… up to
  ``backoff_max_s``; the first run that succeeds logs the recovery and the interval is back.
  A database that went away is therefore not hammered, and the log says so once, not every
  second. An error never ends the loop; ``asyncio.CancelledError`` (not an ``Exception``)
  does, and is not counted as one.
- Metrics, per loop name (a fixed set, ``metrics.LOOPS``): runs by outcome (``ok``, ``error``)
  and each run's duration (``metrics.LOOP_RUNS``, ``metrics.LOOP_RUN_DURATION``).
- Stopping: ``stop`` ends a sleep at once; a run under way is left to finish for up to
  ``stop_grace_s``, then (a task) cancelled at its next await, or (a thread, which cannot be
  cancelled) left behind as a daemon. Either way ``stop`` returns within the grace.

A task's run may return how long to sleep before the next (``float``: a due time it knows,
used as is, without jitter), or ``None`` for the schedule's interval; anything else (a count
returned by mistake) is a failed run, logged and backed off, never a sleep of that many
seconds. ``wake()`` ends a healthy sleep early (new work arrived). A sleep of backoff is not
ended by ``wake()``: work arriving while the database is away must not turn the backoff back
into a hot loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from giftwave import metrics

log = logging.getLogger(__name__)

JITTER: Final = 0.1  # ±10% of the interval
BACKOFF_MAX_S: Final = 30.0
STOP_GRACE_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a loop runs next: its interval with jitter, and its backoff after failures."""

    interval_s: float
    jitter: float = JITTER  # a fraction of the delay, either way
    backoff_max_s: float = BACKOFF_MAX_S  # a longer interval is its own cap

    def __post_init__(self) -> None:
        assert self.interval_s > 0
        assert 0 <= self.jitter < 1
        assert self.backoff_max_s > 0

    def delay_s(self, failures: int, draw: float) -> float:
        """The sleep before the next run after ``failures`` failed runs in a row (0: the last
        run succeeded); ``draw`` is uniform in [0, 1) and places it within the jitter."""
        assert failures >= 0
        assert 0 <= draw <= 1
        spread = 1 + self.jitter * (2 * draw - 1)
        if failures == 0:
            return self.interval_s * spread
        # 2 ** 60 already exceeds any cap: bounded, however long the streak.
        backoff_s = self.interval_s * float(2 ** min(failures - 1, 60))
        return min(max(self.backoff_max_s, self.interval_s), backoff_s * spread)


class _Runs:
    """One loop's record of its runs: the metrics, the log and the failures in a row. The same
    for a task and a thread; it is only touched by the loop itself."""

    def __init__(self, name: str, schedule: Schedule, draw: Callable[[], float]) -> None:
        assert name in metrics.LOOPS, f"add {name!r} to metrics.LOOPS (a bounded label)"
        self.name = name
        self.schedule = schedule
        self.failures = 0  # in a row
        self._draw = draw
        self._last_error: type[BaseException] | None = None
        self._ok = metrics.LOOP_RUNS.labels(name, "ok")
        self._error = metrics.LOOP_RUNS.labels(name, "error")
        self._duration = metrics.LOOP_RUN_DURATION.labels(name)

    def succeeded(self, duration_s: float) -> float:
        """Count a run that returned; the sleep before the next."""
        self._ok.inc()
        self._duration.observe(duration_s)
        if self.failures:
            log.info("%s: recovered after %d failed runs", self.name, self.failures)
        self.failures = 0
        self._last_error = None
        return self.delay_s()

    def failed(self, exc: Exception, duration_s: float) -> float:
        """Count and log a run that raised; the sleep (backoff) before the next."""
        self._error.inc()
        self._duration.observe(duration_s)
        self.failures += 1
        retry_s = self.delay_s()
        if type(exc) is not self._last_error:  # the first of a streak, or a new kind
            log.error("%s: run failed; trying again in %.3g s", self.name, retry_s, exc_info=exc)
        else:
            log.warning(
                "%s: run failed again (%d in a row): %s: %s; trying again in %.3g s",
                self.name,
                self.failures,
                type(exc).__name__,
                exc,
                retry_s,
            )
        self._last_error = type(exc)
        return retry_s

    def delay_s(self) -> float:
        return self.schedule.delay_s(self.failures, self._draw())


class PeriodicTask:
    """Runs ``run()`` on an asyncio task, forever, by a ``Schedule``."""

    def __init__(
        self,
        name: str,
        run: Callable[[], Awaitable[float | None]],
        schedule: Schedule,
        *,
        run_at_start: bool = False,
        stop_grace_s: float = STOP_GRACE_S,
        draw: Callable[[], float] = random.random,
    ) -> None:
        assert stop_grace_s >= 0
        self._runs = _Runs(name, schedule, draw)
        self._run = run
        self._run_at_start = run_at_start
        self._stop_grace_s = stop_grace_s
        self._poke = asyncio.Event()  # wake() or stop(): ends a healthy sleep
        self._stopping = asyncio.Event()  # stop(): ends any sleep
        self._task: asyncio.Task[None] | None = None

    @property
    def failures(self) -> int:
        """Runs failed in a row (0: the last run succeeded, or none ran yet)."""
        return self._runs.failures

    def start(self) -> None:
        """Start the loop (again, after a ``stop``)."""
        assert self._task is None, "start() once"
        self._stopping.clear()
        self._poke.clear()
        self._task = asyncio.create_task(self._loop(), name=self._runs.name)

    def wake(self) -> None:
        """Run now if the loop is sleeping its interval (not if it is backing off)."""
        self._poke.set()

    async def stop(self) -> None:
        """End the sleep, or wait up to the grace for the run under way, then cancel it."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        self._poke.set()
        # asyncio.wait, not wait_for: it neither cancels the task nor raises its cancellation.
        done, _ = await asyncio.wait({task}, timeout=self._stop_grace_s)
        if not done:
            task.cancel()
            await asyncio.wait({task})
        if not task.cancelled() and (exc := task.exception()) is not None:
            raise exc  # not an Exception (those a run raises are caught): let it through

    async def _loop(self) -> None:
        runs = self._runs
        delay_s = 0.0 if self._run_at_start else runs.delay_s()
        while True:
            if delay_s > 0:
                await self._sleep(delay_s, wakeable=runs.failures == 0)
            else:  # due again at once: still let the rest of the loop have its turn
                await asyncio.sleep(0)
            if self._stopping.is_set():
                return
            self._poke.clear()  # work that arrives from now on is seen by this run or the next
            started_s = time.perf_counter()
            try:
                asked_s = _due_time(runs.name, await self._run())
            except Exception as exc:  # not CancelledError: that ends the loop
                delay_s = runs.failed(exc, time.perf_counter() - started_s)
            else:
                delay_s = runs.succeeded(time.perf_counter() - started_s)
                if asked_s is not None:
                    delay_s = asked_s

    async def _sleep(self, delay_s: float, *, wakeable: bool) -> None:
        event = self._poke if wakeable else self._stopping
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay_s):
                await event.wait()


def _due_time(name: str, asked: object) -> float | None:
    """What a task's run returned, checked: ``None`` or a due time in seconds (a ``float``).

    A run that returns a count by mistake (an ``int`` is a ``float`` to mypy) would otherwise
    be read as "due again in that many seconds": a count of 0 made an idle loop spin a core.
    """
    if asked is None or type(asked) is float:
        return asked
    raise TypeError(f"{name}: a run returned {asked!r}; a due time is a float of seconds or None")


class PeriodicThread:
    """Runs ``run()`` on a daemon thread of its own, forever, by a ``Schedule``: for work that
    blocks (a database connection the thread owns) and must not hold a worker of the loop."""

    def __init__(
        self,
        name: str,
        run: Callable[[], object],  # what it returns is not used
        schedule: Schedule,
        *,
        stop_grace_s: float = STOP_GRACE_S,
        draw: Callable[[], float] = random.random,
    ) -> None:
        assert stop_grace_s >= 0
        self._runs = _Runs(name, schedule, draw)
        self._run = run
        self._stop_grace_s = stop_grace_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def failures(self) -> int:
        """Runs failed in a row (0: the last run succeeded, or none ran yet)."""
        return self._runs.failures

    def start(self) -> None:
        assert self._thread is None, "start() once"
        self._thread = threading.Thread(target=self._loop, name=self._runs.name, daemon=True)
        self._thread.start()

    def stop(self) -> bool:
        """End the sleep, or wait up to the grace for the run under way; True when the thread
        has ended (False: a run still holds it, and it ends after that run)."""
        self._stopping.set()
        if self._thread is None:
            return True
        self._thread.join(timeout=self._stop_grace_s)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        runs = self._runs
        delay_s = runs.delay_s()
        while not self._stopping.wait(delay_s):
            started_s = time.perf_counter()
            try:
                self._run()
            except Exception as exc:
                delay_s = runs.failed(exc, time.perf_counter() - started_s)
            else:
                delay_s = runs.succeeded(time.perf_counter() - started_s)
