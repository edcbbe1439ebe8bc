"""``giftwave bench fanout-floor``: the hub's fan-out beside the bare socket write it is made of.

``bench fanout`` says what a delivered frame costs the server all-in (gift intake and billing
included). This says how much of a frame's write is the hub's own Python and how much the
kernel's: the same frame, to the same loopback sockets, once through the hub's fan-out
(``Channel.deliver``: each subscriber's limits, then its sink's write) and once as a bare loop of
``transport.write`` (the floor: one ``send()`` a socket, nothing around it), in interleaved
rounds, in this process's CPU time (user + system: the kernel's TCP work is most of it). The
viewers are one client process on its own uvloop that reads and drops every byte.

On loopback a ``send()`` also runs the receiver's TCP work, so both figures are higher than a
server writing to a network card would pay; their ratio is what tells whether Python-level
fan-out work can still cut the cost per frame.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import socket
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from giftwave.bench.server import raise_open_files_limit
from giftwave.realtime.hub import Channel, Subscriber
from giftwave.realtime.sockets import Frame, TransportSink

SOFT_LIMIT_BYTES = 256 * 1024  # the hub's defaults (Hub.__init__)
HARD_LIMIT_TICKS = 50
TICK_S = 0.05  # between frames: the reader drains its sockets, as between the hub's ticks


@dataclass(slots=True)
class FanoutFloorConfig:
    viewers: int = 3000
    frames: int = 40  # per round and side
    rounds: int = 5
    frame_bytes: int = 400  # a gift rain's frame with compact combo counts is 0.3-2 KB


@dataclass(slots=True)
class FanoutFloorResult:
    viewers: int
    frame_bytes: int
    rounds: int
    hub_us_per_frame: float = 0.0  # medians over the rounds
    floor_us_per_frame: float = 0.0
    ratio: float = 0.0  # hub / floor: 1.0 is nothing above the bare write
    hub_frames_per_core_s: float = 0.0
    floor_frames_per_core_s: float = 0.0
    hub_rounds_us: list[float] = field(default_factory=list)
    floor_rounds_us: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _reader(port: int, viewers: int) -> None:
    """The viewers: ``viewers`` sockets that read and drop everything, until killed."""
    import uvloop

    class Drop(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            return None

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(viewers):
            await loop.create_connection(Drop, "127.0.0.1", port)
        await asyncio.Event().wait()

    uvloop.run(main())


async def _measure(
    cfg: FanoutFloorConfig, listening: socket.socket, say: Callable[[str], None]
) -> FanoutFloorResult:
    loop = asyncio.get_running_loop()
    transports: list[asyncio.Transport] = []
    everyone = asyncio.Event()

    class Accept(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transports.append(transport)  # type: ignore[arg-type]
            if len(transports) == cfg.viewers:
                everyone.set()

    server = await loop.create_server(Accept, sock=listening)
    try:
        await everyone.wait()
        channel = Channel("floor", ring_frames=1, combo_quiet_us=3_000_000)
        for transport in transports:
            subscriber = Subscriber(
                TransportSink(transport),
                soft_limit_bytes=SOFT_LIMIT_BYTES,
                hard_limit_ticks=HARD_LIMIT_TICKS,
            )
            channel.subscribers.add(subscriber)
        text = '{"v":1,"seq":0,"epoch":"floor","events":["' + "x" * cfg.frame_bytes + '"]}'

        def hub(frame: Frame) -> int:
            return channel.deliver(frame)

        def floor(frame: Frame) -> int:
            wire = frame.wire
            for transport in transports:
                transport.write(wire)
            return len(transports)

        async def side(write: Callable[[Frame], int]) -> float:
            spent, frames = 0.0, 0
            for seq in range(cfg.frames):
                frame = Frame(text, seq)
                frame.wire  # noqa: B018 (framed once for the room, as a tick does, untimed)
                before = _cpu_s()
                frames += write(frame)
                spent += _cpu_s() - before
                await asyncio.sleep(TICK_S)
            return spent / max(frames, 1) * 1e6

        result = FanoutFloorResult(cfg.viewers, cfg.frame_bytes, cfg.rounds)
        for n in range(cfg.rounds):
            order = [(hub, result.hub_rounds_us), (floor, result.floor_rounds_us)]
            for write, figures in order if n % 2 == 0 else order[::-1]:
                figures.append(round(await side(write), 2))
            hub_us, floor_us = result.hub_rounds_us[-1], result.floor_rounds_us[-1]
            say(f"round {n + 1}: hub {hub_us} us, floor {floor_us} us")
    finally:
        server.close()
        for transport in transports:
            transport.abort()
    result.hub_us_per_frame = round(statistics.median(result.hub_rounds_us), 2)
    result.floor_us_per_frame = round(statistics.median(result.floor_rounds_us), 2)
    result.ratio = round(result.hub_us_per_frame / result.floor_us_per_frame, 3)
    result.hub_frames_per_core_s = round(1e6 / result.hub_us_per_frame)
    result.floor_frames_per_core_s = round(1e6 / result.floor_us_per_frame)
    return result


def run_fanout_floor(cfg: FanoutFloorConfig, say: Callable[[str], None]) -> FanoutFloorResult:
    import uvloop

    raise_open_files_limit()
    listening = socket.create_server(("127.0.0.1", 0), backlog=4096)
    # Forked before any event loop runs here: quick to start, nothing running to copy.
    reader = multiprocessing.get_context("fork").Process(
        target=_reader, args=(listening.getsockname()[1], cfg.viewers), daemon=True
    )
    reader.start()
    try:
        return uvloop.run(_measure(cfg, listening, say))
    finally:
        reader.kill()
        reader.join()
