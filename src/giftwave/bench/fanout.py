"""``giftwave bench fanout``: one room, thousands of viewer sockets, a rain of gifts.

Gifters send Roses (combos) and now and then Sunglasses (arrive once) as WebSocket commands at
a fixed rate (open loop), through the real economy path. Every viewer counts the frames it
gets and the ticks it missed (gaps in ``seq``, a snapshot instead of deltas, or frames still
owed when the run ends); a sample of viewers also parses each frame and times every gift from
its ledger commit (``at_us``) to its arrival.

The same scenario runs twice, each on a fresh server: with tick coalescing (one frame per
tick, encoded once for the room), then with ``GIFTWAVE_LIVE_FANOUT=per_event`` (a frame per
event per viewer, encoded per viewer): the baseline.
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
from giftwave.bench.ws_client import connect, connect_all

SEQ_PREFIX: Final = b'{"v":1,"seq":'
PACE_S: Final = 0.01  # the gifters' clock: a burst of sends every 10 ms
IDLE_SETTLE_S: Final = 2.0
DRAIN_S: Final = 2.0
SUNGLASSES_EVERY: Final = 50  # one gift in 50 is one that cannot combo


@dataclass(slots=True)
class FanoutBenchConfig:
    viewers: int = 5000
    gifts_per_s: int = 1000
    gifters: int = 100
    seconds: float = 10.0
    warmup_seconds: float = 3.0
    sample_every: int = 50  # one viewer in this many times gifts end to end
    baseline: bool = True


@dataclass(slots=True)
class Phase:
    """What the viewers saw in one run."""

    frames: int = 0  # received during the measured window
    ticks_missed: int = 0
    latencies_s: list[float] = field(default_factory=list)
    gifts_acked: int = 0
    gift_errors: dict[str, int] = field(default_factory=dict)
    viewers_closed: int = 0
    verified: bool = False

    def latency_ms(self, q: float) -> float:
        values = sorted(self.latencies_s)
        if not values:
            return 0.0
        if q == 0.5:
            return round(statistics.median(values) * 1000, 1)
        return round(percentile(values, q) * 1000, 1)


@dataclass(slots=True)
class FanoutBenchResult:
    viewers: int
    gifts_per_s: float
    ticks_missed: int
    deliveries_per_s: float
    baseline_deliveries_per_s: float
    latency_ms_p50: float
    latency_ms_p99: float
    memory_kb_per_viewer: float
    baseline_ticks_missed: int = 0
    baseline_latency_ms_p50: float = 0.0
    baseline_latency_ms_p99: float = 0.0
    baseline_viewers_closed: int = 0
    viewers_closed: int = 0
    gift_errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    verified: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Viewer:
    """One viewer socket's bookkeeping: sequence numbers, and for a sample, gift latency."""

    __slots__ = ("last_seq", "phase", "sampled", "window")

    def __init__(self, phase: Phase, window: list[bool], sampled: bool) -> None:
        self.last_seq = -1
        self.phase = phase
        self.window = window  # [measuring?], shared by every viewer
        self.sampled = sampled

    def on_message(self, payload: bytes) -> None:
        if not payload.startswith(SEQ_PREFIX):
            return  # an ack: viewers send nothing, gifters ignore theirs here
        end = payload.index(b",", len(SEQ_PREFIX))
        seq = int(payload[len(SEQ_PREFIX) : end])
        if self.last_seq >= 0 and seq > self.last_seq + 1:
            self.phase.ticks_missed += seq - self.last_seq - 1
        self.last_seq = max(self.last_seq, seq)
        if not self.window[0]:
            return
        self.phase.frames += 1
        if self.sampled:
            now_us = time.time_ns() // 1000
            latencies = self.phase.latencies_s
            for event in orjson.loads(payload)["events"]:
                kind = event.get("type")
                if kind == "gift":
                    latencies.append((now_us - event["at_us"]) / 1e6)
                elif kind == "combo_counts":  # [n, count, coins, ms after at_us] per combo
                    base = event["at_us"]
                    latencies.extend(
                        (now_us - base - grown[3] * 1000) / 1e6 for grown in event["counts"]
                    )


async def _rain(
    server: Served, room: BenchRoom, cfg: FanoutBenchConfig, phase: Phase, seconds: float
) -> None:
    """Gifts at ``cfg.gifts_per_s`` from ``cfg.gifters`` sockets, paced every 10 ms."""

    def on_ack(payload: bytes) -> None:
        if payload.startswith(b'{"v":1,"ack"'):
            phase.gifts_acked += 1
        elif payload.startswith(b'{"v":1,"error"'):
            code = orjson.loads(payload)["error"]["code"]
            phase.gift_errors[code] = phase.gift_errors.get(code, 0) + 1

    path = f"/v1/streams/{room.stream_id}/ws?ticket="
    tickets = await socket_tickets(server.base, room.stream_id, room.viewer_tokens[: cfg.gifters])
    gifters = [await connect(server.host, server.port, path + t, on_ack) for t in tickets]
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent = 0
    n = itertools.count()
    while (elapsed := loop.time() - started) < seconds:
        due = int(elapsed * cfg.gifts_per_s)
        while sent < due:
            i = next(n)
            gift = "sunglasses" if i % SUNGLASSES_EVERY == SUNGLASSES_EVERY - 1 else "rose"
            key = f"f{i}"
            command = {"id": i, "cmd": "send_gift", "gift_id": gift, "idempotency_key": key}
            gifters[i % len(gifters)].send_text(orjson.dumps(command))
            sent += 1
        await asyncio.sleep(PACE_S)
    await asyncio.sleep(DRAIN_S)  # let the last gifts be billed and their frames arrive
    for gifter in gifters:
        gifter.close()


async def _phase(
    server: Served, cfg: FanoutBenchConfig, say: Callable[[str], None], *, measure_memory: bool
) -> tuple[Phase, float, float]:
    room = await setup_room(server.base, cfg.gifters)
    phase = Phase()
    window = [False]
    path = f"/v1/streams/{room.stream_id}/ws"
    rss_before = server.rss_kb()
    say(f"connecting {cfg.viewers} viewers")
    watchers = [
        _Viewer(phase, window, sampled=n % cfg.sample_every == 0) for n in range(cfg.viewers)
    ]
    clients = await connect_all(
        server.host, server.port, [(path, viewer.on_message) for viewer in watchers]
    )
    viewers = list(zip(watchers, clients, strict=True))
    await asyncio.sleep(IDLE_SETTLE_S)
    memory_kb = (server.rss_kb() - rss_before) / cfg.viewers if measure_memory else 0.0
    say(f"{cfg.gifts_per_s} gifts/s: {cfg.warmup_seconds:.0f} s warm-up, {cfg.seconds:.0f} s")
    rain = asyncio.create_task(_rain(server, room, cfg, phase, cfg.warmup_seconds + cfg.seconds))
    await asyncio.sleep(cfg.warmup_seconds)
    acked_before = phase.gifts_acked
    window[0] = True
    await asyncio.sleep(cfg.seconds)
    window[0] = False
    gifts_in_window = phase.gifts_acked - acked_before
    await rain
    # Frames still owed at the end were missed too: everyone should have reached the last seq.
    last = max(viewer.last_seq for viewer, _ in viewers)
    for viewer, client in viewers:
        phase.ticks_missed += last - max(viewer.last_seq, 0)
        phase.viewers_closed += client.closed.done()
        client.close()
    return phase, gifts_in_window / cfg.seconds, memory_kb


def run_fanout_bench(
    database_url: str, cfg: FanoutBenchConfig, say: Callable[[str], None]
) -> FanoutBenchResult:
    raise_open_files_limit()
    runs: dict[str, tuple[Phase, float, float]] = {}
    modes = ["tick", "per_event"] if cfg.baseline else ["tick"]
    for mode in modes:
        env = {"GIFTWAVE_LIVE_FANOUT": mode}
        if database_url.startswith("sqlite"):
            env["GIFTWAVE_LEDGER_WRITER"] = "process"  # SQLite's writer gets the second core
        with served(database_url, "benchfanout", env=env) as server:
            say(f"{mode}: server up on {server.base} ({server.db.backend.value})")
            phase, gifts_per_s, memory_kb = run(
                _phase(server, cfg, say, measure_memory=mode == "tick")
            )
        phase.verified = server.verified
        runs[mode] = (phase, gifts_per_s, memory_kb)
    tick, gifts_per_s, memory_kb = runs["tick"]
    base = runs.get("per_event", (Phase(), 0.0, 0.0))[0]
    return FanoutBenchResult(
        viewers=cfg.viewers,
        gifts_per_s=round(gifts_per_s, 1),
        ticks_missed=tick.ticks_missed,
        deliveries_per_s=round(tick.frames / cfg.seconds, 1),
        baseline_deliveries_per_s=round(base.frames / cfg.seconds, 1),
        latency_ms_p50=tick.latency_ms(0.5),
        latency_ms_p99=tick.latency_ms(0.99),
        memory_kb_per_viewer=round(memory_kb, 1),
        baseline_ticks_missed=base.ticks_missed,
        baseline_latency_ms_p50=base.latency_ms(0.5),
        baseline_latency_ms_p99=base.latency_ms(0.99),
        baseline_viewers_closed=base.viewers_closed,
        viewers_closed=tick.viewers_closed,
        gift_errors=tick.gift_errors,
        seconds=cfg.seconds,
        verified=tick.verified and (base.verified or not cfg.baseline),
    )
