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
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import time
from typing import Any, Final

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from giftwave import metrics
from giftwave.api.streams import gift_path
from giftwave.logs import REQUEST_ID
from giftwave.realtime.sockets import RAW_SEND_KEY
from giftwave.sharing.links import CODE_RE

HEADER: Final = b"x-request-id"
_SANE: Final = re.compile(rb"[A-Za-z0-9._-]{1,128}")
# Label values: the route template, or one of these when no route matched.
GIFT_TEMPLATE: Final = "/v1/streams/{stream_id}/gifts"
SHARE_TEMPLATE: Final = "/s/{code}"
UNMATCHED: Final = "unmatched"
# Route templates x methods x statuses is bounded; a bound on the cache all the same, in case
# a label were ever built from something a client chooses.
_CHILDREN_MAX: Final = 4096


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
    """The template of the route that answered; the fast lanes' own when none did."""
    route: Any = scope.get("route")
    template = getattr(route, "path", None)
    if isinstance(template, str):
        return template or "/"
    path: str = scope["path"]
    if gift_path(path) is not None:
        return GIFT_TEMPLATE
    if path.startswith("/s/") and CODE_RE.fullmatch(path[3:]):
        return SHARE_TEMPLATE
    return UNMATCHED


class ObserveRequests:
    """ASGI wrapper of the whole app: request ids, and HTTP counts and latencies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._timers: dict[str, Histogram] = {}

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
        # Room sockets write frames straight to the server's transport (realtime/sockets.py):
        # they must find the server's own send, not this wrapper.
        scope.setdefault(RAW_SEND_KEY, send)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "websocket.accept":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_id)

    def _observe(self, scope: Scope, status: int, elapsed_s: float) -> None:
        template = route_template(scope)
        method: str = scope["method"]
        key = (template, method, status)
        counter = self._counters.get(key)
        if counter is None:
            if len(self._counters) >= _CHILDREN_MAX:
                key = (UNMATCHED, method, status)
            counter = self._counters[key] = metrics.HTTP_REQUESTS.labels(
                key[0], method, str(status)
            )
        counter.inc()
        timer = self._timers.get(template)
        if timer is None:
            timer = self._timers.setdefault(
                template, metrics.HTTP_REQUEST_DURATION.labels(template)
            )
        timer.observe(elapsed_s)
