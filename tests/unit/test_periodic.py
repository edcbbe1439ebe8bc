"""The periodic loop helper: interval, jitter, backoff, metrics and stopping, on a task and on
a thread. Intervals are tens of milliseconds; timings are checked from below (a sleep never
ends early) and loosely from above (this machine is shared)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time

import pytest

from giftwave import metrics
from giftwave.periodic import PeriodicTask, PeriodicThread, Schedule

NAME = "clip-sweep"  # any name of metrics.LOOPS
INTERVAL_S = 0.04
EXACT = Schedule(interval_s=INTERVAL_S, jitter=0.0, backoff_max_s=1.0)
SLOW = Schedule(interval_s=60.0)
EARLY = 0.9  # timers may fire a hair early; a sleep of backoff is never 10% short


def _runs(outcome: str) -> float:
    value = metrics.registry().get_sample_value(
        "giftwave_loop_runs_total", {"loop": NAME, "outcome": outcome}
    )
    assert value is not None
    return value


def _durations() -> float:
    value = metrics.registry().get_sample_value(
        "giftwave_loop_run_duration_seconds_count", {"loop": NAME}
    )
    assert value is not None
    return value


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


# --- the schedule ---


def test_jitter_stays_within_its_fraction_of_the_interval() -> None:
    schedule = Schedule(interval_s=2.0, jitter=0.25)
    assert schedule.delay_s(0, 0.0) == pytest.approx(1.5)
    assert schedule.delay_s(0, 0.5) == pytest.approx(2.0)
    assert schedule.delay_s(0, 1.0) == pytest.approx(2.5)
    delays = [schedule.delay_s(0, i / 1000) for i in range(1000)]
    assert all(1.5 <= d <= 2.5 for d in delays)
    assert max(delays) - min(delays) > 0.9  # it does spread the nodes


def test_backoff_doubles_per_failure_up_to_the_cap() -> None:
    schedule = Schedule(interval_s=0.5, jitter=0.0, backoff_max_s=3.0)
    assert [schedule.delay_s(n, 0.5) for n in range(6)] == [0.5, 0.5, 1.0, 2.0, 3.0, 3.0]
    assert schedule.delay_s(10_000, 0.5) == 3.0  # a very long streak stays bounded


def test_the_cap_holds_with_jitter() -> None:
    schedule = Schedule(interval_s=1.0, jitter=0.5, backoff_max_s=4.0)
    assert schedule.delay_s(5, 1.0) == 4.0
    assert schedule.delay_s(2, 0.0) == pytest.approx(1.0)  # 2 s, half of it


def test_an_interval_longer_than_the_cap_is_its_own_cap() -> None:
    schedule = Schedule(interval_s=5.0, jitter=0.0, backoff_max_s=1.0)
    assert [schedule.delay_s(n, 0.5) for n in range(3)] == [5.0, 5.0, 5.0]


def test_a_loop_name_must_be_a_known_label() -> None:
    with pytest.raises(AssertionError, match=r"metrics\.LOOPS"):
        PeriodicThread("not-a-loop", lambda: None, EXACT)


# --- a task ---


async def test_a_task_runs_at_its_interval_and_counts_each_run() -> None:
    times: list[float] = []

    async def run() -> None:
        times.append(time.monotonic())

    ok_before, durations_before = _runs("ok"), _durations()
    started = time.monotonic()
    loop = PeriodicTask(NAME, run, EXACT)
    loop.start()
    await asyncio.sleep(INTERVAL_S * 6.5)
    await loop.stop()
    assert 3 <= len(times) <= 7
    assert times[0] - started >= INTERVAL_S * EARLY  # the first run waits an interval
    assert all(gap >= INTERVAL_S * EARLY for gap in _gaps(times))
    assert _runs("ok") - ok_before == len(times)
    assert _durations() - durations_before == len(times)


async def test_a_task_that_runs_at_start_runs_at_once() -> None:
    ran = asyncio.Event()

    async def run() -> None:
        ran.set()

    loop = PeriodicTask(NAME, run, SLOW, run_at_start=True)
    loop.start()
    await asyncio.wait_for(ran.wait(), 1.0)
    await loop.stop()


async def test_failures_back_off_longer_each_time_then_recover(
    caplog: pytest.LogCaptureFixture,
) -> None:
    times: list[float] = []
    done = asyncio.Event()

    async def run() -> None:
        times.append(time.monotonic())
        if len(times) <= 3:
            raise ConnectionError("the database is away")
        if len(times) == 6:
            done.set()

    errors_before, ok_before = _runs("error"), _runs("ok")
    loop = PeriodicTask(NAME, run, EXACT)
    with caplog.at_level(logging.INFO, logger="giftwave.periodic"):
        loop.start()
        await asyncio.wait_for(done.wait(), 5.0)
        await loop.stop()
    gaps = _gaps(times)
    # After failures 1, 2, 3: 1, 2 and 4 intervals; after the success, 1 again.
    assert gaps[0] >= 1 * INTERVAL_S * EARLY
    assert gaps[1] >= 2 * INTERVAL_S * EARLY
    assert gaps[2] >= 4 * INTERVAL_S * EARLY
    assert gaps[3] < gaps[2]
    assert gaps[4] < 4 * INTERVAL_S * EARLY
    assert _runs("error") - errors_before == 3
    assert _runs("ok") - ok_before >= 3
    assert loop.failures == 0
    # One traceback for the streak, one line for each later failure, and the recovery.
    failures = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(failures) == 3
    assert failures[0].exc_info is not None
    assert [r.exc_info for r in failures[1:]] == [None, None]
    assert "3 in a row" in failures[2].getMessage()
    assert any("recovered after 3" in r.getMessage() for r in caplog.records)


async def test_a_new_kind_of_failure_gets_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    errors = [ConnectionError("away"), ConnectionError("away"), ValueError("bad row")]
    done = asyncio.Event()

    async def run() -> None:
        if not errors:
            done.set()
            return
        raise errors.pop(0)

    loop = PeriodicTask(NAME, run, Schedule(interval_s=0.005, jitter=0.0))
    with caplog.at_level(logging.WARNING, logger="giftwave.periodic"):
        loop.start()
        await asyncio.wait_for(done.wait(), 5.0)
        await loop.stop()
    tracebacks = [r.exc_info[1] for r in caplog.records if r.exc_info]
    assert [type(exc) for exc in tracebacks] == [ConnectionError, ValueError]


async def test_stop_during_the_sleep_returns_at_once() -> None:
    runs = 0

    async def run() -> None:
        nonlocal runs
        runs += 1

    loop = PeriodicTask(NAME, run, SLOW, run_at_start=True)
    loop.start()
    await asyncio.sleep(0.05)  # ran once, sleeping now
    started = time.monotonic()
    await loop.stop()
    assert time.monotonic() - started < 0.5
    assert runs == 1


async def test_stop_during_a_backoff_returns_at_once() -> None:
    async def run() -> None:
        raise ConnectionError("away")

    loop = PeriodicTask(NAME, run, Schedule(interval_s=30.0, backoff_max_s=60.0), run_at_start=True)
    loop.start()
    await asyncio.sleep(0.05)
    assert loop.failures == 1
    started = time.monotonic()
    await loop.stop()
    assert time.monotonic() - started < 0.5


async def test_stop_during_a_run_lets_a_short_run_finish() -> None:
    running, finished = asyncio.Event(), asyncio.Event()

    async def run() -> None:
        running.set()
        await asyncio.sleep(0.1)
        finished.set()

    loop = PeriodicTask(NAME, run, SLOW, run_at_start=True, stop_grace_s=5.0)
    loop.start()
    await running.wait()
    started = time.monotonic()
    await loop.stop()
    assert finished.is_set()  # at a safe point: the run's end, not its middle
    assert time.monotonic() - started < 1.0  # and no next run after it


async def test_stop_cancels_a_run_past_the_grace_and_it_is_no_error() -> None:
    running = asyncio.Event()
    cancelled = False

    async def run() -> None:
        nonlocal cancelled
        running.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled = True
            raise

    errors_before = _runs("error")
    loop = PeriodicTask(NAME, run, SLOW, run_at_start=True, stop_grace_s=0.1)
    loop.start()
    await running.wait()
    started = time.monotonic()
    await loop.stop()
    assert time.monotonic() - started < 1.0
    assert cancelled
    assert _runs("error") == errors_before


async def test_a_run_that_is_cancelled_ends_the_loop_uncounted() -> None:
    calls = 0

    async def run() -> None:
        nonlocal calls
        calls += 1
        raise asyncio.CancelledError

    errors_before = _runs("error")
    loop = PeriodicTask(NAME, run, Schedule(interval_s=0.01), run_at_start=True)
    loop.start()
    await asyncio.sleep(0.1)
    assert calls == 1  # CancelledError is not an error to retry
    assert _runs("error") == errors_before
    await loop.stop()


async def test_wake_ends_a_healthy_sleep_but_not_a_backoff() -> None:
    times: list[float] = []
    fail = False

    async def run() -> None:
        times.append(time.monotonic())
        if fail:
            raise ConnectionError("away")

    loop = PeriodicTask(NAME, run, SLOW)
    loop.start()
    await asyncio.sleep(0.02)
    loop.wake()
    await asyncio.sleep(0.05)
    assert len(times) == 1  # woken out of a 60 s interval
    fail = True
    loop.wake()
    await asyncio.sleep(0.05)
    assert len(times) == 2
    assert loop.failures == 1
    loop.wake()  # backing off now: a wake must not make it a hot loop
    await asyncio.sleep(0.1)
    assert len(times) == 2
    await loop.stop()


async def test_a_run_may_say_when_it_is_due_again() -> None:
    times: list[float] = []

    async def run() -> float:
        times.append(time.monotonic())
        return 0.01  # a known due time, sooner than the interval

    loop = PeriodicTask(NAME, run, SLOW, run_at_start=True)
    loop.start()
    await asyncio.sleep(0.2)
    await loop.stop()
    assert len(times) >= 3


async def test_a_run_that_returns_a_count_is_a_failure_not_a_sleep_of_zero(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A count of 0 read as "due again at once" made an idle loop spin a whole core."""
    runs = 0

    async def run() -> int:
        nonlocal runs
        runs += 1
        return 0  # rows written, returned by mistake

    errors_before = _runs("error")
    loop = PeriodicTask(NAME, run, EXACT, run_at_start=True)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="giftwave.periodic"):
        loop.start()
        await asyncio.sleep(INTERVAL_S * 4)
        await loop.stop()
    assert 1 <= runs <= 4  # backing off: at once, then 1, 2 intervals; not thousands
    assert _runs("error") - errors_before == runs
    assert "a run returned 0" in caplog.text


# --- a thread ---


def test_a_thread_runs_at_its_interval_and_backs_off_the_same_way() -> None:
    times: list[float] = []
    done = threading.Event()

    def run() -> None:
        times.append(time.monotonic())
        if len(times) in (2, 3, 4):
            raise OSError("disk away")
        if len(times) == 6:
            done.set()

    errors_before, ok_before = _runs("error"), _runs("ok")
    loop = PeriodicThread(NAME, run, EXACT)
    loop.start()
    assert done.wait(5.0)
    assert loop.stop()
    gaps = _gaps(times)
    assert gaps[0] >= INTERVAL_S * EARLY
    assert gaps[1] >= 1 * INTERVAL_S * EARLY
    assert gaps[2] >= 2 * INTERVAL_S * EARLY
    assert gaps[3] >= 4 * INTERVAL_S * EARLY
    assert gaps[4] < gaps[3]
    assert _runs("error") - errors_before == 3
    assert _runs("ok") - ok_before >= 3


def test_a_thread_stops_at_once_in_its_sleep() -> None:
    loop = PeriodicThread(NAME, lambda: None, SLOW)
    loop.start()
    time.sleep(0.02)
    started = time.monotonic()
    assert loop.stop()
    assert time.monotonic() - started < 0.5


def test_a_thread_stop_waits_for_the_run_only_up_to_the_grace() -> None:
    running, release = threading.Event(), threading.Event()
    runs = 0

    def run() -> None:
        nonlocal runs
        runs += 1
        running.set()
        release.wait(10)

    loop = PeriodicThread(NAME, run, Schedule(interval_s=0.01), stop_grace_s=0.1)
    loop.start()
    assert running.wait(5.0)
    started = time.monotonic()
    assert not loop.stop()  # the run still holds the thread
    assert time.monotonic() - started < 1.0
    release.set()
    time.sleep(0.1)
    assert runs == 1  # stopped: the run that was under way was the last


async def test_a_stopped_task_starts_again() -> None:
    runs = 0

    async def run() -> None:
        nonlocal runs
        runs += 1

    loop = PeriodicTask(NAME, run, SLOW, run_at_start=True)
    loop.start()
    await asyncio.sleep(0.02)
    await loop.stop()
    loop.start()
    await asyncio.sleep(0.02)
    await loop.stop()
    assert runs == 2
