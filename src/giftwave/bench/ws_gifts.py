"""``giftwave bench ws-gifts``: gifts sent as WebSocket commands into one server process.

Each gifter is one logged-in viewer with one socket and a window of commands in flight (a
viewer tapping a Rose fast); every command is a new gift through the same economy path as the
REST endpoint. Beside it, in the same run and on the same server, the baseline: the same gifts
through ``POST /v1/streams/{id}/gifts``. Prints gifts/s and command latency for both, then
checks the ledger.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import orjson

from giftwave.bench.api import gift_requester
from giftwave.bench.http_load import run_closed_loop
from giftwave.bench.server import (
    BenchRoom,
    Served,
    percentile,
    raise_open_files_limit,
    run,
    served,
    setup_room,
    socket_tickets,
)
from giftwave.bench.ws_client import WsClient, connect_all

ACK_PREFIX: Final = b'{"v":1,"ack":'
ERROR_PREFIX: Final = b'{"v":1,"error":'
REST_CONNECTIONS: Final = 64


@dataclass(slots=True)
class WsGiftsBenchConfig:
    seconds: float = 10.0
    warmup_seconds: float = 3.0
    gifters: int = 1000
    window: int = 8  # commands in flight per socket
    baseline: bool = True


@dataclass(slots=True)
class WsGiftsBenchResult:
    backend: str
    gifts_per_s: float
    latency_ms_p50: float
    latency_ms_p99: float
    baseline_gifts_per_s: float
    baseline_latency_ms_p50: float
    baseline_latency_ms_p99: float
    ratio: float
    gifters: int
    window: int
    errors: dict[str, int] = field(default_factory=dict)
    verified: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class _Tally:
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)
    counting: bool = False


class _Gifter:
    """One socket: keeps ``window`` gifts in flight, the next sent when one is answered."""

    def __init__(self, n: int, window: int, tally: _Tally) -> None:
        self.n = n
        self.window = window
        self.tally = tally
        self.sent_at: dict[int, float] = {}
        self.ids = itertools.count()
        self.client: WsClient | None = None
        self.running = True

    def send_next(self) -> None:
        assert self.client is not None
        i = next(self.ids)
        self.sent_at[i] = time.perf_counter()
        key = f"g{self.n}-{i}"
        command = {"id": i, "cmd": "send_gift", "gift_id": "rose", "idempotency_key": key}
        self.client.send_text(orjson.dumps(command))

    def on_message(self, payload: bytes) -> None:
        if payload.startswith(ACK_PREFIX):
            ok = True
        elif payload.startswith(ERROR_PREFIX):
            ok = False
        else:
            return  # a room frame: this benchmark is about the gifts
        message = orjson.loads(payload)
        started = self.sent_at.pop(message["ack"], None)
        if started is not None and self.tally.counting:
            if ok:
                self.tally.ok += 1
                self.tally.latencies_s.append(time.perf_counter() - started)
            else:
                code = message["error"]["code"]
                self.tally.errors[code] = self.tally.errors.get(code, 0) + 1
        if self.running:
            self.send_next()


async def _websocket_phase(
    server: Served, room: BenchRoom, cfg: WsGiftsBenchConfig, say: Callable[[str], None]
) -> _Tally:
    tally = _Tally()
    gifters = [_Gifter(n, cfg.window, tally) for n in range(cfg.gifters)]
    path = f"/v1/streams/{room.stream_id}/ws?ticket="
    tokens = [room.viewer_tokens[g.n] for g in gifters]
    tickets = await socket_tickets(server.base, room.stream_id, tokens)
    targets = [(path + t, g.on_message) for t, g in zip(tickets, gifters, strict=True)]
    clients = await connect_all(server.host, server.port, targets)
    for gifter, client in zip(gifters, clients, strict=True):
        gifter.client = client
    say(f"{cfg.gifters} sockets, {cfg.window} in flight each: warm-up, then {cfg.seconds:.0f} s")
    for gifter in gifters:
        for _ in range(cfg.window):
            gifter.send_next()
    await asyncio.sleep(cfg.warmup_seconds)
    tally.counting = True
    await asyncio.sleep(cfg.seconds)
    tally.counting = False
    for gifter in gifters:
        gifter.running = False
    await asyncio.sleep(1.0)  # the last answers
    for gifter in gifters:
        assert gifter.client is not None
        gifter.client.close()
    return tally


def run_ws_gifts_bench(
    database_url: str, cfg: WsGiftsBenchConfig, say: Callable[[str], None]
) -> WsGiftsBenchResult:
    raise_open_files_limit()
    env = {"GIFTWAVE_LEDGER_WRITER": "process"} if database_url.startswith("sqlite") else {}
    with served(database_url, "benchwsgifts", env=env) as server:
        say(f"server up on {server.base} ({server.db.backend.value}); {cfg.gifters} viewers")
        room = run(setup_room(server.base, cfg.gifters))
        tally = run(_websocket_phase(server, room, cfg, say))
        rest = None
        if cfg.baseline:
            say(f"baseline: the same gifts over REST, {REST_CONNECTIONS} connections")
            requester = gift_requester(server.base, room.stream_id, room.viewer_tokens, "rest")
            run(
                run_closed_loop(
                    server.base,
                    requester,
                    connections=REST_CONNECTIONS,
                    seconds=cfg.warmup_seconds,
                )
            )
            rest = run(
                run_closed_loop(
                    server.base, requester, connections=REST_CONNECTIONS, seconds=cfg.seconds
                )
            )
    latencies = sorted(tally.latencies_s)
    rest_latencies = sorted(rest.latencies_s) if rest is not None else []
    gifts_per_s = tally.ok / cfg.seconds
    baseline = (rest.ok / cfg.seconds) if rest is not None else 0.0
    return WsGiftsBenchResult(
        backend=server.db.backend.value,
        gifts_per_s=round(gifts_per_s, 1),
        latency_ms_p50=_ms(statistics.median(latencies) if latencies else 0.0),
        latency_ms_p99=_ms(percentile(latencies, 0.99)),
        baseline_gifts_per_s=round(baseline, 1),
        baseline_latency_ms_p50=_ms(statistics.median(rest_latencies) if rest_latencies else 0),
        baseline_latency_ms_p99=_ms(percentile(rest_latencies, 0.99)),
        ratio=round(gifts_per_s / baseline, 2) if baseline else 0.0,
        gifters=cfg.gifters,
        window=cfg.window,
        errors=tally.errors,
        verified=server.verified,
    )


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)
