"""Delivering the outbox: one dispatcher per process claims due deliveries, POSTs them and
records what happened. Nodes share the work through the database (claims), never directly.

Each attempt is ``POST <url>`` with the event's JSON and these headers:

    Giftwave-Event: gift
    Giftwave-Delivery: 1234          the same on every retry of one delivery: dedupe on it
    Giftwave-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

A 2xx within the timeout is delivered; anything else (another status, a redirect, a timeout, a
refused connection or address) is a failed attempt, retried with backoff (outbox.py).
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import httpx
from sqlalchemy import Engine, select

from giftwave import __version__, metrics
from giftwave.clock import now_us
from giftwave.db.tables import webhook_endpoints
from giftwave.payments.signing import signature_header
from giftwave.periodic import PeriodicTask, Schedule
from giftwave.webhooks.combos import close_quiet
from giftwave.webhooks.destinations import DestinationRefused, ensure_public
from giftwave.webhooks.endpoints import Endpoint, endpoints_of
from giftwave.webhooks.events import EventType
from giftwave.webhooks.outbox import (
    Claim,
    Failure,
    PendingGauge,
    RetryPolicy,
    claim_due,
    enqueue,
    fail_undeliverable,
    pending_deliveries,
    prune,
    record_delivered,
    record_failed_attempt,
    release,
)

log = logging.getLogger(__name__)

MAX_IN_FLIGHT: Final = 16
POLL_US: Final = 1_000_000  # what other nodes queued, and their retries, is found this late
LEASE_MARGIN_US: Final = 10_000_000  # a claim outlives its attempt's timeout by this much
MAINTENANCE_EVERY_US: Final = 60_000_000
ENDPOINTS_PER_MAINTENANCE: Final = 200
BACKLOG_COUNT_CAP: Final = 1_000_000  # the backlog gauge stops counting here (a bounded scan)
RESPONSE_SNIPPET_BYTES: Final = 300
STOP_GRACE_S: Final = 2.0
MAX_ALARMS: Final = 10_000  # known times work falls due; past this, the poll finds it
# Threads of its own for the database: a burst of results to record never queues in front of
# the gift path's work on the event loop's default executor.
DB_THREADS: Final = 2
RECORD_BATCH: Final = 64  # results recorded in one transaction (one commit, not 64)
# A failed round (the database away) is tried again after POLL_US, then backing off up to
# this: deliveries resume within seconds of the database's return.
ERROR_BACKOFF_MAX_S: Final = 10.0

EndpointChanged = Callable[[int], None]  # called with the creator id
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Result:
    claim: Claim
    status: int | None  # None: no answer
    error: str

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Dispatcher:
    def __init__(
        self,
        db: Engine,
        *,
        policy: RetryPolicy,
        gauge: PendingGauge,
        timeout_s: float,
        allow_private: bool,
        combo_quiet_us: int,
        on_endpoint_disabled: EndpointChanged,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._db = db
        self._policy = policy
        self._gauge = gauge
        self._timeout_s = timeout_s
        self._allow_private = allow_private
        self._quiet_us = combo_quiet_us
        self._on_endpoint_disabled = on_endpoint_disabled
        self._lease_us = int(timeout_s * 1_000_000) + LEASE_MARGIN_US
        # No proxy from the environment, no redirects: a delivery goes to the registered URL.
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=MAX_IN_FLIGHT),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": f"giftwave-webhooks/{__version__}"},
            transport=transport,
        )
        self._in_flight: dict[asyncio.Task[None], Claim] = {}
        self._next_claim_us = 0
        self._next_combos_us = 0
        self._next_maintenance_us = 0
        self._alarms: list[int] = []  # a heap of times a retry or a combo falls due
        self._maintenance_cursor = 0
        # Database work runs on threads, which a cancelled task does not stop: stopping waits
        # for it, so nothing touches the database after the app closed its engine.
        self._db_work: set[asyncio.Future[Any]] = set()
        self._executor = ThreadPoolExecutor(DB_THREADS, thread_name_prefix="webhook-dispatcher")
        self._results: list[tuple[_Result, asyncio.Future[Failure | None]]] = []
        self._recorder: asyncio.Task[None] | None = None
        self._rounds = PeriodicTask(
            "webhook-dispatcher",
            self._next_round,
            Schedule(POLL_US / 1_000_000, backoff_max_s=ERROR_BACKOFF_MAX_S),
            run_at_start=True,
            stop_grace_s=STOP_GRACE_S,
        )

    def start(self) -> None:
        self._rounds.start()

    async def stop(self) -> None:
        """Finish the round under way; let attempts under way finish briefly, and hand the
        claims of the others back."""
        await self._rounds.stop()
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=STOP_GRACE_S)
        unfinished = list(self._in_flight.items())
        for task, _ in unfinished:
            task.cancel()
        await asyncio.gather(*(task for task, _ in unfinished), return_exceptions=True)
        if self._recorder is not None:  # results already in hand are recorded, not lost
            await asyncio.gather(self._recorder, return_exceptions=True)
        await asyncio.gather(*self._db_work, return_exceptions=True)
        if unfinished:
            try:
                await self._in_thread(self._release, [claim for _, claim in unfinished])
            except Exception:  # their leases run out instead: due again a little later
                log.exception("webhook dispatcher: could not hand claims back")
        self._executor.shutdown(wait=False)  # nothing is left on it
        await self._client.aclose()

    async def _in_thread(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` on a worker thread, awaited by stop() even if the caller is cancelled."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, functools.partial(work, *args))
        self._db_work.add(future)
        future.add_done_callback(self._db_work.discard)
        return await asyncio.shield(future)

    def wake(self, at_us: int | None = None) -> None:
        """Deliveries are due now, or (``at_us``) a retry or a combo falls due then."""
        if at_us is None:
            self._next_claim_us = 0
        elif len(self._alarms) < MAX_ALARMS:
            heapq.heappush(self._alarms, at_us)
        self._rounds.wake()

    async def _next_round(self) -> float:
        """One round; how long until the next is due (new work or a free slot wakes sooner)."""
        await self._round(now_us())
        until = min(self._next_claim_us, self._next_combos_us, self._next_maintenance_us)
        if self._alarms:
            until = min(until, self._alarms[0])
        return max(0.0, (until - now_us()) / 1_000_000)

    async def _round(self, now: int) -> None:
        if self._alarms and self._alarms[0] <= now:
            while self._alarms and self._alarms[0] <= now:
                heapq.heappop(self._alarms)
            self._next_combos_us = self._next_claim_us = 0
        if now >= self._next_maintenance_us:
            self._next_maintenance_us = now + MAINTENANCE_EVERY_US
            await self._in_thread(self._maintain, now)
        if now >= self._next_combos_us:
            closed = await self._in_thread(self._close_combos, now)
            self._next_combos_us = now if closed else now + POLL_US
            if closed:
                self._next_claim_us = 0
        if now >= self._next_claim_us:
            self._next_claim_us = now + POLL_US  # a finished attempt or new work wakes sooner
            free = MAX_IN_FLIGHT - len(self._in_flight)
            if free > 0:
                for claim in await self._in_thread(self._claim, now, free):
                    task = asyncio.create_task(self._attempt(claim))
                    self._in_flight[task] = claim
                    task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        self.wake()  # a slot is free

    def _claim(self, now: int, limit: int) -> list[Claim]:
        with self._db.begin() as conn:
            return claim_due(conn, now_us=now, limit=limit, lease_us=self._lease_us)

    def _release(self, claims: list[Claim]) -> None:
        with self._db.begin() as conn:
            release(conn, claims, now_us=now_us())

    def _close_combos(self, now: int) -> bool:
        """Queue the combo_end of every combo gone quiet; True if there were any."""
        with self._db.begin() as conn:
            ended = close_quiet(conn, now_us=now, quiet_us=self._quiet_us)
            endpoints: dict[int, list[Endpoint]] = {}
            for event in ended:
                if event.creator_id not in endpoints:
                    endpoints[event.creator_id] = [
                        x
                        for x in endpoints_of(conn, event.creator_id)
                        if x.wants(EventType.COMBO_END)
                    ]
                enqueue(conn, event, endpoints[event.creator_id], self._gauge)
            return bool(ended)

    def _maintain(self, now: int) -> None:
        with self._db.begin() as conn:
            fail_undeliverable(conn)
            ids = [
                int(i)
                for i in conn.execute(
                    select(webhook_endpoints.c.id)
                    .where(webhook_endpoints.c.id > self._maintenance_cursor)
                    .order_by(webhook_endpoints.c.id)
                    .limit(ENDPOINTS_PER_MAINTENANCE)
                ).scalars()
            ]
            prune(conn, now_us=now, endpoint_ids=ids)
            metrics.WEBHOOK_BACKLOG.set(pending_deliveries(conn, cap=BACKLOG_COUNT_CAP))
        self._maintenance_cursor = ids[-1] if len(ids) == ENDPOINTS_PER_MAINTENANCE else 0

    async def _attempt(self, claim: Claim) -> None:
        body = claim.payload.encode()
        headers = {
            "Content-Type": "application/json",
            "Giftwave-Event": claim.type,
            "Giftwave-Delivery": str(claim.delivery_id),
            "Giftwave-Signature": signature_header(claim.secret, body),
        }
        status, error = await self._post(claim.url, body, headers)
        future: asyncio.Future[Failure | None] = asyncio.get_running_loop().create_future()
        self._results.append((_Result(claim, status, error), future))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_results(), name="webhook-results")
        try:
            failure = await future  # the attempt holds its slot until its result is stored
        except Exception:  # not recorded: the lease runs out and the delivery is due again
            log.exception("webhook dispatcher: could not record delivery %d", claim.delivery_id)
            return
        if failure is None:
            metrics.WEBHOOK_DELIVERED.inc()
            return
        if failure.retry_at_us is not None:
            metrics.WEBHOOK_FAILED.inc()
            self.wake(failure.retry_at_us)
        else:
            metrics.WEBHOOK_GAVE_UP.inc()
        if failure.endpoint_disabled:
            log.warning("webhook endpoint %d disabled: failing for too long", claim.endpoint_id)
            self._on_endpoint_disabled(claim.creator_id)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
        """The status the endpoint answered (None: no answer) and, if it is not a 2xx, why."""
        try:
            async with asyncio.timeout(self._timeout_s):  # one deadline for DNS, connect, reply
                if not self._allow_private:
                    await ensure_public(url)
                async with self._client.stream(
                    "POST", url, content=body, headers=headers
                ) as response:
                    if response.is_success:
                        return response.status_code, ""
                    snippet = await _snippet(response)
                    return response.status_code, f"answered {response.status_code}: {snippet}"
        except DestinationRefused as exc:
            return None, f"refused: {exc}"
        except TimeoutError:
            return None, f"no answer within {self._timeout_s:g} s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"

    async def _record_results(self) -> None:
        while self._results:
            batch = self._results[:RECORD_BATCH]
            del self._results[:RECORD_BATCH]
            try:
                failures = await self._in_thread(self._record, [result for result, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), failure in zip(batch, failures, strict=True):
                if not future.done():  # an attempt cancelled by stop() no longer waits
                    future.set_result(failure)

    def _record(self, results: list[_Result]) -> list[Failure | None]:
        """Each result, in one transaction; endpoints in id order, so that two nodes recording
        at once take their rows in the same order (no deadlock)."""
        ordered = sorted(
            range(len(results)),
            key=lambda i: (results[i].claim.endpoint_id, results[i].claim.delivery_id),
        )
        failures: list[Failure | None] = [None] * len(results)
        with self._db.begin() as conn:
            now = now_us()
            for i in ordered:
                result = results[i]
                if result.delivered:
                    assert result.status is not None
                    record_delivered(conn, result.claim, status_code=result.status, now_us=now)
                else:
                    failures[i] = record_failed_attempt(
                        conn,
                        result.claim,
                        status_code=result.status,
                        error=result.error,
                        now_us=now,
                        policy=self._policy,
                    )
        return failures


async def _snippet(response: httpx.Response) -> str:
    """The start of an error answer, for the creator's delivery log; never the whole of it."""
    kept = bytearray()
    async for chunk in response.aiter_bytes():
        kept += chunk
        if len(kept) >= RESPONSE_SNIPPET_BYTES:
            break
    return kept[:RESPONSE_SNIPPET_BYTES].decode(errors="replace")
