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

from giftwave.bench.http_load import encode_post, run_closed_loop
from giftwave.bench.server import percentile, run, served, setup_room


@dataclass(slots=True)
class ApiBenchConfig:
    seconds: float = 10.0
    viewers: int = 500
    connections: int = 64
    warmup_seconds: float = 2.0
    server_workers: int = 1


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
    latencies = sorted(load.latencies_s)
    return ApiBenchResult(
        backend=server.db.backend.value,
        gifts_per_s=round(load.ok / cfg.seconds, 1),
        latency_ms_p50=round(statistics.median(latencies) * 1000, 2) if latencies else 0.0,
        latency_ms_p99=round(percentile(latencies, 0.99) * 1000, 2),
        gifts=load.ok,
        errors={str(k): v for k, v in load.errors.items()},
        viewers=cfg.viewers,
        connections=cfg.connections,
        server_workers=cfg.server_workers,
        verified=server.verified,
    )
