"""``giftwave bench ws-gifts``: gifts sent as WebSocket commands into one server process.

Each gifter is one logged-in viewer with one socket and a window of commands in flight (a
viewer tapping a Rose fast); every command is a new gift through the same economy path as the
REST endpoint. Beside it, in the same run and on the same server, the baseline: the same gifts
through ``POST /v1/streams/{id}/gifts``. Prints gifts/s and command latency for both, then
checks the ledger.

The closed loop finds the most gifts/s the server answers, but its latencies are those of the
gifts kept in flight (Little's law), not of a tap. ``--rate R`` adds an open loop: gifts offered
at a steady R per second, spread over the gifters in turn, each timed from when it was due to be
sent (not from when the load generator got to it: no coordinated omission) to its ack; every
gift must be answered. ``--find-rate`` searches for the highest steady rate whose ack p99 stays
within ``OPEN_LOOP_P99_TARGET_MS``: doubling from a start rate until a step misses, then halving
the gap, each step its own short open loop on the same sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
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
OPEN_LOOP_P99_TARGET_MS: Final = 50.0
PACE_S: Final = 0.001  # the open loop's clock: it sends what is due, then sleeps this long
ACK_WAIT_S: Final = 10.0  # after the last offer, how long every gift has to be answered
# Then, before the next step, how long the server may take to answer what is left (a missed
# step's backlog would otherwise be billed to the next step's latencies).
BACKLOG_WAIT_S: Final = 60.0


@dataclass(slots=True)
class WsGiftsBenchConfig:
    seconds: float = 10.0
    warmup_seconds: float = 3.0
    gifters: int = 1000
    window: int = 8  # commands in flight per socket
    baseline: bool = True
    closed_loop: bool = True
    rate_per_s: float | None = None  # an open loop at this steady rate
    find_rate: bool = False  # search the highest rate whose ack p99 meets the target
    find_rate_start_per_s: float = 1000.0
    step_seconds: float = 3.0  # each step of the search (after a 1 s warm-up at its rate)
    find_rate_steps: int = 10  # at most


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
    # --rate: gifts offered at a steady rate, each ack timed from when it was due.
    open_loop_rate_per_s: float | None = None
    open_loop_acked_per_s: float | None = None
    open_loop_latency_ms_p50: float | None = None
    open_loop_latency_ms_p99: float | None = None
    open_loop_unanswered: int | None = None  # offered and never answered: must be 0
    # Sockets whose one priming gift was answered before the open loop's first step.
    open_loop_primed: int | None = None
    # --find-rate: the highest steady rate whose ack p99 <= OPEN_LOOP_P99_TARGET_MS, and the
    # steps that found it ({rate_per_s, latency_ms_p50, latency_ms_p99, unanswered, met}).
    open_loop_max_rate_per_s: float | None = None
    open_loop_p99_target_ms: float = OPEN_LOOP_P99_TARGET_MS
    find_rate_steps: list[dict[str, Any]] = field(default_factory=list)
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


async def _connect(
    server: Served, room: BenchRoom, handlers: list[Callable[[bytes], None]]
) -> list[WsClient]:
    """One logged-in socket per handler, viewer n for handler n."""
    path = f"/v1/streams/{room.stream_id}/ws?ticket="
    tokens = room.viewer_tokens[: len(handlers)]
    tickets = await socket_tickets(server.base, room.stream_id, tokens)
    targets = [(path + t, h) for t, h in zip(tickets, handlers, strict=True)]
    return await connect_all(server.host, server.port, targets)


async def _websocket_phase(
    server: Served, room: BenchRoom, cfg: WsGiftsBenchConfig, say: Callable[[str], None]
) -> _Tally:
    tally = _Tally()
    gifters = [_Gifter(n, cfg.window, tally) for n in range(cfg.gifters)]
    clients = await _connect(server, room, [g.on_message for g in gifters])
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


@dataclass(slots=True)
class _Step:
    """One open-loop stretch at one rate: what was offered while measuring, and its answers."""

    rate_per_s: float
    seconds: float
    latencies_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    unanswered: int = 0

    def p(self, q: float) -> float:
        return _ms(percentile(sorted(self.latencies_s), q))

    @property
    def met(self) -> bool:
        return self.unanswered == 0 and not self.errors and self.p(0.99) <= OPEN_LOOP_P99_TARGET_MS

    def as_dict(self) -> dict[str, Any]:
        return {
            "rate_per_s": round(self.rate_per_s, 1),
            "latency_ms_p50": self.p(0.5),
            "latency_ms_p99": self.p(0.99),
            "unanswered": self.unanswered,
            "met": self.met,
        }


class _OpenLoop:
    """Gifters that send when told and time each answer from when its gift was due."""

    def __init__(self, gifters: int) -> None:
        self.due: list[dict[int, float]] = [{} for _ in range(gifters)]  # per socket: id -> due
        self.counted: set[tuple[int, int]] = set()  # (socket, id) offered while measuring
        self.step: _Step | None = None
        self.clients: list[WsClient] = []
        self.ids = itertools.count()
        self.all_answered = asyncio.Event()  # set when the last counted gift is answered
        self.outstanding = 0  # sent and not answered, counted or not
        self.idle = asyncio.Event()  # set when nothing is outstanding
        self.priming = False  # while set, each answered gift counts in primed
        self.primed = 0

    def handler(self, n: int) -> Callable[[bytes], None]:
        due, counted = self.due[n], self.counted

        def on_message(payload: bytes) -> None:
            if not (payload.startswith(ACK_PREFIX) or payload.startswith(ERROR_PREFIX)):
                return
            message = orjson.loads(payload)
            ack = message["ack"]
            when = due.pop(ack, None)
            if when is None:
                return
            self.outstanding -= 1
            if not self.outstanding:
                self.idle.set()
            if self.priming and "error" not in message:
                self.primed += 1
            if (n, ack) not in counted or self.step is None:
                return
            counted.discard((n, ack))
            if not counted:
                self.all_answered.set()
            if "error" in message:
                code = message["error"]["code"]
                self.step.errors[code] = self.step.errors.get(code, 0) + 1
            else:
                self.step.latencies_s.append(time.perf_counter() - when)

        return on_message

    def _send(self, n: int, due_at: float, tag: str, counted: bool) -> None:
        i = next(self.ids)
        self.due[n][i] = due_at
        self.outstanding += 1
        self.idle.clear()
        if counted:
            self.counted.add((n, i))
        command = {"id": i, "cmd": "send_gift", "gift_id": "rose", "idempotency_key": f"{tag}{i}"}
        self.clients[n].send_text(orjson.dumps(command))

    async def prime(self) -> int:
        """One gift from every socket, each answered (or ``BACKLOG_WAIT_S`` passed): the
        server then knows every gifter (session, wallet, debt, ban gate, spending profile) as
        in a room that has been going, so the steps measure a steady rate, not a thousand
        first gifts at once (on PostgreSQL their reads took 1.5 s and spilled into the
        measured window). The sockets whose gift was answered."""
        self.priming = True
        for n in range(len(self.clients)):
            self._send(n, time.perf_counter(), "p", counted=False)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.idle.wait(), BACKLOG_WAIT_S)
        self.priming = False
        return self.primed

    async def offer(self, rate: float, warmup_s: float, seconds: float, tag: str) -> _Step:
        """``rate`` gifts/s for ``warmup_s`` (not counted) and then ``seconds``; then wait for
        every counted gift's answer (at most ``ACK_WAIT_S``), and for the server to catch up
        with the rest (at most ``BACKLOG_WAIT_S``)."""
        step = _Step(rate, seconds)
        self.step = step
        sockets = len(self.clients)
        start = time.perf_counter()
        measure_from = start + warmup_s
        total = int((warmup_s + seconds) * rate)
        k = 0
        while k < total:
            due_now = min(int((time.perf_counter() - start) * rate) + 1, total)
            while k < due_now:
                when = start + k / rate  # when this gift was due, whenever it goes out
                self._send(k % sockets, when, tag, counted=when >= measure_from)
                k += 1
            await asyncio.sleep(PACE_S)
        if self.counted:
            self.all_answered.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_answered.wait(), ACK_WAIT_S)
        step.unanswered = len(self.counted)
        self.counted.clear()
        self.step = None
        if self.outstanding:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.idle.wait(), BACKLOG_WAIT_S)
        return step


async def _open_loop_phase(
    server: Served, room: BenchRoom, cfg: WsGiftsBenchConfig, say: Callable[[str], None]
) -> tuple[int, _Step | None, list[_Step]]:
    """(sockets primed, the step at ``--rate``, the search's steps)."""
    loop = _OpenLoop(cfg.gifters)
    loop.clients = await _connect(server, room, [loop.handler(n) for n in range(cfg.gifters)])
    fixed = None
    primed = await loop.prime()
    say(f"primed: {primed} of {cfg.gifters} sockets' first gifts answered")
    if cfg.rate_per_s is not None:
        say(f"open loop: {cfg.rate_per_s:,.0f} gifts/s from {cfg.gifters} sockets")
        fixed = await loop.offer(cfg.rate_per_s, cfg.warmup_seconds, cfg.seconds, "o")
        say(_step_line(fixed))
    steps: list[_Step] = []
    if cfg.find_rate:
        good, bad = 0.0, float("inf")
        rate = cfg.find_rate_start_per_s
        for s in range(cfg.find_rate_steps):
            step = await loop.offer(rate, 1.0, cfg.step_seconds, f"s{s}-")
            steps.append(step)
            say("find-rate: " + _step_line(step))
            if step.met:
                good = rate
            else:
                bad = rate
            if bad - good <= max(100.0, good * 0.05):
                break
            rate = rate * 2 if bad == float("inf") else (good + bad) / 2
            await asyncio.sleep(1.0)  # let a missed step's backlog clear
    for client in loop.clients:
        client.close()
    return primed, fixed, steps


def _step_line(step: _Step) -> str:
    return (
        f"{step.rate_per_s:,.0f} gifts/s offered: ack p50 {step.p(0.5)} ms, p99 {step.p(0.99)}"
        f" ms, {len(step.latencies_s) / step.seconds:,.0f}/s acked, {step.unanswered}"
        f" unanswered, errors {step.errors or 'none'}"
    )


def run_ws_gifts_bench(
    database_url: str, cfg: WsGiftsBenchConfig, say: Callable[[str], None]
) -> WsGiftsBenchResult:
    raise_open_files_limit()
    env = {"GIFTWAVE_LEDGER_WRITER": "process"} if database_url.startswith("sqlite") else {}
    with served(database_url, "benchwsgifts", env=env) as server:
        say(f"server up on {server.base} ({server.db.backend.value}); {cfg.gifters} viewers")
        room = run(setup_room(server.base, cfg.gifters))
        tally = run(_websocket_phase(server, room, cfg, say)) if cfg.closed_loop else _Tally()
        primed: int | None = None
        fixed: _Step | None = None
        steps: list[_Step] = []
        if cfg.rate_per_s is not None or cfg.find_rate:
            primed, fixed, steps = run(_open_loop_phase(server, room, cfg, say))
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
    met = [step.rate_per_s for step in steps if step.met]
    result = WsGiftsBenchResult(
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
        open_loop_max_rate_per_s=round(max(met), 1) if met else (0.0 if steps else None),
        open_loop_primed=primed,
        find_rate_steps=[step.as_dict() for step in steps],
    )
    if fixed is not None:
        result.open_loop_rate_per_s = fixed.rate_per_s
        result.open_loop_acked_per_s = round(len(fixed.latencies_s) / fixed.seconds, 1)
        result.open_loop_latency_ms_p50 = fixed.p(0.5)
        result.open_loop_latency_ms_p99 = fixed.p(0.99)
        result.open_loop_unanswered = fixed.unanswered
        for code, count in fixed.errors.items():
            result.errors[code] = result.errors.get(code, 0) + count
    return result


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)
