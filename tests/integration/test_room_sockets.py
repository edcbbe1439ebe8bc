"""The two ways a frame reaches a socket, against a real uvicorn: straight to the transport
(no compression negotiated) and through ASGI (compression on). The client sees the same."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import pytest
import uvicorn
import websockets
from serverproc import free_port
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from giftwave.api.app import UVICORN_OPTIONS
from giftwave.api.room_sockets import KeepServerSend, open_sink
from giftwave.realtime.sockets import Frame

VIEWERS_SENDING = 20


@pytest.mark.parametrize(
    ("loop", "deflate", "sink_kind"),
    [
        ("uvloop", False, "TransportSink"),  # how `giftwave serve` runs
        ("asyncio", False, "TransportSink"),
        ("uvloop", True, "QueueSink"),
    ],
)
async def test_frames_arrive_whole_and_in_order_through_either_sink(
    loop: str, deflate: bool, sink_kind: str
) -> None:
    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        sink = open_sink(ws)
        sink.write(Frame(type(sink).__name__))
        for n in range(200):  # small, 126-byte and 64 KiB+ payloads: every header length
            sink.write(Frame(str(n) + "x" * (n * 400 if n % 50 else 70_000)))
        await ws.receive()  # the client says when it has read everything
        sink.close(1000, "bye")
        await sink.stop()

    app = Starlette(
        routes=[WebSocketRoute("/ws", endpoint)], middleware=[Middleware(KeepServerSend)]
    )
    options: dict[str, Any] = {**UVICORN_OPTIONS, "ws_per_message_deflate": deflate, "loop": loop}
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
    # The server runs its own event loop (uvloop or not) in a thread, as it would in `serve`.
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
            await asyncio.sleep(0.02)
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as client:
            assert await client.recv() == sink_kind
            for n in range(200):
                message = await asyncio.wait_for(client.recv(), 5)
                assert isinstance(message, str)
                assert message.startswith(str(n) + "x")
                assert len(message) == len(str(n)) + (n * 400 if n % 50 else 70_000)
            await client.send("done")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(client.recv(), 5)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1000
    finally:
        server.should_exit = True
        await asyncio.to_thread(serving.join, 10)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
async def test_a_close_reaches_a_viewer_who_is_sending_at_that_moment(loop: str) -> None:
    """A server that closed its end at once, with the viewer's frames unread, answered the
    next of them with a TCP reset, and the viewer could lose the close frame it had not read
    yet (seen as a draining node's lost 1001). The close waits for the viewer's answer."""

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        sink = open_sink(ws)
        for _ in range(50):  # the viewer is sending now
            await ws.receive()
        sink.close(1001, "going away")
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass
        await sink.stop()

    async def viewer(port: int) -> int | None:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as client:

            async def send_always() -> None:
                while True:
                    await client.send("x" * 200)
                    await asyncio.sleep(0)  # a send may not yield: let the frames in be read

            sending = asyncio.create_task(send_always())
            try:
                await asyncio.wait_for(client.recv(), 10)
            except websockets.ConnectionClosed as closed:
                return None if closed.rcvd is None else closed.rcvd.code
            finally:
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                    await sending
        raise AssertionError("a frame arrived, not a close")

    app = Starlette(
        routes=[WebSocketRoute("/ws", endpoint)], middleware=[Middleware(KeepServerSend)]
    )
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, **{**UVICORN_OPTIONS, "loop": loop})
    server = uvicorn.Server(config)
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
            await asyncio.sleep(0.02)
        codes = await asyncio.gather(*(viewer(port) for _ in range(VIEWERS_SENDING)))
        assert codes == [1001] * VIEWERS_SENDING  # None: cut off without the close frame
    finally:
        server.should_exit = True
        await asyncio.to_thread(serving.join, 10)
