"""``giftwave bench sharing``: the share-link redirect on a real server, beside a bare health
check on the same server and load (what any request costs there); then the trending
recomputation and the watermark render, each with the baseline of its own benchmark.

A redirect is the full path a person's click takes: the code looked up (cached), the visit
queued for its batch writer, the attribution cookie signed, a 302 to the stream. Each request
comes from a new anonymous visitor (another User-Agent), so visits are not deduplicated away.

Two loads (bench/http_load.py): a closed loop finds how many redirects a second the server
serves; an open loop at the target rate (5,000/s) gives the latency a visitor sees at that
rate, timed from when each request was due. The closed loop's own latencies are those of a
saturated server (64 connections queued) and are reported beside, as ``saturated_*``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from giftwave.bench.http_load import LoadResult, encode_get, run_closed_loop, run_open_loop
from giftwave.bench.server import percentile, run, served, setup_room
from giftwave.bench.trending import run_trending_bench
from giftwave.bench.watermark import run_watermark_bench


@dataclass(slots=True)
class SharingBenchConfig:
    seconds: float = 8.0
    connections: int = 64
    warmup_seconds: float = 2.0
    rate_per_s: float = 5000.0  # the open loop's rate: the target
    watermark: bool = True


@dataclass(slots=True)
class SharingBenchResult:
    redirects_per_s: float  # closed loop: the most served
    redirect_latency_ms_p50: float  # open loop, at ``open_loop_rate_per_s``
    redirect_latency_ms_p99: float
    open_loop_rate_per_s: float
    open_loop_served_per_s: float
    saturated_latency_ms_p50: float  # closed loop: a saturated server's queue
    saturated_latency_ms_p99: float
    baseline_healthz_per_s: float  # the same server and load, answering GET /healthz
    redirect_cost_ratio: float  # healthz/s over redirects/s: what a redirect costs beyond nothing
    visits_recorded: int  # of every redirect answered, in all three loads
    redirects_answered: int
    trending_100k_events_s: float
    trending_baseline_full_rescan_s: float
    watermark_speed_x_realtime: float | None
    errors: dict[str, int]
    verified: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _per_s(load: LoadResult, seconds: float) -> float:
    return round(load.ok / seconds, 1)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _visits_once_written(base: str, token: str, answered: int) -> int:
    """The sharer's recorded visits, once the batch writer has caught up with every redirect
    answered (or 10 s have passed): each answered redirect is a visit, none twice."""
    with httpx.Client(base_url=base, timeout=30) as http:
        deadline = time.monotonic() + 10
        while True:
            reach = http.get("/v1/me/reach", headers={"Authorization": f"Bearer {token}"})
            reach.raise_for_status()
            visits = int(reach.json()["visits"])
            if visits >= answered or time.monotonic() > deadline:
                return visits
            time.sleep(0.1)


def run_sharing_bench(
    database_url: str, cfg: SharingBenchConfig, say: Callable[[str], None]
) -> SharingBenchResult:
    with served(database_url, "benchshare") as server:
        room = run(setup_room(server.base, 1))
        host = server.base.removeprefix("http://")
        with httpx.Client(base_url=server.base, timeout=30) as http:
            r = http.post(
                "/v1/shares",
                json={"target_kind": "stream", "target_id": room.stream_id, "channel": "copy"},
                headers={"Authorization": f"Bearer {room.viewer_tokens[0]}"},
            )
            r.raise_for_status()
            code = str(r.json()["code"])

        def redirect(n: int) -> bytes:
            return encode_get(host, f"/s/{code}", {"User-Agent": f"bench-visitor/{n}"})

        def healthz(_: int) -> bytes:
            return encode_get(host, "/healthz")

        say(f"server up on {server.base}; /s/{code}: {cfg.connections} connections")
        loads = [
            run(
                run_closed_loop(
                    server.base,
                    redirect,
                    connections=cfg.connections,
                    seconds=seconds,
                    ok=lambda status: status == 302,
                )
            )
            for seconds in (cfg.warmup_seconds, cfg.seconds)
        ]
        load = loads[-1]
        say(f"an open loop at {cfg.rate_per_s:,.0f} redirects/s: the latency at that rate")
        paced = run(
            run_open_loop(
                server.base,
                redirect,
                rate_per_s=cfg.rate_per_s,
                connections=cfg.connections,
                seconds=cfg.seconds,
                ok=lambda status: status == 302,
            )
        )
        say("the same closed loop on GET /healthz (baseline)")
        base = run(
            run_closed_loop(server.base, healthz, connections=cfg.connections, seconds=cfg.seconds)
        )
        answered = sum(x.ok for x in loads) + paced.ok
        visits = _visits_once_written(server.base, room.viewer_tokens[0], answered)
    say("trending: 100,000 events")
    trending = run_trending_bench(say, repeat=1)
    speed = None
    if cfg.watermark:
        say("watermark: a 30 s 720p clip")
        speed = run_watermark_bench(say, 1).watermark_speed_x_realtime
    saturated = sorted(load.latencies_s)
    at_rate = sorted(paced.latencies_s)
    redirects = _per_s(load, cfg.seconds)
    return SharingBenchResult(
        redirects_per_s=redirects,
        redirect_latency_ms_p50=_ms(statistics.median(at_rate)),
        redirect_latency_ms_p99=_ms(percentile(at_rate, 0.99)),
        open_loop_rate_per_s=cfg.rate_per_s,
        open_loop_served_per_s=_per_s(paced, cfg.seconds),
        saturated_latency_ms_p50=_ms(statistics.median(saturated)),
        saturated_latency_ms_p99=_ms(percentile(saturated, 0.99)),
        baseline_healthz_per_s=_per_s(base, cfg.seconds),
        redirect_cost_ratio=round(_per_s(base, cfg.seconds) / max(redirects, 1e-9), 2),
        visits_recorded=visits,
        redirects_answered=answered,
        trending_100k_events_s=trending.trending_100k_events_s,
        trending_baseline_full_rescan_s=trending.baseline_full_rescan_s,
        watermark_speed_x_realtime=speed,
        errors={str(k): v for k, v in {**load.errors, **paced.errors, **base.errors}.items()},
        verified=server.verified and trending.verified and visits == answered,
    )
