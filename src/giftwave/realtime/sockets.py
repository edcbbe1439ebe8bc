"""Where a room's frames go: one viewer socket each.

A room frame is encoded once and the same bytes go to every viewer. With thousands of viewers
ten times a second, the usual path (a task per socket woken for each frame, the ASGI send,
the WebSocket library framing the text again for every socket) costs tens of microseconds per
viewer per frame, more than a core can give. So when the server is uvicorn without
compression (``UVICORN_OPTIONS``), a frame is wrapped in its WebSocket header once too, and
the tick writes those bytes straight to each connection's transport: a few microseconds,
never a wait. Any other server gets the portable path (``api.room_sockets.QueueSink``), with
the same limits. What knows ASGI and uvicorn (finding the transport, the portable sink) is in
``api.room_sockets``: this package imports no web framework.

Backpressure is measured where it happens: bytes a socket has not yet handed to the kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable, Coroutine
from typing import Any, Final, Protocol

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

    def close(self, code: int, reason: str) -> None:
        """Close the socket with ``code``: what was written before goes first; nothing
        written after goes at all."""
        ...

    def closing(self) -> bool:
        """A close was asked here and has not finished (the peer has not answered it, or its
        bytes have not left): a draining node waits for these (api/drain.py)."""
        ...

    async def stop(self) -> None:
        """The socket is gone: release what the sink holds."""
        ...


# A close through the server's own WebSocket protocol (the ASGI ``websocket.close``).
Handshake = Callable[[int, str], Coroutine[Any, Any, None]]


class TransportSink:
    """Frames written to the connection's transport as ready-made WebSocket frames.

    Room frames go out at once (one per tick). Replies wait for the end of the event loop's
    turn: the gifts of one ledger batch answer together, and a tapping viewer's eight acks
    then cost one write, not eight; a frame written meanwhile goes after them, in order.

    A close goes through the server's protocol (``handshake``) when there is one: it sends the
    close frame and goes on reading until the peer answers it, then ends the connection. A
    transport closed at once with the peer's frames unread (a viewer sends while the server
    closes) ends in a TCP reset, which can cost the peer the close frame it had not read yet:
    a draining node's 1001 was lost that way."""

    __slots__ = ("_closed", "_handshake", "_replies", "_tasks", "_transport")

    def __init__(self, transport: asyncio.Transport, handshake: Handshake | None = None) -> None:
        self._transport = transport
        self._handshake = handshake
        self._replies: list[bytes] = []
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()  # held until done (the loop holds weakly)

    def write(self, frame: Frame) -> None:
        if self._replies:
            self._flush()
        if not self._closed and not self._transport.is_closing():
            self._transport.write(frame.wire)

    def reply(self, frame: Frame) -> None:
        if self._closed:
            return
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
        if self._closed or transport.is_closing():
            return
        self._flush()
        self._closed = True
        loop = asyncio.get_running_loop()
        if self._handshake is not None:
            task = loop.create_task(self._handshake(code, reason))
            self._tasks.add(task)
            task.add_done_callback(self._handshake_done)
        else:
            transport.write(_close_frame(code, reason))
            transport.close()  # flushes first
        loop.call_later(CLOSE_GRACE_S, transport.abort)  # a reader that never reads: cut off

    def _handshake_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._transport.close()  # the peer went first (its socket is gone): nothing to say

    def closing(self) -> bool:
        transport = self._transport
        return self._closed and not (
            transport.is_closing() and transport.get_write_buffer_size() == 0
        )

    async def stop(self) -> None:
        self._flush()
        for task in list(self._tasks):  # the close goes out before the server ends the socket
            with contextlib.suppress(Exception):
                await task


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

    def closing(self) -> bool:
        return False  # closed at once

    async def stop(self) -> None:
        return None

    def take(self) -> list[str]:
        """The frames' texts so far, emptying the list."""
        texts = [frame.text for frame in self.frames]
        self.frames.clear()
        return texts
