"""The referee: keeps every battle's time, and carries its points to both rooms.

Time: one loop per process ends the battles that are due (``ends_at_us`` plus the settle
delay) with the scores the database holds, and expires invitations nobody answered. Both are
conditional UPDATEs (``WHERE status = …``): with several nodes sweeping, exactly one ends a
battle and announces the result. The loop reads the database, not memory, so a battle still
ends on time after a restart, or when every node was down at its end.

Points: a committed gift to a stream in a battle becomes one ``battle_points`` event in BOTH
rooms' broker streams. A room applies its events in its stream's order on every node, so all
viewers of a room see the same scores whichever node they are on, and a point that arrives
after the room's end of the battle is ignored everywhere alike. Which battle a stream is in
comes from a per-process cache at most ``ACTIVE_TTL_S`` old; the countdown before a battle
starts is longer, so every node knows of a battle before its first point counts.

Reversals: a gift an operator reverses (``unscore``) is taken out of the live scores in both
rooms (``battle_points_reversed``, once per ``send_id``), or, when its battle has ended, the
stored result is computed again and both rooms get it whole (``battle_rescored``).

Announcements (``battle_set``, ``battle_ended``) are published after the database commit; a
process that dies between the two loses that announcement (the database still holds the
truth, ``GET /v1/battles/{id}`` shows it, and a room rebuilt from the database has it). Points
are broadcast at least once, like the gifts they come from; rooms count each gift's once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Final

from sqlalchemy import Connection, Engine

from giftwave.clock import now_us
from giftwave.live import battles
from giftwave.live.battles import COUNTDOWN_US, SETTLE_US, Battle, BattleStatus
from giftwave.live.events import (
    BattleEnded,
    BattleRescored,
    BattleScored,
    BattleScoreReversed,
    BattleSet,
    RoomNews,
)
from giftwave.periodic import PeriodicTask, Schedule
from giftwave.ttl_cache import TtlCache

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S: Final = 0.5
# Viewers wait for a battle's end: after an outage the sweeps resume within seconds.
SWEEP_BACKOFF_MAX_S: Final = 5.0
SWEEP_BATCH: Final = 100  # battles ended (and invitations expired) per sweep; the rest next time
ACTIVE_TTL_S: Final = 1.0
ACTIVE_MAX_STREAMS: Final = 100_000
assert ACTIVE_TTL_S * 1_000_000 < COUNTDOWN_US, "a node must learn of a battle before it starts"

Publish = Callable[[str, RoomNews], Awaitable[None]]


@contextlib.contextmanager
def _logged(what: str, battle: Battle) -> Iterator[None]:
    """One announcement failing (the broker restarting) must not silence the others."""
    try:
        yield
    except Exception:
        log.exception("battle referee: could not announce the %s of battle %d", what, battle.id)


@dataclass(frozen=True, slots=True)
class _Lookup:
    battle: Battle | None  # None: the stream is in no active battle


class Referee:
    def __init__(
        self,
        db: Engine,
        publish: Publish,
        *,
        on_result: battles.ResultObserver,
        sweep_interval_s: float = SWEEP_INTERVAL_S,
    ) -> None:
        """``on_result``: told each result this referee records, in its transaction (the
        webhooks' outbox: ``webhooks.outbox.enqueue_battle_ended``)."""
        self._on_result = on_result
        self._db = db
        self._publish = publish
        self._active: TtlCache[str, _Lookup] = TtlCache(
            max_entries=ACTIVE_MAX_STREAMS, ttl_s=ACTIVE_TTL_S
        )
        # One database lookup per stream at a time, however many gifts wait for it.
        self._loading: dict[str, asyncio.Future[_Lookup]] = {}
        # The database or broker restarting fails a sweep: the next one tries again.
        self._sweeps = PeriodicTask(
            "battle-referee",
            self.sweep,
            Schedule(sweep_interval_s, backoff_max_s=SWEEP_BACKOFF_MAX_S),
            run_at_start=True,
        )

    def start(self) -> None:
        self._sweeps.start()

    async def stop(self) -> None:
        await self._sweeps.stop()

    async def announce(self, battle: Battle) -> None:
        """A battle's new state, to both rooms (after the commit that made it)."""
        self._forget(battle)
        await self._to_both_rooms(battle, battle.state(BattleSet))

    async def score(self, stream_id: str, coins: int, at_us: int, send_id: str) -> None:
        """A committed gift of ``coins`` to ``stream_id``, recorded at ``at_us``; scored again
        when its sender retries (rooms count each ``send_id`` once)."""
        battle = (await self._active_battle(stream_id)).battle
        if battle is None or not battle.counts_at(at_us):
            return
        side = battle.side_of(stream_id)
        assert side is not None
        scored = BattleScored(
            battle_id=battle.id, side=side, points=coins, at_us=at_us, send_id=send_id
        )
        await self._to_both_rooms(battle, scored)

    async def unscore(self, stream_id: str, coins: int, at_us: int, send_id: str) -> None:
        """A committed gift reversed by an operator: its points out of the battle it scored in
        (read from the database, not the cache: the battle may have ended since), live in both
        rooms; an ended battle's stored result is computed again and shown in both rooms.
        Told again on a replay: rooms take each reversal once, and a result that did not
        change is shown as it was."""
        battle = await asyncio.to_thread(self._scored_in, stream_id, at_us)
        if battle is None:
            return
        side = battle.side_of(stream_id)
        assert side is not None
        if battle.status is BattleStatus.ACTIVE:
            unscored = BattleScoreReversed(
                battle_id=battle.id, side=side, points=coins, at_us=at_us, send_id=send_id
            )
            await self._to_both_rooms(battle, unscored)
        # Ended meanwhile (or before): its stored scores may hold the gift (the result was
        # read before the reversal committed).
        rescored = await asyncio.to_thread(self._rescore, battle.id)
        if rescored is not None:
            await self._to_both_rooms(rescored, rescored.state(BattleRescored))

    async def finish_when_due(self, battle_id: int) -> Battle:
        """Wait out the settle delay of a battle that has ended early, then take its result
        (unless the sweeper, here or on another node, took it first)."""
        battle = await asyncio.to_thread(self._read, battle_id)
        due = battle.due_at_us()
        if battle.status is BattleStatus.ACTIVE and due is not None:
            wait_us = min(max(0, due - now_us()), SETTLE_US)  # ends_at_us is now or past
            await asyncio.sleep(wait_us / 1_000_000)
            ended = await asyncio.to_thread(self._finish, battle_id)
            if ended is not None:
                await self._announce_result(ended)
            battle = await asyncio.to_thread(self._read, battle_id)
        return battle

    async def stream_ended(self, stream_id: str) -> None:
        """A stream that ends takes its invitation or battle with it."""
        stopped = await asyncio.to_thread(self._stop_for_stream, stream_id)
        if stopped is not None and stopped[1]:
            await self.announce(stopped[0])

    async def sweep(self) -> None:
        """End the battles that are due and expire lapsed invitations; announce each."""
        ended, expired = await asyncio.to_thread(self._sweep_database, now_us())
        for battle in expired:
            with _logged("expiry", battle):
                await self.announce(battle)
        for battle in ended:
            with _logged("result", battle):
                await self._announce_result(battle)

    async def _announce_result(self, battle: Battle) -> None:
        self._forget(battle)
        await self._to_both_rooms(battle, battle.state(BattleEnded))

    async def _to_both_rooms(self, battle: Battle, event: RoomNews) -> None:
        for stream_id in battle.stream_ids:
            await self._publish(stream_id, event)

    def _forget(self, battle: Battle) -> None:
        for stream_id in battle.stream_ids:
            self._active.drop(stream_id)

    async def _active_battle(self, stream_id: str) -> _Lookup:
        cached = self._active.get(stream_id)
        if cached is not None:
            return cached
        loading = self._loading.get(stream_id)
        if loading is None:
            loading = asyncio.ensure_future(asyncio.to_thread(self._load_active, stream_id))
            self._loading[stream_id] = loading
            loading.add_done_callback(partial(self._loaded, stream_id))
        # Shielded: one gift's request going away must not cancel the others' lookup.
        return await asyncio.shield(loading)

    def _load_active(self, stream_id: str) -> _Lookup:
        with self._db.connect() as conn:
            return _Lookup(battles.active_battle_of(conn, stream_id))

    def _loaded(self, stream_id: str, done: asyncio.Future[_Lookup]) -> None:
        # On the event loop, like every other use of the cache (it is not thread-safe).
        self._loading.pop(stream_id, None)
        if not done.cancelled() and done.exception() is None:
            self._active.put(stream_id, done.result())

    def _read(self, battle_id: int) -> Battle:
        with self._db.connect() as conn:
            return battles.get_battle(conn, battle_id)

    def _finish(self, battle_id: int) -> Battle | None:
        with self._db.begin() as conn:
            return battles.finish(conn, battle_id, self._on_result)

    def _scored_in(self, stream_id: str, at_us: int) -> Battle | None:
        with self._db.connect() as conn:
            return battles.battle_scored_in(conn, stream_id, at_us)

    def _rescore(self, battle_id: int) -> Battle | None:
        with self._db.begin() as conn:
            return battles.rescore(conn, battle_id)

    def _stop_for_stream(self, stream_id: str) -> tuple[Battle, bool] | None:
        with self._db.begin() as conn:
            return battles.stop_for_stream(conn, stream_id)

    def _sweep_database(self, now: int) -> tuple[list[Battle], list[Battle]]:
        with self._db.connect() as conn:
            due = battles.due_to_finish(conn, now, SWEEP_BATCH)
            lapsed = battles.due_to_expire(conn, now, SWEEP_BATCH)
        finish = partial(battles.finish, on_result=self._on_result)
        return self._each(due, finish), self._each(lapsed, battles.expire)

    def _each(
        self, battle_ids: list[int], act: Callable[[Connection, int], Battle | None]
    ) -> list[Battle]:
        """``act`` on each battle in a transaction of its own (one slow battle holds up no
        other); the battles it changed."""
        changed = []
        for battle_id in battle_ids:
            with self._db.begin() as conn:
                battle = act(conn, battle_id)
            if battle is not None:
                changed.append(battle)
        return changed
