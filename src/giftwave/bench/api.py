"""``giftwave bench api``: gifts through the HTTP API of a real ``giftwave serve`` process.

Viewers (registered through the API, funded by an admin grant) send Roses to one live creator
over keep-alive connections, each request awaiting its answer (closed loop). Prints gifts/s
and request latency p50/p99, then checks the ledger.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import orjson

from giftwave.bench.http_load import encode_post, run_closed_loop
from giftwave.bench.scratch import scratch_database
from giftwave.db.engine import make_engine, migrate
from giftwave.db.urls import DatabaseUrl
from giftwave.ledger.verify import verify_ledger

ADMIN_TOKEN: Final = "bench-admin-token"
START_TIMEOUT_S: Final = 60.0


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_env(db: DatabaseUrl) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GIFTWAVE_DATABASE_URL=db.url,
        GIFTWAVE_ADMIN_TOKEN=ADMIN_TOKEN,
        GIFTWAVE_PASSWORD_TIME_COST="1",
        GIFTWAVE_PASSWORD_MEMORY_KIB="8",
    )
    return env


def _giftwave() -> list[str]:
    exe = shutil.which("giftwave") or str(Path(sys.executable).parent / "giftwave")
    return [exe]


async def _setup(base: str, viewers: int) -> tuple[str, list[str]]:
    """A live creator and ``viewers`` funded viewers; returns the stream and viewer tokens."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30.0) as client:

        async def person(n: int, role: str) -> tuple[int, str]:
            r = await client.post(
                "/v1/auth/register",
                json={
                    "handle": f"{role}{n}",
                    "email": f"{role}{n}@bench.invalid",
                    "password": "bench-password",
                    "birth_date": "1990-01-01",
                    "country": "US",
                    "role": role,
                },
            )
            r.raise_for_status()
            return int(r.json()["user"]["id"]), str(r.json()["token"])

        _, creator_token = await person(0, "creator")
        r = await client.post(
            "/v1/streams",
            json={"title": "bench"},
            headers={"Authorization": f"Bearer {creator_token}"},
        )
        r.raise_for_status()
        stream_id = str(r.json()["id"])
        sem = asyncio.Semaphore(16)

        async def viewer(n: int) -> str:
            async with sem:
                user_id, token = await person(n, "viewer")
                grant = await client.post(
                    f"/v1/admin/users/{user_id}/coins",
                    json={"coins": 1_000_000, "idempotency_key": "bench"},
                    headers=admin,
                )
                grant.raise_for_status()
                return token

        tokens = await asyncio.gather(*(viewer(n) for n in range(1, viewers + 1)))
    return stream_id, list(tokens)


def _requester(base: str, stream_id: str, tokens: list[str], tag: str) -> Callable[[int], bytes]:
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
    with scratch_database(database_url, "benchapi") as db, tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(db)
        migrate(engine)
        engine.dispose()
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [
                *_giftwave(),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(cfg.server_workers),
            ],
            env=_server_env(db),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _await_healthy(base, proc)
            say(f"server up on {base} ({db.backend.value}); setting up {cfg.viewers} viewers")
            stream_id, tokens = asyncio.run(_setup(base, cfg.viewers))
            say(f"warming up {cfg.warmup_seconds:.0f} s, then measuring {cfg.seconds:.0f} s")
            asyncio.run(
                run_closed_loop(
                    base,
                    _requester(base, stream_id, tokens, "w"),
                    connections=cfg.connections,
                    seconds=cfg.warmup_seconds,
                )
            )
            load = asyncio.run(
                run_closed_loop(
                    base,
                    _requester(base, stream_id, tokens, "m"),
                    connections=cfg.connections,
                    seconds=cfg.seconds,
                )
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
        engine = make_engine(db)
        with engine.connect() as conn:
            report = verify_ledger(conn)
        engine.dispose()
    latencies = sorted(load.latencies_s)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    return ApiBenchResult(
        backend=db.backend.value,
        gifts_per_s=round(load.ok / cfg.seconds, 1),
        latency_ms_p50=round(statistics.median(latencies) * 1000, 2) if latencies else 0.0,
        latency_ms_p99=round(p99 * 1000, 2),
        gifts=load.ok,
        errors={str(k): v for k, v in load.errors.items()},
        viewers=cfg.viewers,
        connections=cfg.connections,
        server_workers=cfg.server_workers,
        verified=report.ok,
    )


def _await_healthy(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"giftwave serve exited with {proc.returncode}")
        try:
            if httpx.get(base + "/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("giftwave serve did not become healthy")
