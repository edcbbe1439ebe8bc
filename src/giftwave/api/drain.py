"""Draining a node on SIGTERM: finish what was started, start nothing that moves value.

At the signal, before uvicorn hears of it:

1. ``draining`` is set: ``/readyz`` fails (the load balancer stops sending), every new
   request that may write (any method but GET, HEAD, OPTIONS) is answered 503 ``draining``
   with ``Retry-After``, and a gift sent over a room socket is refused with ``draining``;
2. gifts already submitted are committed and answered (the ledger queue empties);
3. room sockets are closed with 1001 and a reason asking the client to resume elsewhere
   (uvicorn's own shutdown would close them with 1012, after the ledger stopped), and each
   close is let finish (the peer answers it) before uvicorn is told, up to 2 s;
4. uvicorn is told (its own handler): it stops accepting, lets requests in flight finish,
   then the lifespan stops the background jobs, each at a safe point, and the posting engine
   commits what is left.

A watchdog ends the process ``drain_timeout_s`` after the signal whatever is still running:
an orchestrator's patience is finite, and every acknowledged gift is committed already (a
gift is answered only after its commit), so what the watchdog cuts was never acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Final

from starlette.types import Receive, Scope, Send

from giftwave.api.problems import problem_response
from giftwave.errors import Code, Unavailable

log = logging.getLogger(__name__)

# A client refused while draining retries after this long, by then at another node.
RETRY_AFTER_S: Final = 2
# Methods that never move value: answered while draining (pages, room state, /readyz).
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
CLOSE_GOING_AWAY: Final = 1001
CLOSE_REASON: Final = "server restarting: reconnect to resume on another node"
# Bounds of the steps before uvicorn is told: gifts in the ledger queue are answered within a
# batch or two (milliseconds); the close frames need one write each.
QUEUE_EMPTY_WAIT_S: Final = 3.0
QUEUE_POLL_S: Final = 0.01
# The listener stays open at least this long after the closes: a request already on its way
# is answered 503 ``draining`` with Retry-After, not refused at the door.
CLOSE_SETTLE_S: Final = 0.2
# After the closes, wait while sockets have not finished closing (a peer answers a close
# within a round trip), up to this long: uvicorn's shutdown cuts whatever is still open, and
# a socket cut before the peer answered can lose its close frame to a TCP reset.
CLOSE_FLUSH_MAX_S: Final = 2.0
EXIT_CODE_OVERDUE: Final = 3

SignalHandler = Callable[[int, FrameType | None], object]


class Drain:
    """One process's drain state, and the SIGTERM handler that starts it."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.draining = False
        self.started_at_s: float | None = None

    def begin(self) -> None:
        """From now on: not ready, no new value-moving request (idempotent)."""
        if not self.draining:
            self.draining = True
            self.started_at_s = time.monotonic()

    async def gate(self, _sender_id: int, _creator_id: int) -> None:
        """A gift gate (economy.gifting): a room socket's gift while draining is refused."""
        if self.draining:
            raise Unavailable(
                Code.DRAINING,
                "this server is shutting down: send again on another",
                retry_after_s=RETRY_AFTER_S,
            )

    def install(
        self,
        queued: Callable[[], int],
        close_sockets: Callable[[int, str], int],
        still_closing: Callable[[], int] = lambda: 0,
    ) -> Callable[[], None]:
        """Take SIGTERM from uvicorn's handler (installed before the lifespan starts), and
        give it back afterwards. Only in the main thread: an app served in-process by a test
        client has no signals to take."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.getsignal(signal.SIGTERM)
        loop = asyncio.get_running_loop()

        def on_term(sig: int, frame: FrameType | None) -> None:
            if self.draining:  # a second SIGTERM: straight to uvicorn
                _call(previous, sig, frame)
                return
            self.begin()
            log.warning("SIGTERM: draining (at most %.0f s)", self.timeout_s)
            _watchdog(self.timeout_s)
            then = lambda: _call(previous, sig, frame)  # noqa: E731
            loop.call_soon_threadsafe(
                lambda: loop.create_task(self._drain(queued, close_sockets, still_closing, then))
            )

        signal.signal(signal.SIGTERM, on_term)

        def restore() -> None:
            if signal.getsignal(signal.SIGTERM) is on_term:
                signal.signal(signal.SIGTERM, previous)

        return restore

    async def _drain(
        self,
        queued: Callable[[], int],
        close_sockets: Callable[[int, str], int],
        still_closing: Callable[[], int],
        then: Callable[[], None],
    ) -> None:
        try:
            for _ in range(int(QUEUE_EMPTY_WAIT_S / QUEUE_POLL_S)):  # bounded: then go on
                if not queued():
                    break
                await asyncio.sleep(QUEUE_POLL_S)
            await asyncio.sleep(0.05)  # the last batch's answers reach their sockets
            closed = close_sockets(CLOSE_GOING_AWAY, CLOSE_REASON)
            log.warning("draining: %d room sockets closed (1001)", closed)
            await asyncio.sleep(CLOSE_SETTLE_S)
            for _ in range(int((CLOSE_FLUSH_MAX_S - CLOSE_SETTLE_S) / QUEUE_POLL_S)):
                if not still_closing():
                    break
                await asyncio.sleep(QUEUE_POLL_S)
            else:
                log.warning("draining: %d room sockets still closing: cut", still_closing())
        finally:
            then()


def _call(handler: object, sig: int, frame: FrameType | None) -> None:
    if callable(handler):
        handler(sig, frame)
    elif handler == signal.SIG_DFL:
        raise SystemExit(128 + sig)


def _watchdog(timeout_s: float) -> None:
    """End the process ``timeout_s`` from now if it has not ended by then."""

    def overdue() -> None:
        log.error("drain took longer than %.0f s: exiting now", timeout_s)
        logging.shutdown()
        os._exit(EXIT_CODE_OVERDUE)

    timer = threading.Timer(timeout_s, overdue)
    timer.daemon = True  # never what keeps a finished process alive
    timer.start()


def graceful_shutdown_s(drain_timeout_s: float) -> int:
    """How long uvicorn lets requests in flight finish: half the drain, so the lifespan's stops
    (the ledger's last commit, the background jobs) have the other half."""
    return max(1, int(drain_timeout_s / 2))


async def refuse_draining(scope: Scope, receive: Receive, send: Send) -> None:
    """503 ``draining`` for a request that may write; a room socket: accepted, closed 1001."""
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": CLOSE_GOING_AWAY, "reason": CLOSE_REASON})
        return
    response = problem_response(
        503,
        Code.DRAINING,
        "this server is shutting down: send the same request again (another node answers)",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
    await response(scope, receive, send)
