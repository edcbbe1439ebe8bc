"""``giftwave bench api``: gifts through the HTTP API of a real ``giftwave serve`` process.

Viewers (registered through the API, funded by an admin grant) send Roses to one live creator
over keep-alive connections, each request awaiting its answer (closed loop). Prints gifts/s,
request latency p50/p99 and the server's CPU time per gift, then checks the ledger.

``--observability-baseline`` measures what request ids and HTTP metrics cost: a second server
with ``GIFTWAVE_OBSERVABILITY=false`` runs beside the measured one, and the measured phase is
cut in rounds that alternate between the two (off, on, on, off, ...), so drift in the
machine's speed falls on both sides alike. Each side's figure is the median of its rounds.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import orjson

from giftwave.bench.http_load import LoadResult, encode_post, run_closed_loop, run_open_loop
from giftwave.bench.server import BenchRoom, Served, percentile, run, served, setup_room

OBSERVABILITY_OFF: Final = {"GIFTWAVE_OBSERVABILITY": "false"}


@dataclass(slots=True)
class ApiBenchConfig:
    seconds: float = 10.0
    viewers: int = 500
    connections: int = 64
    warmup_seconds: float = 2.0
    server_workers: int = 1
    rate_per_s: float | None = None  # also an open loop at this rate: the latency users see
    # Also a server with observability off, in alternating rounds (0: no such baseline).
    observability_rounds: int = 0


@dataclass(slots=True)
class ApiBenchResult:
    backend: str
    gifts_per_s: float
    latency_ms_p50: float
    latency_ms_p99: float
    gifts: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    viewers: int = 0
    connections: int = 0
    server_workers: int = 1
    # At ``open_loop_rate_per_s`` (when asked), each latency timed from when the gift was due.
    open_loop_rate_per_s: float | None = None
    open_loop_served_per_s: float | None = None
    open_loop_latency_ms_p50: float | None = None
    open_loop_latency_ms_p99: float | None = None
    cpu_us_per_gift: float = 0.0  # the server's CPU time (all its threads) per gift answered
    # With --observability-baseline: the same figures, medians of rounds, with it off.
    observability_off_gifts_per_s: float | None = None
    observability_off_cpu_us_per_gift: float | None = None
    observability_cost_pct: float | None = None  # CPU per gift, on over off, less 100%
    # Each round's CPU per gift, in the order run, on and off: how far the medians can be trusted.
    cpu_us_per_gift_rounds: list[float] = field(default_factory=list)
    observability_off_cpu_us_per_gift_rounds: list[float] = field(default_factory=list)
    verified: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def gift_requester(
    base: str, stream_id: str, tokens: list[str], tag: str
) -> Callable[[int], bytes]:
    host = base.removeprefix("http://")
    path = f"/v1/streams/{stream_id}/gifts"

    def make(n: int) -> bytes:
        body = orjson.dumps({"gift_id": "rose", "count": 1, "idempotency_key": f"{tag}{n}"})
        headers = {
            "Authorization": f"Bearer {tokens[n % len(tokens)]}",
            "Content-Type": "application/json",
        }
        return encode_post(host, path, body, headers)

    return make


@dataclass(slots=True)
class _Phase:
    """One measured stretch against one server: its gifts and the server's CPU time."""

    load: LoadResult
    cpu_s: float

    def cpu_us_per_gift(self) -> float:
        return self.cpu_s / self.load.ok * 1e6 if self.load.ok else 0.0


def _measure(server: Served, room: BenchRoom, tag: str, seconds: float, connections: int) -> _Phase:
    cpu_before = server.cpu_s()
    load = run(
        run_closed_loop(
            server.base,
            gift_requester(server.base, room.stream_id, room.viewer_tokens, tag),
            connections=connections,
            seconds=seconds,
        )
    )
    return _Phase(load, server.cpu_s() - cpu_before)


def _alternating(rounds: int) -> Iterator[tuple[int, bool]]:
    """(round, observability on?): off, on, then on, off, ... so neither side always goes first."""
    for r in range(rounds):
        yield from ((r, r % 2 == 1), (r, r % 2 == 0))


def run_api_bench(
    database_url: str, cfg: ApiBenchConfig, say: Callable[[str], None]
) -> ApiBenchResult:
    with ExitStack() as stack:
        server = stack.enter_context(served(database_url, "benchapi", workers=cfg.server_workers))
        say(f"server up on {server.base} ({server.db.backend.value}); {cfg.viewers} viewers")
        room = run(setup_room(server.base, cfg.viewers))
        sides = {True: (server, room)}  # observability on: the server measured
        if cfg.observability_rounds:
            off = stack.enter_context(
                served(
                    database_url, "benchapioff", workers=cfg.server_workers, env=OBSERVABILITY_OFF
                )
            )
            say(f"baseline server, observability off, on {off.base}")
            sides[False] = (off, run(setup_room(off.base, cfg.viewers)))
        say(f"warming up {cfg.warmup_seconds:.0f} s, then measuring {cfg.seconds:.0f} s")
        for side in sides.values():
            _measure(*side, "w", cfg.warmup_seconds, cfg.connections)
        phases: dict[bool, list[_Phase]] = {True: [], False: []}
        if not cfg.observability_rounds:
            phases[True].append(_measure(server, room, "m", cfg.seconds, cfg.connections))
        seconds = cfg.seconds / max(cfg.observability_rounds, 1)
        for r, observed in _alternating(cfg.observability_rounds):
            phases[observed].append(_measure(*sides[observed], f"m{r}-", seconds, cfg.connections))
        paced = None
        if cfg.rate_per_s is not None:
            say(f"an open loop at {cfg.rate_per_s:,.0f} gifts/s: the latency at that rate")
            paced = run(
                run_open_loop(
                    server.base,
                    gift_requester(server.base, room.stream_id, room.viewer_tokens, "o"),
                    rate_per_s=cfg.rate_per_s,
                    connections=cfg.connections,
                    seconds=cfg.seconds,
                )
            )
    on_phases, off_phases = phases[True], phases[False]
    phase_seconds = cfg.seconds / len(on_phases)
    latencies = sorted(x for phase in on_phases for x in phase.load.latencies_s)
    at_rate = sorted(paced.latencies_s) if paced is not None else []
    ok = sum(phase.load.ok for phase in on_phases)
    errors: dict[str, int] = {}
    for load in [*(p.load for p in on_phases), *([paced] if paced else [])]:
        for key, count in load.errors.items():
            errors[str(key)] = errors.get(str(key), 0) + count
    cpu_on = statistics.median(p.cpu_us_per_gift() for p in on_phases)
    result = ApiBenchResult(
        backend=server.db.backend.value,
        gifts_per_s=round(statistics.median(p.load.ok for p in on_phases) / phase_seconds, 1),
        latency_ms_p50=round(statistics.median(latencies) * 1000, 2) if latencies else 0.0,
        latency_ms_p99=round(percentile(latencies, 0.99) * 1000, 2),
        gifts=ok,
        errors=errors,
        viewers=cfg.viewers,
        connections=cfg.connections,
        server_workers=cfg.server_workers,
        open_loop_rate_per_s=cfg.rate_per_s,
        open_loop_served_per_s=None if paced is None else round(paced.ok / cfg.seconds, 1),
        open_loop_latency_ms_p50=round(statistics.median(at_rate) * 1000, 2) if at_rate else None,
        open_loop_latency_ms_p99=round(percentile(at_rate, 0.99) * 1000, 2) if at_rate else None,
        cpu_us_per_gift=round(cpu_on, 1),
        verified=all(side.verified for side, _ in sides.values()),
    )
    if off_phases:
        cpu_off = statistics.median(p.cpu_us_per_gift() for p in off_phases)
        result.observability_off_gifts_per_s = round(
            statistics.median(p.load.ok for p in off_phases) / phase_seconds, 1
        )
        result.observability_off_cpu_us_per_gift = round(cpu_off, 1)
        result.cpu_us_per_gift_rounds = [round(p.cpu_us_per_gift(), 1) for p in on_phases]
        result.observability_off_cpu_us_per_gift_rounds = [
            round(p.cpu_us_per_gift(), 1) for p in off_phases
        ]
        result.observability_cost_pct = round((cpu_on / cpu_off - 1) * 100, 1) if cpu_off else None
    return result
