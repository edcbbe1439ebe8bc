"""``giftwave bench fanout``: one room, thousands of viewer sockets, a rain of gifts.

Gifters send Roses (combos) and now and then Sunglasses (arrive once) as WebSocket commands at
a fixed rate (open loop), through the real economy path. Every viewer counts the frames it
gets and the ticks it missed (gaps in ``seq``, a snapshot instead of deltas, or frames still
owed when the run ends); a sample of viewers also parses each frame and times every gift from
its ledger commit (``at_us``) to its arrival.

The viewers live in client processes of at most ``viewers_per_process`` sockets each (a process
here may hold 20,000 descriptors, a hard limit), each on its own uvloop, told by a pipe when the
measured window opens and closes; each reports its own CPU time, so the load generator's cost
on the shared machine is on the record. The server's CPU time over the window, divided by the
frames delivered, is the figure fan-out work should drive down.

``viewers`` may be a list (5000,10000,16000): each count is a point of a curve, each on a fresh
server, with tick coalescing (one frame per tick, encoded once for the room) and then with
``GIFTWAVE_LIVE_FANOUT=per_event`` (a frame per event per viewer, encoded per viewer) as the
baseline. Each point says whether it met the room's targets and, if not, why (the first of:
sockets refused, sockets closed, ticks missed, the tick stretched, the p99, the gifts).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import multiprocessing
import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
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
from giftwave.bench.ws_client import WsClient, connect

SEQ_PREFIX: Final = b'{"v":1,"seq":'
PACE_S: Final = 0.01  # the gifters' clock: a burst of sends every 10 ms
SUNGLASSES_EVERY: Final = 50  # one gift in 50 is one that cannot combo
CONNECTS_AT_ONCE: Final = 100  # per client process: more overflows the server's accept backlog
TICKS_PER_S: Final = 10  # GIFTWAVE_LIVE_TICK_MS's default, 100 ms
# The room's targets (docs/benchmarks.md): every viewer every tick, gift -> viewer p99.
P99_TARGET_MS: Final = 250.0
TICK_SHARE_TARGET: Final = 0.95  # frames per viewer per second, over TICKS_PER_S
# A tick with nothing to say sends no frame: below this rate some ticks are empty, and fewer
# frames than ticks says nothing about a stretched tick.
EVERY_TICK_FULL_GIFTS_PER_S: Final = 500
EMFILE: Final = "Too many open files"


@dataclass(slots=True)
class FanoutBenchConfig:
    viewers: Sequence[int] = (5000,)
    gifts_per_s: int = 1000
    gifters: int = 100
    seconds: float = 10.0
    warmup_seconds: float = 3.0
    sample_every: int = 50  # one viewer in this many times gifts end to end
    baseline: bool = True
    viewers_per_process: int = 8000
    settle_seconds: float = 2.0  # viewers idle before the memory is read
    drain_seconds: float = 2.0  # after the last gift: its bill and its frames


@dataclass(slots=True)
class Phase:
    """What the viewers of one client process (or all of them, summed) saw in one run."""

    viewers: int = 0  # connected
    refused: int = 0  # sockets that could not be opened
    first_error: str = ""
    frames: int = 0  # received during the measured window
    ticks_missed: int = 0
    latencies_s: list[float] = field(default_factory=list)
    viewers_closed: int = 0
    last_seq_max: int = -1
    last_seq_sum: int = 0  # of max(last_seq, 0) over the viewers: what is owed at the end
    cpu_s: float = 0.0  # the client process's CPU time during the measured window

    def add(self, other: Phase) -> None:
        self.viewers += other.viewers
        self.refused += other.refused
        self.first_error = self.first_error or other.first_error
        self.frames += other.frames
        self.ticks_missed += other.ticks_missed
        self.latencies_s += other.latencies_s
        self.viewers_closed += other.viewers_closed
        self.last_seq_max = max(self.last_seq_max, other.last_seq_max)
        self.last_seq_sum += other.last_seq_sum
        self.cpu_s += other.cpu_s


@dataclass(slots=True)
class Run:
    """One fan-out mode at one viewer count, on its own server."""

    mode: str
    viewers: int
    viewers_connected: int = 0
    viewers_refused: int = 0
    viewers_closed: int = 0
    client_processes: int = 0
    gifts_per_s: float = 0.0
    ticks_missed: int = 0
    deliveries_per_s: float = 0.0
    frames_per_viewer_per_s: float = 0.0
    latency_ms_p50: float = 0.0
    latency_ms_p99: float = 0.0
    memory_kb_per_viewer: float = 0.0
    server_cpu_cores: float = 0.0  # server CPU s per s of the window: 1.0 is a whole core
    server_main_cpu_cores: float = 0.0  # its main process alone (the event loop's)
    server_cpu_us_per_frame: float = 0.0
    load_generator_cpu_cores: float = 0.0  # the client processes and the gifters, together
    load_average: float = 0.0  # the machine's, 1 minute, at the window's end
    gift_errors: dict[str, int] = field(default_factory=dict)
    verified: bool = False
    met: bool = False
    why: str = ""  # when not met: the first target missed, and what the server said

    def judge(self, gifts_offered_per_s: float, server_log_says_emfile: bool) -> None:
        reasons = []
        if self.viewers_refused:
            cause = f" ({EMFILE}: the server's descriptor limit)" if server_log_says_emfile else ""
            reasons.append(f"{self.viewers_refused} sockets refused{cause}")
        if self.viewers_closed:
            reasons.append(f"{self.viewers_closed} viewers cut off (slow, past the buffer limit)")
        if self.ticks_missed:
            reasons.append(f"{self.ticks_missed} ticks missed")
        every_tick_full = gifts_offered_per_s >= EVERY_TICK_FULL_GIFTS_PER_S
        if every_tick_full and self.frames_per_viewer_per_s < TICKS_PER_S * TICK_SHARE_TARGET:
            # A loop that had a whole core and still fell behind is saturated; one that had
            # less was waiting for a core the machine's other processes held.
            starved = self.server_main_cpu_cores < 0.9
            cause = (
                f"the machine is busy (load average {self.load_average}), the server waited"
                " for a core"
                if starved
                else "the server's event loop is saturated"
            )
            reasons.append(
                f"the tick stretched: {self.frames_per_viewer_per_s} frames per viewer per"
                f" second, not {TICKS_PER_S} (server at {self.server_cpu_cores} cores,"
                f" its loop at {self.server_main_cpu_cores}: {cause})"
            )
        if self.latency_ms_p99 > P99_TARGET_MS:
            reasons.append(f"gift -> viewer p99 {self.latency_ms_p99} ms > {P99_TARGET_MS:.0f}")
        if self.gifts_per_s < 0.95 * gifts_offered_per_s or self.gift_errors:
            reasons.append(f"gifts acked {self.gifts_per_s}/s, errors {self.gift_errors or 0}")
        self.met = not reasons
        self.why = "; ".join(reasons)


@dataclass(slots=True)
class FanoutBenchResult:
    # The first viewer count's tick run and its baseline, flat, as before the curve.
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
    server_cpu_us_per_frame: float = 0.0
    load_generator_cpu_cores: float = 0.0
    # Every viewer count: the tick run, and the per-event baseline beside it.
    curve: list[dict[str, Any]] = field(default_factory=list)
    baseline_curve: list[dict[str, Any]] = field(default_factory=list)
    breaks_at: int | None = None  # the first viewer count whose tick run missed a target
    breaks_why: str = ""
    verified: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- the client processes ------------------------------------------------------------------


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


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _viewers_main(
    pipe: Connection, host: str, port: int, path: str, count: int, sampled_every: int, first: int
) -> None:
    """One client process: ``count`` viewers; then obey the pipe: "start" and "stop" the
    measured window, "report" what was seen, "close"."""
    phase = Phase()
    window = [False]
    watchers = [
        _Viewer(phase, window, sampled=(first + n) % sampled_every == 0) for n in range(count)
    ]
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)

    async def one(viewer: _Viewer) -> WsClient | None:
        async with gate:
            try:
                return await connect(host, port, path, viewer.on_message)
            except (OSError, ConnectionError, TimeoutError) as exc:
                phase.refused += 1
                phase.first_error = phase.first_error or f"{type(exc).__name__}: {exc}"
                return None

    opened = await asyncio.gather(*(one(viewer) for viewer in watchers))
    clients = [(v, c) for v, c in zip(watchers, opened, strict=True) if c is not None]
    phase.viewers = len(clients)
    pipe.send(("ready", phase.viewers, phase.refused, phase.first_error))
    cpu_at_start = 0.0
    # A thread waits on the pipe: watched by the loop, its descriptor would turn non-blocking
    # and a large report could not be sent whole.
    while (order := await asyncio.to_thread(pipe.recv)) != "close":
        if order == "start":
            cpu_at_start = _cpu_s()
            window[0] = True
        elif order == "stop":
            window[0] = False
            phase.cpu_s = _cpu_s() - cpu_at_start
        elif order == "report":
            for viewer, client in clients:
                phase.last_seq_sum += max(viewer.last_seq, 0)
                phase.last_seq_max = max(phase.last_seq_max, viewer.last_seq)
                phase.viewers_closed += client.closed.done()
            pipe.send(phase)
    for _, client in clients:
        client.close()


def _viewer_process(
    pipe: Connection, host: str, port: int, path: str, count: int, sampled_every: int, first: int
) -> None:
    raise_open_files_limit()
    run(_viewers_main(pipe, host, port, path, count, sampled_every, first))


class _Audience:
    """The client processes of one run, and the pipes that steer them."""

    def __init__(self, server: Served, path: str, cfg: FanoutBenchConfig, viewers: int) -> None:
        processes = max(1, math.ceil(viewers / cfg.viewers_per_process))
        shares = [viewers // processes + (i < viewers % processes) for i in range(processes)]
        context = multiprocessing.get_context("spawn")  # no copy of a running loop
        self.pipes: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        first = 0
        for share in shares:
            mine, theirs = context.Pipe()
            process = context.Process(
                target=_viewer_process,
                args=(theirs, server.host, server.port, path, share, cfg.sample_every, first),
                daemon=True,
            )
            process.start()
            theirs.close()
            self.pipes.append(mine)
            self.processes.append(process)
            first += share

    async def ready(self) -> tuple[int, int, str]:
        answers = await asyncio.gather(*(asyncio.to_thread(p.recv) for p in self.pipes))
        return (
            sum(a[1] for a in answers),
            sum(a[2] for a in answers),
            next((a[3] for a in answers if a[3]), ""),
        )

    def tell(self, order: str) -> None:
        for pipe in self.pipes:
            pipe.send(order)

    async def report(self) -> Phase:
        self.tell("report")
        seen = Phase()
        for phase in await asyncio.gather(*(asyncio.to_thread(p.recv) for p in self.pipes)):
            seen.add(phase)
        return seen

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):  # it has gone already
                pipe.send("close")
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        for pipe in self.pipes:
            pipe.close()


# --- the gifts and one run -----------------------------------------------------------------


@dataclass(slots=True)
class _Gifts:
    acked: int = 0
    errors: dict[str, int] = field(default_factory=dict)


async def _rain(
    server: Served, room: BenchRoom, cfg: FanoutBenchConfig, gifts: _Gifts, seconds: float
) -> None:
    """Gifts at ``cfg.gifts_per_s`` from ``cfg.gifters`` sockets, paced every 10 ms."""

    def on_ack(payload: bytes) -> None:
        if payload.startswith(b'{"v":1,"ack"'):
            gifts.acked += 1
        elif payload.startswith(b'{"v":1,"error"'):
            code = orjson.loads(payload)["error"]["code"]
            gifts.errors[code] = gifts.errors.get(code, 0) + 1

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
    await asyncio.sleep(cfg.drain_seconds)  # the last gifts billed, their frames arrived
    for gifter in gifters:
        gifter.close()


async def _phase(
    server: Served, cfg: FanoutBenchConfig, viewers: int, mode: str, say: Callable[[str], None]
) -> Run:
    room = await setup_room(server.base, cfg.gifters)
    result = Run(mode=mode, viewers=viewers)
    rss_before = server.rss_kb()
    audience = _Audience(server, f"/v1/streams/{room.stream_id}/ws", cfg, viewers)
    result.client_processes = len(audience.processes)
    say(f"{mode}: connecting {viewers} viewers from {result.client_processes} client processes")
    try:
        connected, refused, first_error = await audience.ready()
        if refused:
            say(f"{mode}: {refused} sockets refused, the first: {first_error}")
        await asyncio.sleep(cfg.settle_seconds)
        memory_kb = (server.rss_kb() - rss_before) / max(connected, 1)
        say(f"{cfg.gifts_per_s} gifts/s: {cfg.warmup_seconds:.0f} s warm-up, {cfg.seconds:.0f} s")
        gifts = _Gifts()
        rain = asyncio.create_task(
            _rain(server, room, cfg, gifts, cfg.warmup_seconds + cfg.seconds)
        )
        await asyncio.sleep(cfg.warmup_seconds)
        acked_before = gifts.acked
        cpu_before, main_before, own_before = server.cpu_s(), server.main_cpu_s(), _cpu_s()
        audience.tell("start")
        await asyncio.sleep(cfg.seconds)
        audience.tell("stop")
        server_cpu = server.cpu_s() - cpu_before
        main_cpu = server.main_cpu_s() - main_before
        own_cpu = _cpu_s() - own_before
        result.load_average = round(os.getloadavg()[0], 2)
        gifts_in_window = gifts.acked - acked_before
        await rain
        seen = await audience.report()
    finally:
        audience.close()
    # Frames still owed at the end were missed too: everyone should have reached the last seq.
    owed = seen.viewers * max(seen.last_seq_max, 0) - seen.last_seq_sum
    latencies = sorted(seen.latencies_s)
    result.viewers_connected = connected
    result.viewers_refused = refused
    result.viewers_closed = seen.viewers_closed
    result.gifts_per_s = round(gifts_in_window / cfg.seconds, 1)
    result.ticks_missed = seen.ticks_missed + owed
    result.deliveries_per_s = round(seen.frames / cfg.seconds, 1)
    result.frames_per_viewer_per_s = round(seen.frames / cfg.seconds / max(connected, 1), 2)
    result.latency_ms_p50 = round(statistics.median(latencies) * 1000, 1) if latencies else 0.0
    result.latency_ms_p99 = round(percentile(latencies, 0.99) * 1000, 1)
    result.memory_kb_per_viewer = round(memory_kb, 1)
    result.server_cpu_cores = round(server_cpu / cfg.seconds, 2)
    result.server_main_cpu_cores = round(main_cpu / cfg.seconds, 2)
    result.server_cpu_us_per_frame = round(server_cpu / max(seen.frames, 1) * 1e6, 2)
    result.load_generator_cpu_cores = round((seen.cpu_s + own_cpu) / cfg.seconds, 2)
    result.gift_errors = gifts.errors
    return result


def _line(r: Run) -> str:
    verdict = "met" if r.met else f"NOT met: {r.why}"
    return (
        f"{r.mode} {r.viewers:,} viewers: {r.deliveries_per_s:,.0f} frames/s"
        f" ({r.frames_per_viewer_per_s} per viewer), {r.ticks_missed} ticks missed,"
        f" p50/p99 {r.latency_ms_p50}/{r.latency_ms_p99} ms, server {r.server_cpu_cores} cores"
        f" ({r.server_cpu_us_per_frame} us a frame), load generator"
        f" {r.load_generator_cpu_cores} cores: {verdict}"
    )


def run_fanout_bench(
    database_url: str, cfg: FanoutBenchConfig, say: Callable[[str], None]
) -> FanoutBenchResult:
    limit = raise_open_files_limit()
    say(
        f"open files: soft {limit.soft}, hard {limit.hard} a process; up to"
        f" {cfg.viewers_per_process} viewers a client process"
    )
    modes = ["tick", "per_event"] if cfg.baseline else ["tick"]
    runs: dict[str, list[Run]] = {mode: [] for mode in modes}
    for viewers in cfg.viewers:
        for mode in modes:
            env = {"GIFTWAVE_LIVE_FANOUT": mode}
            if database_url.startswith("sqlite"):
                env["GIFTWAVE_LEDGER_WRITER"] = "process"  # SQLite's writer gets the second core
            with served(database_url, "benchfanout", env=env) as server:
                say(f"{mode}: server up on {server.base} ({server.db.backend.value})")
                point = run(_phase(server, cfg, viewers, mode, say))
                emfile = server.log_says(EMFILE)
            point.verified = server.verified
            point.judge(cfg.gifts_per_s, emfile)
            runs[mode].append(point)
            say(_line(point))
    tick = runs["tick"]
    base = runs.get("per_event", [])
    first, first_base = tick[0], (base[0] if base else Run("per_event", tick[0].viewers))
    broken = next((r for r in tick if not r.met), None)
    if broken is not None:
        say(f"breaks at {broken.viewers:,} viewers: {broken.why}")
    return FanoutBenchResult(
        viewers=first.viewers,
        gifts_per_s=first.gifts_per_s,
        ticks_missed=first.ticks_missed,
        deliveries_per_s=first.deliveries_per_s,
        baseline_deliveries_per_s=first_base.deliveries_per_s,
        latency_ms_p50=first.latency_ms_p50,
        latency_ms_p99=first.latency_ms_p99,
        memory_kb_per_viewer=first.memory_kb_per_viewer,
        baseline_ticks_missed=first_base.ticks_missed,
        baseline_latency_ms_p50=first_base.latency_ms_p50,
        baseline_latency_ms_p99=first_base.latency_ms_p99,
        baseline_viewers_closed=first_base.viewers_closed,
        viewers_closed=first.viewers_closed,
        gift_errors=first.gift_errors,
        seconds=cfg.seconds,
        server_cpu_us_per_frame=first.server_cpu_us_per_frame,
        load_generator_cpu_cores=first.load_generator_cpu_cores,
        curve=[asdict(r) for r in tick],
        baseline_curve=[asdict(r) for r in base],
        breaks_at=None if broken is None else broken.viewers,
        breaks_why="" if broken is None else broken.why,
        verified=all(r.verified for r in [*tick, *base]),
    )
