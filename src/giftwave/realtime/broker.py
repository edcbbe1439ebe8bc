"""Brokers carry room events (gifts, likes, chat, the end) to every node's copy of the room, in
one order. Chosen by ``GIFTWAVE_BROKER_URL``, in this one place:

    memory://   one process: an event is applied to the local room at once
    redis://…   several nodes: an event is appended to the room's Redis stream; every node
                reads the stream and applies the events in stream order, so every node's room
                (combos, leaderboard, totals) is the same, and every viewer sees gifts in the
                same order, whichever node they are on

Events carry their own time (``at_us``), so combos group the same way on every node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Any, Final, Protocol

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

STREAM_MAXLEN: Final = 100_000  # events kept per room: a late node rebuilds the room from them
STREAM_TTL_S: Final = 24 * 3600
READ_BLOCK_MS: Final = 100
READ_COUNT: Final = 1000
RECONNECT_BACKOFF_S: Final = (0.1, 0.2, 0.5, 1.0, 2.0)
STOP_TIMEOUT_S: Final = 5.0
VIEWERS_STALE_MS: Final = 5_000  # a node's viewer count older than this no longer counts
VIEWERS_TTL_S: Final = 60


class EventSink(Protocol):
    def apply(self, stream_id: str, event: dict[str, Any]) -> None: ...


class Broker(Protocol):
    # True when a room can be rebuilt from the broker: a node may then forget rooms nobody
    # on it watches. The memory broker's rooms exist only in this process's hub.
    keeps_history: bool

    async def start(self, sink: EventSink) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, stream_id: str, event: dict[str, Any]) -> None: ...

    async def join(self, stream_id: str) -> None:
        """This node now holds a copy of the room: bring it up to date and keep it there."""
        ...

    def leave(self, stream_id: str) -> None: ...

    async def count_viewers(self, local: dict[str, int]) -> dict[str, int]:
        """Every room's viewers on all nodes, given this node's (room → sockets here)."""
        ...


class MemoryBroker:
    keeps_history = False

    def __init__(self) -> None:
        self._sink: EventSink | None = None

    async def start(self, sink: EventSink) -> None:
        self._sink = sink

    async def stop(self) -> None:
        self._sink = None

    async def publish(self, stream_id: str, event: dict[str, Any]) -> None:
        assert self._sink is not None, "start() first"
        self._sink.apply(stream_id, event)

    async def join(self, stream_id: str) -> None:
        return None

    def leave(self, stream_id: str) -> None:
        return None

    async def count_viewers(self, local: dict[str, int]) -> dict[str, int]:
        return local  # one process: its sockets are all there are


def _key(stream_id: str) -> str:
    return f"giftwave:room:{stream_id}"


def _viewers_key(stream_id: str) -> str:
    return f"giftwave:viewers:{stream_id}"


class RedisBroker:
    keeps_history = True

    def __init__(self, url: str) -> None:
        self._url = url
        self._redis: aioredis.Redis | None = None
        self._sink: EventSink | None = None
        self._last: dict[str, str] = {}  # room → id of the last event applied here
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._node = secrets.token_hex(6)  # this process, in the rooms' viewer counts

    async def start(self, sink: EventSink) -> None:
        self._sink = sink
        self._redis = aioredis.from_url(self._url, socket_timeout=5, socket_connect_timeout=5)
        self._task = asyncio.create_task(self._read_loop(), name="redis-broker")

    async def stop(self) -> None:
        # The read loop notices within one blocking read; cancelling it mid-command could leave
        # redis-py's connection half-read, and closing the client would then wait for it.
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, STOP_TIMEOUT_S)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("redis broker: the read loop did not stop in time")
        if self._redis is not None:
            with contextlib.suppress(TimeoutError, RedisError, OSError):
                await asyncio.wait_for(self._redis.aclose(), STOP_TIMEOUT_S)

    async def publish(self, stream_id: str, event: dict[str, Any]) -> None:
        assert self._redis is not None, "start() first"
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(
                _key(stream_id), {"e": orjson.dumps(event)}, maxlen=STREAM_MAXLEN, approximate=True
            )
            pipe.expire(_key(stream_id), STREAM_TTL_S)  # a room nobody gifts to fades away
            await pipe.execute()

    async def join(self, stream_id: str) -> None:
        if stream_id in self._last:
            return
        assert self._redis is not None
        last = "0-0"
        with contextlib.suppress(RedisError):
            # redis-py's stubs type replies loosely; these are (id, {field: value}) in bytes.
            history: Any = await self._redis.xrange(_key(stream_id), "-", "+")
            for entry_id, fields in history:
                self._apply(stream_id, fields)
                last = entry_id.decode()
        self._last[stream_id] = last

    def leave(self, stream_id: str) -> None:
        self._last.pop(stream_id, None)

    async def count_viewers(self, local: dict[str, int]) -> dict[str, int]:
        """Each node writes ``count:time`` under its own field of the room's hash and sums the
        fields written recently: a node that died stops counting after VIEWERS_STALE_MS."""
        assert self._redis is not None
        rooms = list(local)
        now_ms = int(time.time() * 1000)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for stream_id in rooms:
                    key = _viewers_key(stream_id)
                    pipe.hset(key, self._node, f"{local[stream_id]}:{now_ms}")
                    pipe.expire(key, VIEWERS_TTL_S)
                    pipe.hgetall(key)
                replies: Any = await pipe.execute()
        except (RedisError, OSError):
            return local  # Redis away: say what this node knows
        totals: dict[str, int] = {}
        for n, stream_id in enumerate(rooms):
            total = 0
            for raw in replies[3 * n + 2].values():
                count, _, at_ms = raw.decode().partition(":")
                if now_ms - int(at_ms) <= VIEWERS_STALE_MS:
                    total += int(count)
            totals[stream_id] = total
        return totals

    def _apply(self, stream_id: str, fields: dict[bytes, bytes]) -> None:
        assert self._sink is not None
        try:
            event = orjson.loads(fields[b"e"])
        except (KeyError, orjson.JSONDecodeError):
            log.error("skipping a malformed event in room %s", stream_id)
            return
        self._sink.apply(stream_id, event)

    async def _read_loop(self) -> None:
        assert self._redis is not None
        failures = 0
        while not self._stopping:
            if not self._last:
                await asyncio.sleep(READ_BLOCK_MS / 1000)
                continue
            try:
                batches: Any = await self._redis.xread(
                    {_key(s): last for s, last in self._last.items()},
                    block=READ_BLOCK_MS,
                    count=READ_COUNT,
                )
                failures = 0
            except (RedisError, OSError) as exc:
                # Redis restarting: keep the rooms, retry with backoff; viewers keep watching.
                delay = RECONNECT_BACKOFF_S[min(failures, len(RECONNECT_BACKOFF_S) - 1)]
                failures += 1
                log.warning("redis broker: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            for key, entries in batches or []:
                stream_id = key.decode().removeprefix("giftwave:room:")
                if stream_id not in self._last:
                    continue  # left meanwhile
                for entry_id, fields in entries:
                    self._apply(stream_id, fields)
                    self._last[stream_id] = entry_id.decode()


def open_broker(url: str) -> Broker:
    if url.startswith("memory://"):
        return MemoryBroker()
    if url.startswith(("redis://", "rediss://")):
        return RedisBroker(url)
    raise ValueError(f"unknown broker URL {url!r}: use memory:// or redis://")
