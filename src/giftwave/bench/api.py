"""``giftwave bench api``: gifts through the HTTP API of a real ``giftwave serve`` process.

Viewers (registered through the API, funded by an admin grant) send Roses to one live creator
over keep-alive connections, each request awaiting its answer (closed loop). Prints gifts/s
and request latency p50/p99, then checks the ledger.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from giftwave.bench.http_load import encode_post, run_closed_loop, run_open_loop
from giftwave.bench.server import percentile, run, served, setup_room


@dataclass(slots=True)
class ApiBenchConfig:
    seconds: float = 10.0
    viewers: int = 500
    connections: int = 64
    warmup_seconds: float = 2.0
    server_workers: int = 1
    rate_per_s: float | None = None  # also an open loop at this rate: the latency users see


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


def run_api_bench(
    database_url: str, cfg: ApiBenchConfig, say: Callable[[str], None]
) -> ApiBenchResult:
    with served(database_url, "benchapi", workers=cfg.server_workers) as server:
        say(f"server up on {server.base} ({server.db.backend.value}); {cfg.viewers} viewers")
        room = run(setup_room(server.base, cfg.viewers))
        say(f"warming up {cfg.warmup_seconds:.0f} s, then measuring {cfg.seconds:.0f} s")
        for tag, seconds in (("w", cfg.warmup_seconds), ("m", cfg.seconds)):
            load = run(
                run_closed_loop(
                    server.base,
                    gift_requester(server.base, room.stream_id, room.viewer_tokens, tag),
                    connections=cfg.connections,
                    seconds=seconds,
                )
            )
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
    latencies = sorted(load.latencies_s)
    at_rate = sorted(paced.latencies_s) if paced is not None else []
    return ApiBenchResult(
        backend=server.db.backend.value,
        gifts_per_s=round(load.ok / cfg.seconds, 1),
        latency_ms_p50=round(statistics.median(latencies) * 1000, 2) if latencies else 0.0,
        latency_ms_p99=round(percentile(latencies, 0.99) * 1000, 2),
        gifts=load.ok,
        errors={str(k): v for k, v in {**load.errors, **(paced.errors if paced else {})}.items()},
        viewers=cfg.viewers,
        connections=cfg.connections,
        server_workers=cfg.server_workers,
        open_loop_rate_per_s=cfg.rate_per_s,
        open_loop_served_per_s=None if paced is None else round(paced.ok / cfg.seconds, 1),
        open_loop_latency_ms_p50=round(statistics.median(at_rate) * 1000, 2) if at_rate else None,
        open_loop_latency_ms_p99=round(percentile(at_rate, 0.99) * 1000, 2) if at_rate else None,
        verified=server.verified,
    )
