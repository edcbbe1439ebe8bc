"""A room socket's sink, chosen for the server it runs under (``realtime.sockets``: why).

Under uvicorn without compression, the frames go straight to the connection's transport
(``TransportSink``); found through the ``send`` the server handed to the ASGI app, which
``KeepServerSend`` keeps in the scope. Anything else gets ``QueueSink``: the portable path
through ASGI, with the same limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any, Final, cast

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from giftwave.realtime.sockets import CLOSE_GRACE_S, Frame, Sink, TransportSink

log = logging.getLogger(__name__)


class QueueSink:
    """The portable path: a bounded-by-its-owner queue drained by a task through ASGI."""

    def __init__(self, ws: WebSocket) -> None:
        self._ws = ws
        self._frames: deque[Frame] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self._close: tuple[int, str] | None = None
        self._task = asyncio.create_task(self._drain())

    def write(self, frame: Frame) -> None:
        self._frames.append(frame)
        self._bytes += len(frame.text)
        self._ready.set()

    reply = write

    def buffered(self) -> int:
        return self._bytes

    def close(self, code: int, reason: str) -> None:
        self._frames.clear()
        self._close = (code, reason)
        self._ready.set()

    def closing(self) -> bool:
        return self._close is not None and not self._task.done()

    async def stop(self) -> None:
        if self._close is not None:  # let the close frame go out first, briefly
            with contextlib.suppress(TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(self._task), CLOSE_GRACE_S)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task

    async def _drain(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            if self._close is not None:
                await self._ws.close(code=self._close[0], reason=self._close[1])
                return
            while self._frames:
                frame = self._frames.popleft()
                self._bytes -= len(frame.text)
                await self._ws.send_text(frame.text)


def open_sink(ws: WebSocket, *, direct: bool = True) -> Sink:
    """The fastest sink this connection allows (call after ``accept``)."""
    transport = _uvicorn_transport(ws) if direct else None
    kind = "direct" if transport is not None else "asgi"
    if kind not in _said:
        _said.add(kind)
        log.info("room sockets: %s writes", kind)  # once per process and kind, for operators
    if transport is None:
        return QueueSink(ws)
    return TransportSink(transport, lambda code, reason: ws.close(code=code, reason=reason))


_said: set[str] = set()


RAW_SEND_KEY: Final = "giftwave.server_send"


class KeepServerSend:
    """ASGI middleware: remembers, in a WebSocket's scope, the ``send`` the server itself
    gave (the framework wraps it before the endpoint sees it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # An outer wrapper (api/request_observer.py) may have kept the server's own already.
            scope.setdefault(RAW_SEND_KEY, send)
        await self.app(scope, receive, send)


def _uvicorn_transport(ws: WebSocket) -> asyncio.Transport | None:
    """The transport under uvicorn's websockets protocol, if frames may be written to it
    directly: plain WebSocket, no extension (compression) negotiated, handshake done."""
    protocol: Any = getattr(ws.scope.get(RAW_SEND_KEY), "__self__", None)
    transport = getattr(protocol, "transport", None)
    conn = getattr(protocol, "conn", None)
    if (
        # uvloop's transports are not asyncio.Transport subclasses: ask for what is used.
        all(hasattr(transport, m) for m in ("write", "get_write_buffer_size", "is_closing"))
        and getattr(protocol, "handshake_complete", False)
        and conn is not None
        and not getattr(conn, "extensions", True)
    ):
        return cast(asyncio.Transport, transport)
    return None
