"""A small HTTP/1.1 load generator: keep-alive connections, pre-encoded requests.

httpx costs several hundred microseconds of CPU per request, which on a 2-core machine would
measure the client instead of the server; this writes bytes and reads one response per
request, nothing else.

Two ways to load: a closed loop (each connection sends its next request when the last one
answered) finds the most a server serves, and its latencies are those of a saturated server,
as long as the queue the connections make (Little's law: connections / throughput). An open
loop sends at a fixed rate whatever the answers do, and times each request from when it was
due, not from when it could be sent (no coordinated omission): the latency a user sees at that
rate, which is what a target such as "5,000/s with p99 <= 20 ms" asks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

HEADER_LIMIT_BYTES: Final = 64 * 1024


@dataclass(slots=True)
class LoadResult:
    ok: int = 0
    errors: dict[int, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)


def encode_get(host: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def encode_post(host: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > HEADER_LIMIT_BYTES:
        raise ValueError("response headers too large")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def run_closed_loop(
    base_url: str,
    make_request: Callable[[int], bytes],
    *,
    connections: int,
    seconds: float,
    ok: Callable[[int], bool] = lambda status: 200 <= status < 300,
) -> LoadResult:
    """``connections`` clients, each sending the next request when the last one answered;
    an answer counts as served when ``ok(status)`` (a redirect benchmark expects 302)."""
    return await _run(
        base_url,
        make_request,
        connections=connections,
        ok=ok,
        end=time.perf_counter() + seconds,
        due=lambda _k, _previous: time.perf_counter(),  # now: the last answer has come
    )


async def run_open_loop(
    base_url: str,
    make_request: Callable[[int], bytes],
    *,
    rate_per_s: float,
    connections: int,
    seconds: float,
    ok: Callable[[int], bool] = lambda status: 200 <= status < 300,
) -> LoadResult:
    """``rate_per_s`` requests a second spread over ``connections`` keep-alive connections,
    each due at a fixed time; a latency runs from when its request was due to its answer, so a
    server that falls behind shows it in every request queued behind the late one."""
    interval = connections / rate_per_s  # between two requests of one connection
    start = time.perf_counter() + 0.05  # every connection open before then

    def due(k: int, previous: float | None) -> float:
        if previous is None:
            return start + k * interval / connections  # the connections take turns evenly
        return previous + interval

    return await _run(
        base_url, make_request, connections=connections, ok=ok, end=start + seconds, due=due
    )


async def _run(
    base_url: str,
    make_request: Callable[[int], bytes],
    *,
    connections: int,
    ok: Callable[[int], bool],
    end: float,
    due: Callable[[int, float | None], float],
) -> LoadResult:
    """``connections`` keep-alive clients; client ``k`` sends its next request when
    ``due(k, when the last one was due)`` says (None before the first), until ``end``, and
    times each from when it was due. Times are ``time.perf_counter``'s: uvloop's ``loop.time()``
    is the loop's cached clock, in whole milliseconds, too coarse for a 2 ms answer."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    result = LoadResult()
    counter = iter(range(1 << 62))

    async def client(k: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        when: float | None = None
        try:
            while True:
                request = make_request(next(counter))
                when = due(k, when)
                if when >= end:
                    return
                wait = when - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(request)
                status = await _read_response(reader)
                result.latencies_s.append(time.perf_counter() - when)
                if ok(status):
                    result.ok += 1
                else:
                    result.errors[status] = result.errors.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(client(k) for k in range(connections)))
    return result
