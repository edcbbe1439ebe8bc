"""A request id and the HTTP metrics for every request, fast lanes included.

``Giftwave.__call__`` runs every HTTP request and WebSocket through ``ObserveRequests``
before anything else (the Host check, the gift and share-link fast lanes, the framework), so
no lane escapes it. For each one it:

- takes the client's ``X-Request-ID`` when it is sane (at most 128 of ``[A-Za-z0-9._-]``: it
  goes into logs and headers verbatim), else makes one; binds it to ``logs.REQUEST_ID`` so
  every log line written while serving it carries it, and problem+json bodies name it;
  echoes it in the response's (or the WebSocket handshake's) ``X-Request-ID`` header;
- counts an HTTP request by route template, method and status, and times it, in the metrics
  of ``giftwave.metrics``. The label is the route's template (``/v1/streams/{stream_id}/gifts``),
  never the path: one series per stream id would grow without bound.

The counts are kept in plain dicts and added to the Prometheus metrics at most
``FLUSH_INTERVAL_S`` later (and before this process answers ``/metrics`` itself): in
multiprocess mode every ``inc`` takes a lock and writes a memory-mapped file, ~7 us a request,
which was most of this wrapper's cost on the gift lane (docs/benchmarks.md). A scrape served by
another process or the metrics port may lag by that interval; no count is lost.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import secrets
import time
from bisect import bisect_left
from typing import Any, Final

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from giftwave import metrics
from giftwave.api.room_sockets import RAW_SEND_KEY
from giftwave.logs import REQUEST_ID

HEADER: Final = b"x-request-id"
_SANE: Final = re.compile(rb"[A-Za-z0-9._-]{1,128}")
# Label values: the route template, or one of these when no route matched.
GIFT_TEMPLATE: Final = "/v1/streams/{stream_id}/gifts"
SHARE_TEMPLATE: Final = "/s/{code}"
UNMATCHED: Final = "unmatched"
# A fast lane of ``Giftwave._serve`` names its template here before it answers (no router
# sets ``route`` for it); a route the router matched afterwards takes precedence.
LANE_KEY: Final = "giftwave.lane"
# Route templates x methods x statuses is bounded; a bound on the cache all the same, in case
# a label were ever built from something a client chooses.
_CHILDREN_MAX: Final = 4096
FLUSH_INTERVAL_S: Final = 0.5
# Also flushed after this many requests: what waits is bounded however fast requests come.
FLUSH_EVERY: Final = 4096


# A request id must be unique, not secret: this process's random prefix and a counter. Not
# ``secrets`` per request: os.urandom lets go of the GIL, and taking it back behind the ledger
# writer's thread cost the event loop more than the whole rest of this wrapper (py-spy, bench
# api: 16 of ~150 us a gift).
# A forked child takes a prefix of its own.
_prefix = secrets.token_hex(4)
_sequence = itertools.count(1)


def _new_prefix() -> None:
    global _prefix, _sequence
    _prefix, _sequence = secrets.token_hex(4), itertools.count(1)


os.register_at_fork(after_in_child=_new_prefix)


def new_request_id() -> str:
    return f"{_prefix}{next(_sequence):08x}"


def request_id_of(scope: Scope) -> str:
    """The client's ``X-Request-ID`` when sane, else a new one."""
    for name, value in scope["headers"]:
        if name == HEADER:
            if _SANE.fullmatch(value):
                return str(value.decode("ascii"))
            break
    return new_request_id()


def route_template(scope: Scope) -> str:
    """The template of the route that answered; the fast lane's own when none did."""
    route: Any = scope.get("route")
    template = getattr(route, "path", None)
    if isinstance(template, str):
        return template or "/"
    lane: str = scope.get(LANE_KEY, UNMATCHED)
    return lane


class _Timings:
    """One route's latencies since the last flush, as the histogram's buckets count them."""

    __slots__ = ("buckets", "total_s")

    def __init__(self) -> None:
        self.buckets = [0] * len(metrics.HTTP_BOUNDS_S)
        self.total_s = 0.0


class ObserveRequests:
    """ASGI wrapper of the whole app: request ids, and HTTP counts and latencies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._timers: dict[str, Histogram] = {}
        # Since the last flush: requests by (template, method, status), timings by template.
        self._counts: dict[tuple[str, str, int], int] = {}
        self._timings: dict[str, _Timings] = {}
        self._waiting = 0
        self._flush_due: asyncio.TimerHandle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_of(scope)
        header = (HEADER, request_id.encode("ascii"))
        token = REQUEST_ID.set(request_id)
        try:
            if scope["type"] == "http":
                await self._http(scope, receive, send, header)
            else:
                await self._websocket(scope, receive, send, header)
        finally:
            REQUEST_ID.reset(token)

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, header: tuple[bytes, bytes]
    ) -> None:
        started = time.perf_counter()
        status = 500  # what the client sees if the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, header: tuple[bytes, bytes]
    ) -> None:
        # Room sockets write frames straight to the server's transport (api/room_sockets.py):
        # they must find the server's own send, not this wrapper.
        scope.setdefault(RAW_SEND_KEY, send)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "websocket.accept":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_id)

    def _observe(self, scope: Scope, status: int, elapsed_s: float) -> None:
        template = route_template(scope)
        key = (template, scope["method"], status)
        self._counts[key] = self._counts.get(key, 0) + 1
        timings = self._timings.get(template)
        if timings is None:
            timings = self._timings[template] = _Timings()
        timings.buckets[bisect_left(metrics.HTTP_BOUNDS_S, elapsed_s)] += 1
        timings.total_s += elapsed_s
        self._waiting += 1
        if self._waiting >= FLUSH_EVERY:
            self.flush()
        elif self._flush_due is None:
            self._flush_due = asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self.flush)

    def flush(self) -> None:
        """Add what was counted since the last flush to the Prometheus metrics."""
        if self._flush_due is not None:
            self._flush_due.cancel()
            self._flush_due = None
        counts, self._counts = self._counts, {}
        timings, self._timings = self._timings, {}
        self._waiting = 0
        for key, count in counts.items():
            self._counter(key).inc(count)
        for template, timed in timings.items():
            timer = self._timers.get(template)
            if timer is None:
                timer = self._timers[template] = metrics.HTTP_REQUEST_DURATION.labels(template)
            metrics.add_observations(timer, timed.buckets, timed.total_s)

    def _counter(self, key: tuple[str, str, int]) -> Counter:
        counter = self._counters.get(key)
        if counter is None:
            template, method, status = key
            if len(self._counters) >= _CHILDREN_MAX:
                template = UNMATCHED
            counter = self._counters[key] = metrics.HTTP_REQUESTS.labels(
                template, method, str(status)
            )
        return counter
