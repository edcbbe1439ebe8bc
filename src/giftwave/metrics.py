"""Every Prometheus metric giftwave exports, defined in one place.

    from giftwave import metrics
    metrics.GIFTS_COMMITTED.inc()                  # no labels: the child is the metric itself
    metrics.GIFTS_REFUSED.labels(code).inc()       # a bounded label: a stable error code

Names follow Prometheus' conventions: ``giftwave_`` first, the unit last (``_seconds``,
``_transfers``), counters end in ``_total``. Labels only ever take values from a bounded set
(route templates, error codes, states, outcomes), never an id: one series per room or user
would grow without bound. Sockets per room are counted as rooms per size band instead.

Multiprocess: ``giftwave serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` to a fresh directory before
any worker starts, so every process (each uvicorn worker, the ledger writer process) writes its
values into memory-mapped files there and one scrape adds them up (``registry()``). Gauges say
how to add up processes (``multiprocess_mode``): ``livesum`` for what each live process holds
(sockets, queue depth), ``livemax`` for a figure every process reads from the shared database
(the webhook backlog). A worker that died is marked dead at the next scrape, so its live gauges
leave the sum.

Cost on the hot path: a counter's ``inc()`` is a few hundred nanoseconds (a lock and an mmap
write in multiprocess mode); children of labelled metrics that a hot path uses are bound once
here, never looked up per gift.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import Metric
from prometheus_client.registry import REGISTRY, Collector

MULTIPROC_DIR_VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

# The ``_created`` series double every counter's lines and no dashboard or alert reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Latency buckets in seconds: from a fast lane's sub-millisecond answer to a slow page.
_LATENCY_BUCKETS_S: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

# Where ``Histogram.observe`` would count an observation: index i is the first bucket whose
# bound holds it (``bisect_left(HTTP_BOUNDS_S, seconds)``), the last one +Inf.
HTTP_BOUNDS_S: Final = (*_LATENCY_BUCKETS_S, float("inf"))


def add_observations(histogram: Histogram, bucket_counts: Iterable[int], total: float) -> None:
    """Many observations of one histogram child at once: ``bucket_counts[i]`` of them in its
    bucket i, ``total`` their sum. One mmap write per bucket that moved instead of two per
    observation: the request observer counts locally and adds up here (api/request_observer.py).
    prometheus-client has no public call for it; tests/integration/test_packaging.py fails if
    the attributes used here are gone, and pyproject.toml bounds the version."""
    for value, count in zip(histogram._buckets, bucket_counts, strict=True):
        if count:
            value.inc(count)
    histogram._sum.inc(total)


# --- HTTP (the middleware observes these; ``route`` is the route's template, never a path) ---
HTTP_REQUESTS: Final = Counter(
    "giftwave_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ("route", "method", "status"),
)
HTTP_REQUEST_DURATION: Final = Histogram(
    "giftwave_http_request_duration_seconds",
    "Time from a request's arrival to its response's end, by route template.",
    ("route",),
    buckets=_LATENCY_BUCKETS_S,
)

# --- gifts ---
GIFTS_COMMITTED: Final = Counter(
    "giftwave_gifts_committed", "Gifts committed to the ledger (each acknowledged to its sender)."
)
GIFTS_REFUSED: Final = Counter(
    "giftwave_gifts_refused", "Gifts refused, by the refusal's stable error code.", ("code",)
)

# --- payouts ---
PAYOUT_TRANSFER_MISMATCHES: Final = Counter(
    "giftwave_payout_transfer_mismatches",
    "Payout provider transfer events whose amount or currency is not the payout's: recorded, "
    "not acted on, the payout flagged for an operator.",
)

# --- ledger ---
LEDGER_BATCH_TRANSFERS: Final = Histogram(
    "giftwave_ledger_batch_transfers",
    "Transfers per committed ledger batch.",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000),
)
LEDGER_COMMIT: Final = Histogram(
    "giftwave_ledger_commit_seconds",
    "Time to commit one ledger batch (plan, write, commit).",
    buckets=_LATENCY_BUCKETS_S,
)
LEDGER_FAILED_BATCHES: Final = Counter(
    "giftwave_ledger_failed_batches",
    "Ledger batches that could not be committed (their gifts were refused as unavailable).",
)
LEDGER_QUEUE: Final = Gauge(
    "giftwave_ledger_queue_submissions",
    "Submissions waiting for the ledger writer.",
    multiprocess_mode="livesum",
)
RISK_LAG: Final = Gauge(
    "giftwave_risk_lag_seconds",
    "How long ago the newest transfer the risk rules evaluated was committed (this node's "
    "last chunk; 0 when up to date).",
)
RISK_FLAGS_RAISED: Final = Counter(
    "giftwave_risk_flags_raised",
    "Risk flags the rules engine raised on this node (each pattern once, on any node).",
)
LEDGER_WRITER_DOWN: Final = Gauge(
    "giftwave_ledger_writer_down",
    "1 while a serving process's ledger writer has stopped or failed, else 0 (the largest of "
    "all processes: one dead writer shows). Down, not up: processes without a writer (the "
    "one that starts workers) read 0 and must not look like a dead one.",
    multiprocess_mode="livemax",
)
LEDGER_WRITER_RESTARTS: Final = Counter(
    "giftwave_ledger_writer_restarts",
    "Ledger writer processes started again after one ended unexpectedly.",
)
FOLLOWERS_RESTARTS: Final = Counter(
    "giftwave_followers_restarts",
    "Ledger followers processes (followers.py) started again after one ended unexpectedly.",
)

# --- live rooms ---
LIVE_SOCKETS: Final = Gauge(
    "giftwave_live_sockets", "Open live WebSocket viewers.", multiprocess_mode="livesum"
)
LIVE_ROOMS: Final = Gauge(
    "giftwave_live_rooms",
    "Rooms with at least one open socket, by size band (sockets in the room on one node).",
    ("sockets",),
    multiprocess_mode="livesum",
)
LIVE_FRAMES_SENT: Final = Counter("giftwave_live_frames_sent", "Frames written to live sockets.")
LIVE_TICKS_LATE: Final = Counter(
    "giftwave_live_ticks_late", "Room ticks that ran later than their period."
)
LIVE_TICKS_MISSED: Final = Counter(
    "giftwave_live_ticks_missed", "Room ticks skipped because the loop was too far behind."
)
LIVE_SLOW_VIEWERS: Final = Counter(
    "giftwave_live_slow_viewers",
    "Viewers too slow to keep up: sent a snapshot instead of the events, or closed.",
    ("action",),
)
LIVE_SLOW_SNAPSHOTTED: Final = LIVE_SLOW_VIEWERS.labels("snapshotted")
LIVE_SLOW_CLOSED: Final = LIVE_SLOW_VIEWERS.labels("closed")

# Room size bands: a bounded label instead of one series per room id.
ROOM_SIZE_BANDS: Final = ("1", "2-9", "10-99", "100-999", "1000+")
_ROOM_BAND_CHILDREN: Final = tuple(LIVE_ROOMS.labels(band) for band in ROOM_SIZE_BANDS)


def _room_band(sockets: int) -> int:
    """The index in ``ROOM_SIZE_BANDS`` of a room with this many sockets (at least 1)."""
    if sockets == 1:
        return 0
    if sockets < 10:
        return 1
    if sockets < 100:
        return 2
    if sockets < 1000:
        return 3
    return 4


def room_sockets_changed(before: int, after: int) -> None:
    """A room went from ``before`` to ``after`` open sockets on this node: move it between
    size bands, and count the sockets. O(1), so it can run on every connect and close."""
    LIVE_SOCKETS.inc(after - before)
    if before > 0:
        _ROOM_BAND_CHILDREN[_room_band(before)].dec()
    if after > 0:
        _ROOM_BAND_CHILDREN[_room_band(after)].inc()


# --- broker ---
BROKER_PUBLISH_FAILURES: Final = Counter(
    "giftwave_broker_publish_failures", "Events the broker could not publish (tried again)."
)
BROKER_QUEUED_EVENTS: Final = Gauge(
    "giftwave_broker_queued_events",
    "Events waiting to be published to the broker.",
    multiprocess_mode="livesum",
)

# --- webhooks ---
WEBHOOK_DELIVERIES: Final = Counter(
    "giftwave_webhook_deliveries",
    "Webhook delivery attempts by outcome: delivered, failed (tried again later), gave_up.",
    ("outcome",),
)
WEBHOOK_DELIVERED: Final = WEBHOOK_DELIVERIES.labels("delivered")
WEBHOOK_FAILED: Final = WEBHOOK_DELIVERIES.labels("failed")
WEBHOOK_GAVE_UP: Final = WEBHOOK_DELIVERIES.labels("gave_up")
WEBHOOK_BACKLOG: Final = Gauge(
    "giftwave_webhook_backlog",
    "Webhook deliveries due or waiting for a retry (read from the shared outbox).",
    multiprocess_mode="livemax",
)
WEBHOOK_DROPPED: Final = Counter(
    "giftwave_webhook_dropped",
    "Webhook events dropped: the endpoint's backlog was full, or it was disabled.",
)

# --- clips ---
CLIP_JOBS: Final = Counter(
    "giftwave_clip_jobs", "Clip jobs reaching a state (queued, running, done, failed).", ("state",)
)
CLIP_QUEUE: Final = Gauge(
    "giftwave_clip_queue_jobs",
    "Clip jobs waiting for a worker in this process.",
    multiprocess_mode="livesum",
)

# --- background work ---
BACKGROUND_LOST: Final = Counter(
    "giftwave_background_lost",
    "Records background work could not write and dropped (logged), by task name.",
    ("task",),
)

# --- periodic loops (``periodic.py``) ---
# Every loop's name: a bounded label, and every series exists from the first scrape.
LOOPS: Final = (
    "analytics-viewers",  # viewers over time, sampled for analytics
    "battle-referee",  # battles ended on time, invitations expired
    "clip-sweep",  # queued clip jobs the queue had no room for, offered again
    "club-activity",  # fan club members' likes and watch time, added to their points
    "club-points",  # committed gifts followed into fan club members' points
    "diamond-fractions",  # creators' hundredths of a diamond settled into whole diamonds
    "gifter-levels",  # gifter levels brought up to the ledger, level-ups announced
    "ledger-checkpoint",  # SQLite's WAL copied back into the database file
    "ledger-expiry",  # pending transfers past their timeout, voided
    "notify-goals",  # live streams' goals near their target, told to opted-in followers
    "notify-fanout",  # queued notices told to a creator's followers, chunk by chunk
    "notify-prune",  # old notices, push jobs and fan-outs deleted
    "payout-sweep",  # processing payouts without the provider's answer, asked for again
    "provider-fee-import",  # the payout provider's bills to the platform, into the ledger
    "push-sender",  # due Web Push notices encrypted, signed and sent
    "realtime-viewers",  # each room's viewers on every node, counted
    "risk-rules",  # committed ledger events and failed top-ups run through the risk rules
    "room-presence",  # this node's logged-in viewers written for every node (gifted subs)
    "share-gift-credits",  # committed gifts credited to the shares that brought them
    "subscription-gift-catch-up",  # gifted periods a crash left unapplied, given
    "subscription-renewals",  # subscriptions due: renewed once per period, or lapsed
    "trending-refresh",  # live streams and every node's gifts read into trending
    "webhook-dispatcher",  # webhook deliveries claimed and sent, combos closed, upkeep
)
LOOP_RUNS: Final = Counter(
    "giftwave_loop_runs",
    "Runs of a periodic background loop, by loop name and outcome (ok, error).",
    ("loop", "outcome"),
)
LOOP_RUN_DURATION: Final = Histogram(
    "giftwave_loop_run_duration_seconds",
    "Time one run of a periodic background loop took (failed runs too), by loop name.",
    ("loop",),
    buckets=_LATENCY_BUCKETS_S,
)

# --- payments ---
PAYMENT_EVENTS: Final = Counter(
    "giftwave_payment_events",
    "Verified payment provider events handled, by type (succeeded, failed, refunded, "
    "disputed, ignored).",
    ("type",),
)
PAYMENT_WEBHOOK_FAILURES: Final = Counter(
    "giftwave_payment_webhook_failures",
    "Payment webhooks refused (bad signature, malformed, too large) or not stored (an error).",
)

# Label values known up front are created now, so every series exists (at 0) from the first
# scrape: an alert on ``rate()`` or ``increase()`` sees the first event, not a new series.
for _outcome in ("delivered", "failed", "gave_up"):
    WEBHOOK_DELIVERIES.labels(_outcome)
for _state in ("queued", "running", "done", "failed"):
    CLIP_JOBS.labels(_state)
# The background tasks that can lose records (a BatchThread's name, or a fixed name).
for _task in ("share-visits", "broker-unsent", "webhook-events"):
    BACKGROUND_LOST.labels(_task)
for _loop in LOOPS:
    LOOP_RUNS.labels(_loop, "ok")
    LOOP_RUNS.labels(_loop, "error")
    LOOP_RUN_DURATION.labels(_loop)
for _type in ("succeeded", "failed", "refunded", "disputed", "ignored"):
    PAYMENT_EVENTS.labels(_type)
for _band in _ROOM_BAND_CHILDREN:
    _band.set(0)


def multiprocess_dir() -> str | None:
    """The shared directory of multiprocess values, or None when this process is alone."""
    return os.environ.get(MULTIPROC_DIR_VARIABLE) or None


class _LiveProcesses(Collector):
    """Marks the workers that died as dead before every collection: a restarted worker's
    pid is gone, and its ``live*`` gauges (sockets, queue depth) must leave the sum."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._inner = multiprocess.MultiProcessCollector(None, path)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        for pid in _dead_pids(self._path):
            multiprocess.mark_process_dead(pid, self._path)  # type: ignore[no-untyped-call]
        collected: Iterable[Metric] = self._inner.collect()  # type: ignore[no-untyped-call]
        return collected


def _dead_pids(path: str) -> set[int]:
    pids: set[int] = set()
    for name in os.listdir(path):
        if not (name.startswith("gauge_live") and name.endswith(".db")):
            continue
        try:
            pid = int(name.rsplit("_", 1)[1].removesuffix(".db"))
        except ValueError:
            continue
        if not _alive(pid):
            pids.add(pid)
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def registry() -> CollectorRegistry:
    """What a scrape reads: every process's values in multiprocess mode, else this one's."""
    path = multiprocess_dir()
    if path is None:
        return REGISTRY
    shared = CollectorRegistry(auto_describe=False)
    shared.register(_LiveProcesses(path))
    return shared


def exposition() -> bytes:
    """The Prometheus text format of every metric, as a scrape reads it now."""
    return generate_latest(registry())
