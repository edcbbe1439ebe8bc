"""Where a room's frames go: one viewer socket each.

A room frame is encoded once and the same bytes go to every viewer. With thousands of viewers
ten times a second, the usual path (a task per socket woken for each frame, the ASGI send,
the WebSocket library framing the text again for every socket) costs tens of microseconds per
viewer per frame, more than a core can give. So when the server is uvicorn without
compression (``UVICORN_OPTIONS``), a frame is wrapped in its WebSocket header once too, and
the tick writes those bytes straight to each connection's transport: a few microseconds,
never a wait. Any other server gets the portable path (``QueueSink``), with the same limits.

Backpressure is measured where it happens: bytes a socket has not yet handed to the kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections import deque
from typing import Any, Final, Protocol, cast

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

log = logging.getLogger(__name__)

CLOSE_GRACE_S: Final = 5.0  # a closed slow socket gets this long to take its close frame


class Frame:
    """One server message, encoded once: the JSON text, and its WebSocket frame built on
    first use (the same bytes object for every socket)."""

    __slots__ = ("_wire", "seq", "text")

    def __init__(self, text: str, seq: int = 0) -> None:
        self.text = text
        self.seq = seq
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            self._wire = text_frame(self.text.encode())
        return self._wire


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked (server → client) text frame, RFC 6455 §5.2."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def _close_frame(code: int, reason: str) -> bytes:
    payload = struct.pack("!H", code) + reason.encode()[:123]
    return struct.pack("!BB", 0x88, len(payload)) + payload


class Sink(Protocol):
    def write(self, frame: Frame) -> None:
        """Queue ``frame`` for the socket; never waits."""
        ...

    def reply(self, frame: Frame) -> None:
        """Queue an answer to a command: after what was written before, never waits."""
        ...

    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        ...

    def close(self, code: int, reason: str) -> None: ...

    async def stop(self) -> None:
        """The socket is gone: release what the sink holds."""
        ...


class TransportSink:
    """Frames written to the connection's transport as ready-made WebSocket frames.

    Room frames go out at once (one per tick). Replies wait for the end of the event loop's
    turn: the gifts of one ledger batch answer together, and a tapping viewer's eight acks
    then cost one write, not eight; a frame written meanwhile goes after them, in order."""

    __slots__ = ("_replies", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._replies: list[bytes] = []

    def write(self, frame: Frame) -> None:
        if self._replies:
            self._flush()
        if not self._transport.is_closing():
            self._transport.write(frame.wire)

    def reply(self, frame: Frame) -> None:
        if not self._replies:
            asyncio.get_running_loop().call_soon(self._flush)
        self._replies.append(frame.wire)

    def _flush(self) -> None:
        replies, self._replies = self._replies, []
        if replies and not self._transport.is_closing():
            self._transport.write(b"".join(replies))

    def buffered(self) -> int:
        return self._transport.get_write_buffer_size()

    def close(self, code: int, reason: str) -> None:
        transport = self._transport
        if transport.is_closing():
            return
        self._flush()
        transport.write(_close_frame(code, reason))
        transport.close()  # flushes first; a reader that never reads is cut off below
        asyncio.get_running_loop().call_later(CLOSE_GRACE_S, transport.abort)

    async def stop(self) -> None:
        self._flush()


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


class ListSink:
    """Frames kept in a list: an in-process watcher of a room (tests, the simulator). Its
    unsent bytes are whatever the owner says, to play a slow reader."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.unsent = 0
        self.closed: tuple[int, str] | None = None

    def write(self, frame: Frame) -> None:
        self.frames.append(frame)

    reply = write

    def buffered(self) -> int:
        return self.unsent

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    async def stop(self) -> None:
        return None

    def take(self) -> list[str]:
        """The frames' texts so far, emptying the list."""
        texts = [frame.text for frame in self.frames]
        self.frames.clear()
        return texts


def open_sink(ws: WebSocket, *, direct: bool = True) -> Sink:
    """The fastest sink this connection allows (call after ``accept``)."""
    transport = _uvicorn_transport(ws) if direct else None
    kind = "direct" if transport is not None else "asgi"
    if kind not in _said:
        _said.add(kind)
        log.info("room sockets: %s writes", kind)  # once per process and kind, for operators
    return TransportSink(transport) if transport is not None else QueueSink(ws)


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
