"""A minimal WebSocket client for load generation (RFC 6455, text frames, no extensions).

Thousands of viewers on a 2-core machine: a full client library spends tens of microseconds
per frame, which would measure the client instead of the server. This one parses frame
headers by hand and hands each message to a callback; the callback decides how much of it to
look at (most viewers only read ``seq`` off the front of the frame).
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import Callable, Sequence
from typing import Final, cast

from websockets.speedups import apply_mask

OP_TEXT: Final = 0x1
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA
HANDSHAKE_LIMIT_BYTES: Final = 16 * 1024


def _frame(opcode: int, payload: bytes) -> bytes:
    """A client frame: always masked, as RFC 6455 requires of clients."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + mask + apply_mask(payload, mask)


class WsClient(asyncio.Protocol):
    """One connection. ``on_message(payload)`` is called for every complete text message."""

    def __init__(self, on_message: Callable[[bytes], None]) -> None:
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()
        self._upgraded = False
        # The 101 answer's status line and headers: which node a proxy chose (bench cluster).
        self.response_head = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._upgraded:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > HANDSHAKE_LIMIT_BYTES:
                    self._fail(ConnectionError("handshake response too large"))
                return
            self.response_head = bytes(self._buffer[:end])
            status = self.response_head.split(b"\r\n", 1)[0]
            del self._buffer[: end + 4]
            if b" 101 " not in status + b" ":
                self._fail(ConnectionError(f"upgrade refused: {status.decode(errors='replace')}"))
                return
            self._upgraded = True
            if not self.handshake.done():
                self.handshake.set_result(None)
        self._parse()

    def _parse(self) -> None:
        buf = self._buffer
        pos = 0
        while len(buf) - pos >= 2:
            opcode = buf[pos] & 0x0F
            n = buf[pos + 1] & 0x7F  # server frames are never masked
            head = 2
            if n == 126:
                if len(buf) - pos < 4:
                    break
                (n,) = struct.unpack_from("!H", buf, pos + 2)
                head = 4
            elif n == 127:
                if len(buf) - pos < 10:
                    break
                (n,) = struct.unpack_from("!Q", buf, pos + 2)
                head = 10
            if len(buf) - pos < head + n:
                break
            payload = bytes(buf[pos + head : pos + head + n])
            pos += head + n
            if opcode == OP_TEXT:
                self.on_message(payload)
            elif opcode == OP_PING:
                self._write(_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                code = struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else 1005
                self._write(_frame(OP_CLOSE, payload[:2]))
                self._finish(code)
        del buf[:pos]

    def send_text(self, text: bytes) -> None:
        self._write(_frame(OP_TEXT, text))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._write(_frame(OP_CLOSE, struct.pack("!H", 1000)))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(exc or ConnectionError("closed during the handshake"))
        self._finish(1006)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _fail(self, exc: Exception) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def _finish(self, code: int) -> None:
        if not self.closed.done():
            self.closed.set_result(code)


async def connect(
    host: str, port: int, path: str, on_message: Callable[[bytes], None], *, timeout_s: float = 30
) -> WsClient:
    """Open a WebSocket to ``ws://host:port{path}``; ``path`` includes any query string."""
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: WsClient(on_message), host, port)
    assert client.transport is not None
    key = base64.b64encode(os.urandom(16)).decode()
    client.transport.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await asyncio.wait_for(client.handshake, timeout_s)
    return client


async def connect_all(
    host: str,
    port: int,
    targets: Sequence[tuple[str, Callable[[bytes], None]]],
    *,
    at_once: int = 100,
) -> list[WsClient]:
    """A socket per ``(path, on_message)``, in order, at most ``at_once`` handshakes at a time
    (thousands at once would overflow the server's accept backlog)."""
    gate = asyncio.Semaphore(at_once)

    async def one(path: str, on_message: Callable[[bytes], None]) -> WsClient:
        async with gate:
            return await connect(host, port, path, on_message)

    return list(await asyncio.gather(*(one(path, handler) for path, handler in targets)))
