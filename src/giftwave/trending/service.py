"""Trending as the server runs it: the engine, fed and kept in step with the database.

    committed gifts ──► gift observer (this node, at once) ─┐
    gift_sends (every node's gifts, every REFRESH_S) ───────┼─► TrendingEngine ──► top()
    likes, new viewers (this node's sockets) ───────────────┤
    shares (``record``, for the share code) ────────────────┘

Everything touches the engine on the event loop; database reads run on worker threads. On
start the engine is rebuilt from the committed gifts of the last ``REBUILD_HALF_LIVES``
half-lives, so a restart does not empty the list (likes and viewers are not stored: they start
again from nothing). Every ``REFRESH_S`` the live streams are read again (an ended stream leaves
the list), the gifts committed since are counted (each send once, by its id), and items whose
score decayed to nothing are forgotten.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Callable
from typing import Final

from sqlalchemy import Engine

from giftwave.clock import now_us
from giftwave.config import TRENDING_SIGNALS, Settings
from giftwave.db.engine import reads
from giftwave.economy.gifting import GiftSent
from giftwave.periodic import PeriodicTask, Schedule
from giftwave.trending.engine import (
    ANY,
    DEFAULT_WEIGHTS,
    Ranked,
    Signal,
    TrendingConfig,
    TrendingEngine,
    user_actor,
)
from giftwave.trending.sources import (
    STREAM,
    CommittedGift,
    LiveStream,
    committed_gifts,
    gifts_after,
    last_gift_id,
    live_stream,
    live_streams,
)

# The settings name the signals a weight may be set for without importing this package.
assert {signal.value for signal in Signal} == TRENDING_SIGNALS, "config.TRENDING_SIGNALS"

REFRESH_S: Final = 1.0
REBUILD_HALF_LIVES: Final = 4  # older gifts weigh under 1/16: not worth reading at start
REBUILD_MAX_GIFTS: Final = 200_000
POLL_MAX_GIFTS: Final = 1_000  # per read: each read is short
POLL_MAX_BATCHES: Final = 200  # per refresh; the rest waits for the next one
# How long an id missing between read ones may still be committed (``SeenIds``).
GAP_WAIT_US: Final = 30 * 1_000_000
log = logging.getLogger(__name__)


def config_from(settings: Settings) -> TrendingConfig:
    weights = dict(DEFAULT_WEIGHTS)
    weights.update({Signal(name): w for name, w in settings.trending_weights.items()})
    return TrendingConfig(
        half_life_s=settings.trending_half_life_s,
        weights=weights,
        dedupe_window_s=settings.trending_dedupe_window_s,
        max_items=settings.trending_max_items,
    )


class Trending:
    def __init__(
        self, db: Engine, config: TrendingConfig, *, clock_us: Callable[[], int] = now_us
    ) -> None:
        self.engine = TrendingEngine(config)
        self._db = db
        self._reads = reads(db)  # autocommit reads on PostgreSQL (db/engine.py)
        self._clock_us = clock_us
        self._streams: dict[str, LiveStream] = {}  # live, as of the last refresh
        self._seen = SeenIds(0)  # the gift rows read from the database (set by ``start``)
        self._salt = secrets.token_bytes(16)  # hashed sources mean nothing outside this process
        # The database away fails a refresh: a later one reads on from where this one stopped.
        self._refresh = PeriodicTask("trending-refresh", self._poll, Schedule(REFRESH_S))

    async def start(self) -> None:
        """Rebuild from the database, then keep in step with it."""
        half_lives_us = REBUILD_HALF_LIVES * self.engine.config.half_life_s * 1_000_000
        await self._rebuild(self._clock_us() - int(half_lives_us))
        self._refresh.start()

    async def stop(self) -> None:
        await self._refresh.stop()

    def top(
        self, limit: int, *, language: str = ANY, country: str = ANY
    ) -> list[tuple[Ranked, LiveStream]]:
        """The trending live streams, best first, each with its title and creator."""
        ranked = self.engine.top(
            self._clock_us(), limit, kind=STREAM, language=language, country=country
        )
        return [(r, self._streams[r.item.id]) for r in ranked if r.item.id in self._streams]

    async def record(
        self,
        signal: Signal,
        stream_id: str,
        actor: str,
        value: float = 1.0,
        at_us: int | None = None,
        event_id: str | None = None,
    ) -> float:
        """One engagement event on a stream (the share code calls this with ``Signal.SHARE``);
        ``actor`` is ``user_actor(id)`` or ``source_actor(address)``. Returns the points it
        added: 0 when it did not count (the creator's own, a repeat, an ended stream)."""
        stream = self._streams.get(stream_id)
        if stream is None:
            stream = await asyncio.to_thread(self._load_stream, stream_id)
            if stream is None:
                return 0.0
            self._streams[stream_id] = stream
        at = self._clock_us() if at_us is None else at_us
        return self.engine.record(signal, stream.item, actor, value, at, event_id)

    def source_actor(self, address: str) -> str:
        """An anonymous actor: a salted hash of where they came from, never the address."""
        digest = hashlib.blake2b(address.encode(), key=self._salt, digest_size=8)
        return "h:" + digest.hexdigest()

    async def gift_committed(self, sent: GiftSent, _handle: str, _comboable: bool) -> None:
        """The gift observer: a committed gift counts its coins at once, on this node."""
        try:
            await self.record(
                Signal.GIFT_COIN,
                sent.stream_id,
                user_actor(sent.sender_id),
                sent.coins,
                sent.created_at_us,
                sent.send_id,
            )
        except Exception:  # the gift is committed; trending reads it again from the database
            log.exception("trending could not count gift %s", sent.send_id)

    async def viewer(self, stream_id: str, actor: str) -> None:
        """Someone opened the room (a new viewer, once per window)."""
        try:
            await self.record(Signal.NEW_VIEWER, stream_id, actor)
        except Exception:  # trending is a ranking, never a reason to refuse a viewer
            log.exception("trending could not count a viewer of %s", stream_id)

    async def like(self, stream_id: str, user_id: int) -> None:
        try:
            await self.record(Signal.LIKE, stream_id, user_actor(user_id))
        except Exception:
            log.exception("trending could not count a like of %s", stream_id)

    def _load_stream(self, stream_id: str) -> LiveStream | None:
        with self._db.connect() as conn:
            return live_stream(conn, stream_id)

    def _read(
        self, since_us: int, limit: int, newest: bool
    ) -> tuple[dict[str, LiveStream], list[CommittedGift]]:
        with self._db.connect() as conn:
            live = live_streams(conn, self.engine.config.max_items)
            return live, committed_gifts(conn, since_us, limit, newest=newest)

    def _live(self) -> dict[str, LiveStream]:
        with self._db.connect() as conn:
            return live_streams(conn, self.engine.config.max_items)

    def _gifts_after(self, after_id: int, limit: int) -> list[tuple[int, CommittedGift | None]]:
        with self._reads.connect() as conn:
            return gifts_after(conn, after_id, limit)

    def _last_gift_id(self) -> int:
        with self._db.connect() as conn:
            return last_gift_id(conn)

    async def _rebuild(self, since_us: int) -> None:
        """The gifts since ``since_us`` (the newest ``REBUILD_MAX_GIFTS``), and every id up to
        the newest one as seen: the poll goes on from there."""
        last_id = await asyncio.to_thread(self._last_gift_id)
        live, gifts = await asyncio.to_thread(self._read, since_us, REBUILD_MAX_GIFTS, True)
        self._seen = SeenIds(last_id)
        self._update(live, gifts)

    async def poll(self) -> int:
        """Count the gifts committed since the last poll, on any node (this node's were
        counted by the observer already, and count once); returns the rows read.

        In reads of ``POLL_MAX_GIFTS`` rows, each on a worker thread: turning rows into
        Python objects holds the GIL, and one read of 5 s of gifts at 3,000 gifts/s (80 ms on
        PostgreSQL) stalled the gifts in flight enough to show in their p99."""
        live = await asyncio.to_thread(self._live)
        read = 0
        for _ in range(POLL_MAX_BATCHES):
            rows = await asyncio.to_thread(self._gifts_after, self._seen.low, POLL_MAX_GIFTS)
            fresh = self._seen.add([row_id for row_id, _ in rows], self._clock_us())
            self._count(live, [gift for row_id, gift in rows if row_id in fresh and gift])
            read += len(rows)
            if len(rows) < POLL_MAX_GIFTS:
                break
        self._update(live, [])
        return read

    def _update(self, live: dict[str, LiveStream], gifts: list[CommittedGift]) -> None:
        self._streams = live
        engine = self.engine
        for item_id in [i for i in engine.item_ids() if i not in live]:
            engine.end(item_id)  # the stream ended
        self._count(live, gifts)
        engine.prune(self._clock_us())

    def _count(self, live: dict[str, LiveStream], gifts: list[CommittedGift]) -> None:
        for gift in gifts:
            stream = live.get(gift.stream_id)
            if stream is not None:
                self.engine.record(
                    Signal.GIFT_COIN,
                    stream.item,
                    user_actor(gift.sender_id),
                    gift.coins,
                    gift.at_us,
                    gift.send_id,
                )

    async def _poll(self) -> None:
        await self.poll()


class SeenIds:
    """Which ``gift_sends`` ids the poll has read: all up to ``low``, and ``above`` it.

    Ids are handed out when a row is written, not when it commits: on PostgreSQL a node's
    batch may commit after another's with higher ids, so an id missing from a read (a gap) may
    still come. The poll reads on from ``low``, so it reads again only what lies past a gap,
    and gives a gap up ``GAP_WAIT_US`` after it was first seen (a rolled-back batch leaves one
    for good). Reading gifts by time instead (all since the newest minus a slack of 30 s)
    read each gift seven times over, and at 1,000 gifts/s the reading took enough of the GIL
    to double the gift latency p99 (docs/benchmarks.md)."""

    def __init__(self, low: int) -> None:
        self.low = low
        self.above: set[int] = set()
        self._gap_seen_us: int | None = None  # when the gap at ``low + 1`` was first seen

    def add(self, ids: list[int], now_us: int) -> set[int]:
        """Note the ids a read returned; returns those not seen before."""
        fresh = {i for i in ids if i > self.low and i not in self.above}
        self.above |= fresh
        self._close_gaps()
        if not self.above:
            self._gap_seen_us = None
        elif self._gap_seen_us is None:
            self._gap_seen_us = now_us
        elif now_us - self._gap_seen_us > GAP_WAIT_US:
            self.low = min(self.above) - 1  # what is missing below it will not come
            self._close_gaps()
            self._gap_seen_us = now_us if self.above else None
        return fresh

    def _close_gaps(self) -> None:
        while self.low + 1 in self.above:
            self.low += 1
            self.above.remove(self.low)
