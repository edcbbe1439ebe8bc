"""``giftwave bench api``: gifts through the HTTP API of a real ``giftwave serve`` process.

Viewers (registered through the API, funded by an admin grant) send Roses to one live creator
over keep-alive connections, each request awaiting its answer (closed loop). Prints gifts/s,
request latency p50/p99 and the server's CPU time per gift, then checks the ledger.

The baseline, in the same run: a bare FastAPI endpoint taking the same body on the same uvicorn
options (``bench/bare_api.py``), loaded by the same client with the same requests; the ratio
says how close a gift comes to the framework's own ceiling. ``--rate R`` (or
``--rate-fraction F``, F times this run's maximum) then times gifts offered at a steady rate,
each from when it was due, on both.

``--observability-baseline`` measures what request ids and HTTP metrics cost: a second server
with ``GIFTWAVE_OBSERVABILITY=false`` runs beside the measured one, and the measured phase is
cut in rounds that alternate between the two (off, on, on, off, ...), so drift in the
machine's speed falls on both sides alike. Each side's figure is the median of its rounds.

``--against SRC`` is "before and after, side by side in one run": a second server from another
checkout's ``src`` (an earlier commit: ``git worktree add ../before <rev>``), on a database its
own migrations made, with a room set up the same way, in rounds alternating with the measured
one like the above (``--rounds``, 6 by default with it), each round after a pause in which
both servers' background work settles. ``against_ratio`` is the median of the rounds' ratios,
each this server's gifts/s over the other's in the next-door round: on these machines, whose
speed moves by tens of percent from one minute to the next, separate runs cannot tell 5%.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import orjson

from giftwave.bench.http_load import LoadResult, encode_post, run_closed_loop, run_open_loop
from giftwave.bench.server import (
    BenchRoom,
    Served,
    ServerProcess,
    bare_served,
    percentile,
    run,
    served,
    setup_room,
)

OBSERVABILITY_OFF: Final = {"GIFTWAVE_OBSERVABILITY": "false"}
# The measured server, observability off, the bare app, another checkout's server.
ON, OFF, BARE, AGAINST = "on", "off", "bare", "against"
AGAINST_ROUNDS: Final = 6
# Before each round against another checkout: every follower of the side just measured runs
# once more (club points, the slowest, every 2 s), so none of its work falls in the next round.
SETTLE_S: Final = 2.5


@dataclass(slots=True)
class ApiBenchConfig:
    seconds: float = 10.0
    viewers: int = 500
    connections: int = 64
    warmup_seconds: float = 2.0
    server_workers: int = 1
    rate_per_s: float | None = None  # also an open loop at this rate: the latency users see
    # Or at this fraction of the run's own closed-loop gifts/s (0.5: half of the maximum).
    rate_fraction: float | None = None
    # A bare FastAPI endpoint taking the same body (bench/bare_api.py), in the same rounds.
    bare_baseline: bool = True
    # Also a server with observability off, in alternating rounds (0: no such baseline).
    observability_rounds: int = 0
    # Also a server from another checkout's src directory, in alternating rounds.
    against: str | None = None
    rounds: int | None = None  # None: 1, or AGAINST_ROUNDS with ``against``
    settle_s: float = SETTLE_S  # the pause before each round, with ``against``


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
    # The bare FastAPI endpoint's figures, same client, same rounds; the ratio is gifts/s
    # over the bare endpoint's (1.0: a gift costs no more than the framework's ceiling).
    baseline_gifts_per_s: float | None = None
    baseline_ratio: float | None = None
    baseline_latency_ms_p50: float | None = None
    baseline_latency_ms_p99: float | None = None
    baseline_cpu_us_per_gift: float | None = None
    baseline_errors: dict[str, int] = field(default_factory=dict)
    baseline_open_loop_latency_ms_p50: float | None = None  # at open_loop_rate_per_s
    baseline_open_loop_latency_ms_p99: float | None = None
    # With --against: the other checkout's server, medians of its rounds, and the median of
    # the rounds' ratios (this server's gifts/s over the other's, round by round).
    against_source: str | None = None
    against_gifts_per_s: float | None = None
    against_ratio: float | None = None
    against_ratio_rounds: list[float] = field(default_factory=list)
    against_latency_ms_p50: float | None = None
    against_latency_ms_p99: float | None = None
    against_cpu_us_per_gift: float | None = None
    against_errors: dict[str, int] = field(default_factory=dict)
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


def _measure(
    server: ServerProcess, room: BenchRoom, tag: str, seconds: float, connections: int
) -> _Phase:
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


def _paced(
    server: ServerProcess, room: BenchRoom, tag: str, rate: float, cfg: ApiBenchConfig
) -> LoadResult:
    return run(
        run_open_loop(
            server.base,
            gift_requester(server.base, room.stream_id, room.viewer_tokens, tag),
            rate_per_s=rate,
            connections=cfg.connections,
            seconds=cfg.seconds,
        )
    )


def _alternating(sides: list[str], rounds: int) -> Iterator[tuple[int, str]]:
    """(round, side): the sides in order, then in reverse, ... so none always goes first."""
    for r in range(rounds):
        yield from ((r, side) for side in (sides if r % 2 == 0 else sides[::-1]))


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def run_api_bench(
    database_url: str, cfg: ApiBenchConfig, say: Callable[[str], None]
) -> ApiBenchResult:
    with ExitStack() as stack:
        server = stack.enter_context(served(database_url, "benchapi", workers=cfg.server_workers))
        say(f"server up on {server.base} ({server.db.backend.value}); {cfg.viewers} viewers")
        room = run(setup_room(server.base, cfg.viewers))
        # Each side: the server and the room its gifts go to. "on" is the server measured.
        sides: dict[str, tuple[ServerProcess, BenchRoom]] = {ON: (server, room)}
        servers: list[Served] = [server]
        if cfg.observability_rounds:
            off = stack.enter_context(
                served(
                    database_url, "benchapioff", workers=cfg.server_workers, env=OBSERVABILITY_OFF
                )
            )
            say(f"baseline server, observability off, on {off.base}")
            sides[OFF] = (off, run(setup_room(off.base, cfg.viewers)))
            servers.append(off)
        if cfg.against is not None:
            other = stack.enter_context(
                served(
                    database_url,
                    "benchapiagainst",
                    workers=cfg.server_workers,
                    source=cfg.against,
                )
            )
            say(f"against: a server from {cfg.against}, on {other.base}")
            sides[AGAINST] = (other, run(setup_room(other.base, cfg.viewers)))
            servers.append(other)
        if cfg.bare_baseline:
            bare = stack.enter_context(bare_served())
            say(f"baseline: a bare FastAPI endpoint taking the same body, on {bare.base}")
            sides[BARE] = (bare, room)  # the same requests: the bare app ignores who sends them
        say(f"warming up {cfg.warmup_seconds:.0f} s, then measuring {cfg.seconds:.0f} s")
        for target, target_room in sides.values():
            _measure(target, target_room, "w", cfg.warmup_seconds, cfg.connections)
        rounds = cfg.rounds or (AGAINST_ROUNDS if cfg.against is not None else 1)
        rounds = max(cfg.observability_rounds, rounds)
        phases: dict[str, list[_Phase]] = {side: [] for side in sides}
        seconds = cfg.seconds / rounds
        for r, side in _alternating([s for s in (BARE, OFF, AGAINST, ON) if s in sides], rounds):
            if AGAINST in sides:
                time.sleep(cfg.settle_s)
            phases[side].append(_measure(*sides[side], f"m{r}-", seconds, cfg.connections))
        gifts_per_s = statistics.median(p.load.ok for p in phases[ON]) / seconds
        rate = cfg.rate_per_s
        if rate is None and cfg.rate_fraction is not None:
            rate = round(gifts_per_s * cfg.rate_fraction, 1)
        paced = bare_paced = None
        if rate is not None:
            say(f"an open loop at {rate:,.0f} gifts/s: the latency at that rate")
            paced = _paced(server, room, "o", rate, cfg)
            if BARE in sides:
                bare_paced = _paced(*sides[BARE], "o", rate, cfg)
    on_phases = phases[ON]
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
        gifts_per_s=round(gifts_per_s, 1),
        latency_ms_p50=_ms(statistics.median(latencies)) if latencies else 0.0,
        latency_ms_p99=_ms(percentile(latencies, 0.99)),
        gifts=ok,
        errors=errors,
        viewers=cfg.viewers,
        connections=cfg.connections,
        server_workers=cfg.server_workers,
        open_loop_rate_per_s=rate,
        open_loop_served_per_s=None if paced is None else round(paced.ok / cfg.seconds, 1),
        open_loop_latency_ms_p50=_ms(statistics.median(at_rate)) if at_rate else None,
        open_loop_latency_ms_p99=_ms(percentile(at_rate, 0.99)) if at_rate else None,
        cpu_us_per_gift=round(cpu_on, 1),
        verified=all(s.verified for s in servers),
    )
    if OFF in phases:
        off_phases = phases[OFF]
        cpu_off = statistics.median(p.cpu_us_per_gift() for p in off_phases)
        result.observability_off_gifts_per_s = round(
            statistics.median(p.load.ok for p in off_phases) / seconds, 1
        )
        result.observability_off_cpu_us_per_gift = round(cpu_off, 1)
        result.cpu_us_per_gift_rounds = [round(p.cpu_us_per_gift(), 1) for p in on_phases]
        result.observability_off_cpu_us_per_gift_rounds = [
            round(p.cpu_us_per_gift(), 1) for p in off_phases
        ]
        result.observability_cost_pct = round((cpu_on / cpu_off - 1) * 100, 1) if cpu_off else None
    if BARE in phases:
        base = _figures(phases[BARE], seconds)
        result.baseline_gifts_per_s = round(base.gifts_per_s, 1)
        result.baseline_ratio = (
            round(gifts_per_s / base.gifts_per_s, 3) if base.gifts_per_s else None
        )
        result.baseline_latency_ms_p50 = base.latency_ms_p50
        result.baseline_latency_ms_p99 = base.latency_ms_p99
        result.baseline_cpu_us_per_gift = base.cpu_us_per_gift
        result.baseline_errors = base.errors
    if AGAINST in phases:
        _against(result, phases[ON], phases[AGAINST], seconds, cfg.against)
    if bare_paced is not None and bare_paced.latencies_s:
        at = sorted(bare_paced.latencies_s)
        result.baseline_open_loop_latency_ms_p50 = _ms(statistics.median(at))
        result.baseline_open_loop_latency_ms_p99 = _ms(percentile(at, 0.99))
    return result


@dataclass(slots=True)
class _Figures:
    """A baseline side's figures over its rounds: medians, and its latencies all together."""

    gifts_per_s: float  # not rounded: ratios are taken of it
    latency_ms_p50: float | None  # None: no gift answered
    latency_ms_p99: float
    cpu_us_per_gift: float
    errors: dict[str, int]


def _figures(phases: list[_Phase], seconds: float) -> _Figures:
    latencies = sorted(x for phase in phases for x in phase.load.latencies_s)
    return _Figures(
        gifts_per_s=statistics.median(p.load.ok for p in phases) / seconds,
        latency_ms_p50=_ms(statistics.median(latencies)) if latencies else None,
        latency_ms_p99=_ms(percentile(latencies, 0.99)),
        cpu_us_per_gift=round(statistics.median(p.cpu_us_per_gift() for p in phases), 1),
        errors={str(k): v for p in phases for k, v in p.load.errors.items()},
    )


def _against(
    result: ApiBenchResult,
    on: list[_Phase],
    other: list[_Phase],
    seconds: float,
    source: str | None,
) -> None:
    """The other checkout's figures, and the rounds' ratios: round r of each side ran next to
    the other's round r (``_alternating``), so each ratio compares two stretches of the same
    minute of the machine."""
    figures = _figures(other, seconds)
    ratios = [round(a.load.ok / b.load.ok, 3) for a, b in zip(on, other, strict=True) if b.load.ok]
    result.against_source = source
    result.against_gifts_per_s = round(figures.gifts_per_s, 1)
    result.against_ratio = round(statistics.median(ratios), 3) if ratios else None
    result.against_ratio_rounds = ratios
    result.against_latency_ms_p50 = figures.latency_ms_p50
    result.against_latency_ms_p99 = figures.latency_ms_p99
    result.against_cpu_us_per_gift = figures.cpu_us_per_gift
    result.against_errors = figures.errors
