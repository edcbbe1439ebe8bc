"""Brokers carry room events (gifts, likes, chat, the end) to every node's copy of the room, in
one order. Chosen by ``GIFTWAVE_BROKER_URL``, in this one place:

    memory://   one process: an event is applied to the local room at once
    redis://…   several nodes: an event is appended to the room's Redis stream; every node
                reads the stream and applies the events in stream order, so every node's room
                (combos, leaderboard, totals) is the same, and every viewer sees gifts in the
                same order, whichever node they are on

Events carry their own time (``at_us``), so combos group the same way on every node.

Redis, at least once: a publish that fails (Redis restarting, out of reach) is kept in a
bounded queue (``UNSENT_MAX`` per process; past it the oldest are dropped, and logged) and
sent again, in order, once Redis answers; a publish that failed after Redis took it is sent
twice, and rooms count a gift once (``live.seen``). When the read loop gets through to Redis
after failures, or finds that Redis lost its data (``GENERATION_KEY`` gone: restarted empty),
events may have been lost: the node rebuilds each of its rooms from the database
(``EventSink.reseed``), which also gives every viewer a snapshot, and only then sends what it
kept. The database is the truth; the broker only carries news of it.

Notices are news for every node rather than for a room (a ban changed: drop the cached
answer). ``notify`` sends one to every node's handlers (``on_notice``), this one included;
over Redis they go through one stream, ``NOTICES_KEY``, read by the same loop as the rooms.
When notices may have been lost (the loop got through after failures, Redis lost its data),
the handlers are called with None: whatever they cached from notices is no longer trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final, Protocol

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from giftwave import metrics
from giftwave.live.events import RoomNews, decode_news, encode_news
from giftwave.realtime.notices import AnyNotice, decode_notice, encode_notice

log = logging.getLogger(__name__)

STREAM_MAXLEN: Final = 100_000  # events kept per room: a late node rebuilds the room from them
STREAM_TTL_S: Final = 24 * 3600
READ_BLOCK_MS: Final = 100
READ_COUNT: Final = 1000
RECONNECT_BACKOFF_S: Final = (0.1, 0.2, 0.5, 1.0, 2.0)
STOP_TIMEOUT_S: Final = 5.0
VIEWERS_STALE_MS: Final = 5_000  # a node's viewer count older than this no longer counts
VIEWERS_TTL_S: Final = 60
# 10,000 events of ~300 bytes: a few MB, a few seconds of a very busy node's news.
UNSENT_MAX: Final = 10_000
FLUSH_BATCH: Final = 500
GENERATION_KEY: Final = "giftwave:broker:generation"  # gone: Redis lost its data
GENERATION_CHECK_S: Final = 1.0
RESEED_RETRY_S: Final = 1.0  # the database was out of reach too
RESEEDS_AT_ONCE: Final = 4
# redis-py retries a command itself; a blip is worth a quick retry, an outage is ours to handle
# (the default would hold a gift's answer for seconds, and hide a restart from the read loop).
COMMAND_RETRY: Final = Retry(ExponentialBackoff(cap=0.1, base=0.01), 2)
NOTICES_KEY: Final = "giftwave:notices"
NOTICES_MAXLEN: Final = 10_000  # a few minutes of bans at any plausible rate; nodes read at once
# A notice, or None: some may have been lost. Called on the event loop; must not block.
NoticeHandler = Callable[[AnyNotice | None], None]


class EventSink(Protocol):
    def apply(self, stream_id: str, news: RoomNews) -> None: ...

    async def reseed(self, stream_id: str) -> None:
        """Some of this room's events may be lost: rebuild it from the database."""
        ...


class Broker(Protocol):
    # True when a room can be rebuilt from the broker: a node may then forget rooms nobody
    # on it watches. The memory broker's rooms exist only in this process's hub.
    keeps_history: bool

    async def start(self, sink: EventSink) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, stream_id: str, news: RoomNews) -> None:
        """To every node's copy of the room, at least once; never raises for an outage."""
        ...

    async def join(self, stream_id: str) -> None:
        """This node now holds a copy of the room: bring it up to date and keep it there."""
        ...

    def leave(self, stream_id: str) -> None: ...

    async def count_viewers(self, local: dict[str, int]) -> dict[str, int]:
        """Every room's viewers on all nodes, given this node's (room → sockets here)."""
        ...

    def on_notice(self, handler: NoticeHandler) -> None: ...

    async def ping(self) -> None:
        """Raise unless the broker answers now (a readiness check: /readyz)."""
        ...

    async def notify(self, notice: AnyNotice) -> None:
        """To every node's notice handlers, this node's included; never raises for an outage
        (a notice that cannot be sent is logged: handlers keep answers briefly anyway)."""
        ...


class MemoryBroker:
    keeps_history = False

    def __init__(self) -> None:
        self._sink: EventSink | None = None
        self._handlers: list[NoticeHandler] = []

    async def start(self, sink: EventSink) -> None:
        self._sink = sink

    def on_notice(self, handler: NoticeHandler) -> None:
        self._handlers.append(handler)

    async def notify(self, notice: AnyNotice) -> None:
        for handler in self._handlers:
            handler(notice)

    async def stop(self) -> None:
        self._sink = None

    async def publish(self, stream_id: str, news: RoomNews) -> None:
        assert self._sink is not None, "start() first"
        self._sink.apply(stream_id, news)

    async def join(self, stream_id: str) -> None:
        return None

    def leave(self, stream_id: str) -> None:
        return None

    async def count_viewers(self, local: dict[str, int]) -> dict[str, int]:
        return local  # one process: its sockets are all there are

    async def ping(self) -> None:
        return None  # in this process: there whenever the process is


def _key(stream_id: str) -> str:
    return f"giftwave:room:{stream_id}"


def _viewers_key(stream_id: str) -> str:
    return f"giftwave:viewers:{stream_id}"


def _entry_id(raw: str) -> tuple[int, int]:
    ms, _, seq = raw.partition("-")
    return int(ms), int(seq or 0)


class RedisBroker:
    keeps_history = True

    def __init__(self, url: str) -> None:
        self._url = url
        self._redis: aioredis.Redis | None = None
        self._sink: EventSink | None = None
        self._last: dict[str, str] = {}  # room → id of the last event applied here
        self._unplaced: set[str] = set()  # rooms joined while Redis was away: position unknown
        self._stale: set[str] = set()  # rooms to rebuild from the database
        self._reseed_after_s = 0.0
        self._unsent: deque[tuple[str, bytes]] = deque()  # (room, event), oldest first
        self._dropped = 0
        self._generation: Any = None  # bytes, as Redis holds it
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._node = secrets.token_hex(6)  # this process, in the rooms' viewer counts
        self._handlers: list[NoticeHandler] = []
        self._notices_last: str | None = None  # id of the last notice read; None: not placed

    async def start(self, sink: EventSink) -> None:
        self._sink = sink
        self._redis = aioredis.from_url(
            self._url, socket_timeout=5, socket_connect_timeout=5, retry=COMMAND_RETRY
        )
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
        if self._unsent:
            log.warning("redis broker: %d events never reached Redis", len(self._unsent))
        if self._redis is not None:
            with contextlib.suppress(TimeoutError, RedisError, OSError):
                await asyncio.wait_for(self._redis.aclose(), STOP_TIMEOUT_S)

    async def publish(self, stream_id: str, news: RoomNews) -> None:
        assert self._redis is not None, "start() first"
        data = encode_news(news)
        if self._unsent:  # Redis is away: wait behind the others, in order
            self._keep(stream_id, data)
            return
        try:
            await self._send([(stream_id, data)])
        except (RedisError, OSError) as exc:
            log.warning("redis broker: publish failed (%s); kept to send again", exc)
            metrics.BROKER_PUBLISH_FAILURES.inc()
            self._keep(stream_id, data)

    def on_notice(self, handler: NoticeHandler) -> None:
        self._handlers.append(handler)

    async def ping(self) -> None:
        assert self._redis is not None, "start() first"
        await self._redis.ping()

    async def notify(self, notice: AnyNotice) -> None:
        assert self._redis is not None, "start() first"
        self._tell(notice)  # this node at once; its read loop brings it again (harmless)
        try:
            await self._redis.xadd(
                NOTICES_KEY,
                {"e": encode_notice(notice)},
                maxlen=NOTICES_MAXLEN,
                approximate=True,
            )
        except (RedisError, OSError) as exc:
            # Not queued: the other nodes' answers expire on their own (ban_gate.TTL_S), and a
            # Redis that is away for them too makes them drop everything when it is back.
            log.warning("redis broker: notice not sent (%s)", exc)

    def _tell(self, notice: AnyNotice | None) -> None:
        for handler in self._handlers:
            try:
                handler(notice)
            except Exception:  # a handler's bug must not stop the read loop
                log.exception("redis broker: notice handler failed")

    async def _place_notices(self, *, lost: bool) -> None:
        """Where to read notices from: after the newest one now (those before are old news,
        or lost, and then the handlers are told so)."""
        assert self._redis is not None
        top: Any = await self._redis.xrevrange(NOTICES_KEY, "+", "-", count=1)
        self._notices_last = top[0][0].decode() if top else "0-0"
        if lost:
            self._tell(None)

    def _keep(self, stream_id: str, data: bytes) -> None:
        self._unsent.append((stream_id, data))
        self._trim_unsent()
        metrics.BROKER_QUEUED_EVENTS.set(len(self._unsent))

    def _trim_unsent(self) -> None:
        while len(self._unsent) > UNSENT_MAX:
            self._unsent.popleft()
            if self._dropped == 0:
                log.error(
                    "redis broker: more than %d events waiting for Redis; dropping the oldest "
                    "(the ledger has every gift; rooms are rebuilt from it when Redis is back)",
                    UNSENT_MAX,
                )
            self._dropped += 1
            metrics.BACKGROUND_LOST.labels("broker-unsent").inc()

    async def _send(self, batch: list[tuple[str, bytes]]) -> None:
        assert self._redis is not None
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream_id, data in batch:
                pipe.xadd(_key(stream_id), {"e": data}, maxlen=STREAM_MAXLEN, approximate=True)
                pipe.expire(_key(stream_id), STREAM_TTL_S)  # a room nobody gifts to fades away
            await pipe.execute()

    async def _flush(self) -> None:
        """Send what was kept, oldest first; on failure it stays, in order."""
        sent = 0
        while self._unsent:
            batch = [self._unsent.popleft() for _ in range(min(FLUSH_BATCH, len(self._unsent)))]
            try:
                await self._send(batch)
            except BaseException:
                self._unsent.extendleft(reversed(batch))
                self._trim_unsent()
                raise
            sent += len(batch)
            metrics.BROKER_QUEUED_EVENTS.set(len(self._unsent))
        log.warning("redis broker: sent %d kept events, %d dropped", sent, self._dropped)
        self._dropped = 0

    async def join(self, stream_id: str) -> None:
        if stream_id in self._last or stream_id in self._unplaced:
            return
        assert self._redis is not None
        last = "0-0"
        try:
            # redis-py's stubs type replies loosely; these are (id, {field: value}) in bytes.
            history: Any = await self._redis.xrange(_key(stream_id), "-", "+")
        except (RedisError, OSError):
            # The database has the gifts; the read loop places and re-seeds the room later.
            self._unplaced.add(stream_id)
            return
        for entry_id, fields in history:
            self._apply(stream_id, fields)
            last = entry_id.decode()
        self._last[stream_id] = last

    def leave(self, stream_id: str) -> None:
        self._last.pop(stream_id, None)
        self._unplaced.discard(stream_id)
        self._stale.discard(stream_id)

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
            news = decode_news(fields[b"e"])
        except (KeyError, msgspec.DecodeError):
            log.error("skipping a malformed event in room %s", stream_id)
            return
        self._sink.apply(stream_id, news)

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        check_at_s = 0.0
        while not self._stopping:
            try:
                if failures or self._unplaced or loop.time() >= check_at_s:
                    await self._check(after_failures=failures > 0)
                    check_at_s = loop.time() + GENERATION_CHECK_S
                failures = 0
                if self._stale and loop.time() >= self._reseed_after_s:
                    await self._reseed_stale()
                if self._unsent:
                    await self._flush()
                await self._read()
            except (RedisError, OSError) as exc:
                # Redis restarting: keep the rooms, retry with backoff; viewers keep watching.
                delay = RECONNECT_BACKOFF_S[min(failures, len(RECONNECT_BACKOFF_S) - 1)]
                failures += 1
                log.warning("redis broker: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    async def _check(self, *, after_failures: bool) -> None:
        """Find out whether events may have been lost, and which rooms to rebuild."""
        assert self._redis is not None
        generation = await self._redis.get(GENERATION_KEY)
        if generation is None:  # a new Redis, or one that restarted empty: the first says so
            await self._redis.set(GENERATION_KEY, secrets.token_hex(8), nx=True)
            generation = await self._redis.get(GENERATION_KEY)
        reset = self._generation is not None and generation != self._generation
        self._generation = generation
        if self._handlers and (self._notices_last is None or after_failures or reset):
            await self._place_notices(lost=self._notices_last is not None)
        rooms = set(self._unplaced)
        if (after_failures or reset) and self._last:
            rooms.update(self._last)
            log.warning("redis broker: events may be lost; rebuilding %d rooms", len(rooms))
        if rooms:
            await self._place(sorted(rooms))
            self._stale.update(rooms)

    async def _place(self, rooms: list[str]) -> None:
        """Where to read each room's stream from, now that Redis may have restarted."""
        assert self._redis is not None
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream_id in rooms:
                pipe.xrevrange(_key(stream_id), "+", "-", count=1)
            newest: list[Any] = await pipe.execute()
        for stream_id, top in zip(rooms, newest, strict=True):
            top_id = top[0][0].decode() if top else None
            if stream_id in self._unplaced:
                # Its history was never read: the database's seed stands in for it.
                self._unplaced.discard(stream_id)
                self._last[stream_id] = top_id or "0-0"
            elif stream_id in self._last and (
                top_id is None or _entry_id(top_id) < _entry_id(self._last[stream_id])
            ):
                self._last[stream_id] = "0-0"  # a new stream: every event in it is news here

    async def _reseed_stale(self) -> None:
        assert self._sink is not None
        sink = self._sink
        rooms = [s for s in self._stale if s in self._last]
        self._stale.clear()
        limit = asyncio.Semaphore(RESEEDS_AT_ONCE)

        async def reseed(stream_id: str) -> str | None:
            async with limit:
                try:
                    await sink.reseed(stream_id)
                except Exception:  # the database away too: try again in a while
                    log.exception("redis broker: could not rebuild room %s", stream_id)
                    return stream_id
                return None

        failed = {s for s in await asyncio.gather(*map(reseed, rooms)) if s is not None}
        if failed:
            self._stale.update(failed)
            self._reseed_after_s = asyncio.get_running_loop().time() + RESEED_RETRY_S

    async def _read(self) -> None:
        assert self._redis is not None
        streams: dict[Any, Any] = {_key(s): last for s, last in self._last.items()}
        if self._notices_last is not None:
            streams[NOTICES_KEY] = self._notices_last
        if not streams:
            await asyncio.sleep(READ_BLOCK_MS / 1000)
            return
        batches: Any = await self._redis.xread(streams, block=READ_BLOCK_MS, count=READ_COUNT)
        for key, entries in batches or []:
            if key.decode() == NOTICES_KEY:
                self._read_notices(entries)
                continue
            stream_id = key.decode().removeprefix("giftwave:room:")
            if stream_id not in self._last:
                continue  # left meanwhile
            for entry_id, fields in entries:
                self._apply(stream_id, fields)
                self._last[stream_id] = entry_id.decode()

    def _read_notices(self, entries: Any) -> None:
        for entry_id, fields in entries:
            self._notices_last = entry_id.decode()
            raw = fields.get(b"e")
            notice = None if raw is None else decode_notice(raw)
            if notice is None:
                log.error("redis broker: a notice this version cannot read; trusting no cache")
            self._tell(notice)


def open_broker(url: str) -> Broker:
    if url.startswith("memory://"):
        return MemoryBroker()
    if url.startswith(("redis://", "rediss://")):
        return RedisBroker(url)
    raise ValueError(f"unknown broker URL {url!r}: use memory:// or redis://")
