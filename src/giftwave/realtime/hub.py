"""The hub: one channel per live room, one tick loop for all of them.

Every tick (default 100 ms) each room with news becomes ONE frame
``{"v":1,"seq":n,"epoch":"…","events":[…]}``, encoded once; the same bytes go to every
subscriber's socket (``realtime.sockets``). What a socket has not sent is bounded: past
``soft_limit_bytes`` it gets no more deltas, then one snapshot once it has drained; behind for
``hard_limit_ticks`` frames in a row, it is closed. A slow subscriber never delays another:
the tick never waits on a socket.

Recent frames stay in a ring per room, bounded in frames and in bytes (a flood of big frames
must not hold a room's last 600 of them), so a client reconnecting with ``since`` and the same
``epoch`` gets exactly what it missed, or a snapshot when that is gone.

A room this node starts following is rebuilt from the database (``seed``), after the broker's
history if it keeps one; so is every room the broker says it may have lost events of
(``reseed``), which also starts a new epoch: every viewer, and every resume, gets a snapshot.
Events that arrive while the database is read wait, bounded, and are applied on top of it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from giftwave import metrics
from giftwave.background import cancel
from giftwave.live import events as ev
from giftwave.live.battles import Battle
from giftwave.live.events import RoomEvent, RoomNews, encode_frame_text
from giftwave.live.goals import Goal
from giftwave.live.room import BATTLE_RESULT_US, LevelLookup, Room, RoomSeed
from giftwave.periodic import PeriodicTask, Schedule
from giftwave.realtime.broker import Broker
from giftwave.realtime.sockets import Frame, Sink

N = TypeVar("N", bound=ev.News)

PROTOCOL_VERSION: Final = ev.PROTOCOL_VERSION
CLOSE_POLICY: Final = 1008
VIEWER_COUNT_INTERVAL_S: Final = 1.0
# Events kept for a room while its seed is read, usually tens of milliseconds; this many is a
# very busy room's ten seconds. Past it the oldest go (and, with them, news the seed may lack).
SEEDING_MAX_EVENTS: Final = 100_000
FOLLOW_US: Final = 15 * 60 * 1_000_000  # a followed room is kept this long after the last call
# Logged-in people a room remembers as connected here (for "people you follow are watching");
# past it, newcomers are not remembered until some leave: the count is then a lower bound.
MAX_WATCHERS_PER_ROOM: Final = 100_000
# A room's resume ring: a busy room's minute of frames is a few hundred kilobytes.
DEFAULT_RING_MAX_BYTES: Final = 1024 * 1024
log = logging.getLogger(__name__)
# Sees every room's events once per tick, after the room's frame went out; must not block.
RoomObserver = Callable[[Room, list[RoomEvent]], None]


def encode_frame(seq: int, epoch: str, events: list[RoomEvent]) -> Frame:
    return Frame(encode_frame_text(seq, epoch, events), seq)


# What each kind of news does to a room: one line per kind (live/events.py, RoomNews). Every
# kind has its line, checked when this module loads (below).
_HANDLERS: dict[type[ev.News], Callable[[Room, Any], None]] = {}


def _on(kind: type[N], handler: Callable[[Room, N], None]) -> None:
    _HANDLERS[kind] = handler


def _goal_set(room: Room, e: ev.GoalSet) -> None:
    goal = Goal.of_news(room.stream_id, e)
    if room.goal is None or room.goal.id != goal.id:  # announced again: keep its progress
        room.set_goal(goal)


def _chat(room: Room, e: ev.ChatPosted) -> None:
    room.chat(
        ev.ChatLine(
            message_id=e.message_id,
            user_id=e.user_id,
            handle=e.handle,
            text=e.text,
            level=e.level,
            sub_months=e.sub_months,
            club=e.club,
        )
    )


_on(ev.GiftCommitted, Room.gift)
_on(ev.GiftReversalCommitted, Room.gift_reversed)
_on(ev.Liked, lambda room, e: room.like(e.count, e.user_id, e.handle))
_on(ev.ChatPosted, _chat)
_on(ev.Joined, lambda room, e: room.join(e.user_id, e.handle, e.level, e.sub_months, e.club))
_on(ev.ChatDeleted, lambda room, e: room.delete_message(e.message_id))
_on(ev.Muted, lambda room, e: room.mute(e.user_id, e.until_us))
_on(ev.StreamEnded, lambda room, e: room.end())
_on(ev.GoalSet, _goal_set)
_on(ev.GoalCleared, lambda room, e: room.set_goal(None))
_on(ev.BattleSet, lambda room, e: room.set_battle(Battle.of_state(e)))
_on(
    ev.BattleScored, lambda r, e: r.battle_points(e.battle_id, e.side, e.points, e.at_us, e.send_id)
)
_on(
    ev.BattleScoreReversed,
    lambda r, e: r.battle_points_reversed(e.battle_id, e.side, e.points, e.at_us, e.send_id),
)
_on(ev.BattleEnded, lambda room, e: room.end_battle(Battle.of_state(e)))
_on(ev.BattleRescored, lambda room, e: room.correct_result(Battle.of_state(e)))
_on(ev.LevelReached, Room.level_up)
_on(ev.PaidMessagePosted, Room.paid_message)
_on(ev.PaidMessageHidden, lambda room, e: room.hide_paid_message(e.send_id))
_on(ev.SubsGifted, Room.subs_gifted)
_on(ev.ThanksPosted, Room.thanks)
_on(ev.ThanksHidden, lambda room, e: room.hide_thanks(e.stream_id))
assert set(_HANDLERS) == set(RoomNews.__args__), "every kind of news needs its line above"


class Subscriber:
    """One socket. Frames go to its sink at once; a socket with more than ``soft_limit_bytes``
    unsent gets no more deltas, and one snapshot when it has drained; one that stays behind
    for more than ``hard_limit_ticks`` frames in a row is closed."""

    __slots__ = (
        "behind",
        "closed_reason",
        "hard_limit_ticks",
        "sink",
        "soft_limit_bytes",
        "user_id",
    )

    def __init__(
        self,
        sink: Sink,
        *,
        soft_limit_bytes: int,
        hard_limit_ticks: int,
        user_id: int | None = None,
    ) -> None:
        self.sink = sink
        self.user_id = user_id  # counted in the channel's watchers
        self.soft_limit_bytes = soft_limit_bytes
        self.hard_limit_ticks = hard_limit_ticks
        self.behind = 0
        self.closed_reason: str | None = None

    def offer(self, frame: Frame, snapshot: Callable[[], Frame]) -> bool:
        """Send ``frame`` (or the snapshot that replaces skipped ones); False: nothing sent."""
        if self.closed_reason is not None:
            return False
        if self.sink.buffered() > self.soft_limit_bytes:
            self.behind += 1
            if self.behind > self.hard_limit_ticks:
                self.closed_reason = "too slow: could not keep up with the room"
                self.sink.close(CLOSE_POLICY, self.closed_reason)
                metrics.LIVE_SLOW_CLOSED.inc()
            return False
        if self.behind:
            # Deltas were skipped: the state, which includes this frame's news, replaces them.
            self.behind = 0
            self.sink.write(snapshot())
            metrics.LIVE_SLOW_SNAPSHOTTED.inc()
            return True
        self.sink.write(frame)
        return True

    def reply(self, text: str) -> None:
        """An answer to one of its commands (bounded by the commands it may have in flight)."""
        if self.closed_reason is None:
            self.sink.reply(Frame(text))


def frame_bytes(frame: Frame) -> int:
    """What a frame kept in the ring holds: its text and its wire form, about as many bytes
    each as it has on the wire."""
    return 2 * len(frame.wire)


class Channel:
    def __init__(
        self,
        stream_id: str,
        *,
        ring_frames: int,
        combo_quiet_us: int,
        combo_settle_us: int = 0,
        coalesce: bool = True,
        ring_max_bytes: int = DEFAULT_RING_MAX_BYTES,
        battle_result_us: int = BATTLE_RESULT_US,
        levels: LevelLookup | None = None,
    ) -> None:
        self.room = Room(
            stream_id,
            combo_quiet_us=combo_quiet_us,
            combo_settle_us=combo_settle_us,
            battle_result_us=battle_result_us,
            levels=levels,
        )
        self.coalesce = coalesce
        self.epoch = secrets.token_hex(4)
        self.seq = 0
        self.ring: deque[Frame] = deque()
        self.ring_frames = ring_frames
        self.ring_max_bytes = ring_max_bytes
        self.ring_bytes = 0
        self.subscribers: set[Subscriber] = set()
        # Logged-in user → their sockets here: two tabs count once, gone with the last one.
        self.watchers: Counter[int] = Counter()
        self.rebuilding = asyncio.Lock()  # one rebuild of the room at a time
        self.followed = False  # the broker's history was applied
        self.seeded = False  # the database's state was applied
        self.joining = 0  # subscribers on their way in: the room is not idle
        self.seeding: deque[RoomNews] | None = None  # news waiting for the seed
        self.followed_until_us = 0  # kept up to date for webhooks until then

    def watch(self, subscriber: Subscriber, user_id: int | None) -> None:
        if user_id is None:
            return
        if user_id not in self.watchers and len(self.watchers) >= MAX_WATCHERS_PER_ROOM:
            return  # not remembered: the bound holds, the count is a lower bound
        subscriber.user_id = user_id
        self.watchers[user_id] += 1

    def unwatch(self, subscriber: Subscriber) -> None:
        user_id, subscriber.user_id = subscriber.user_id, None
        if user_id is None:
            return
        left = self.watchers[user_id] - 1
        if left > 0:
            self.watchers[user_id] = left
        else:
            del self.watchers[user_id]

    def restart(self) -> None:
        """The room was rebuilt: a new epoch (resumes get a snapshot) and a snapshot for
        every viewer now."""
        self.epoch = secrets.token_hex(4)
        self.ring.clear()
        self.ring_bytes = 0
        frame = self.snapshot_frame()
        for subscriber in self.subscribers:
            subscriber.offer(frame, lambda: frame)

    def snapshot_frame(self) -> Frame:
        return encode_frame(self.seq, self.epoch, [self.room.snapshot()])

    def replay(self, since: int, epoch: str) -> list[Frame] | None:
        """The frames after ``since``, or None when a snapshot is needed instead."""
        if epoch != self.epoch or since > self.seq:
            return None
        if since == self.seq:
            return []
        if not self.ring or self.ring[0].seq > since + 1:
            return None
        return [frame for frame in self.ring if frame.seq > since]

    def keep(self, frame: Frame) -> None:
        """``frame`` in the ring, the oldest going while it holds too many frames or bytes (a
        frame bigger than the whole ring is not kept: a resume over it gets a snapshot)."""
        self.ring.append(frame)
        self.ring_bytes += frame_bytes(frame)
        while self.ring and (
            len(self.ring) > self.ring_frames or self.ring_bytes > self.ring_max_bytes
        ):
            self.ring_bytes -= frame_bytes(self.ring.popleft())

    def tick(self, now_us: int) -> list[RoomEvent]:
        """Send this tick's news, if any; returns the events (for the hub's observers)."""
        events = self.room.tick(now_us)
        if not events:
            return events
        if not self.coalesce:
            self._send_each(events)
            return events
        self.seq += 1
        frame = encode_frame(self.seq, self.epoch, events)  # encoded once for everyone
        self.keep(frame)
        self.deliver(frame)
        return events

    def deliver(self, frame: Frame) -> int:
        """``frame`` to every subscriber within its limits; how many took it."""
        snapshot: list[Frame] = []  # built at most once, if someone needs it

        def snapshot_once() -> Frame:
            if not snapshot:
                snapshot.append(self.snapshot_frame())
            return snapshot[0]

        sent = 0  # one counter update per tick, not one per socket
        for subscriber in self.subscribers:
            sent += subscriber.offer(frame, snapshot_once)
        metrics.LIVE_FRAMES_SENT.inc(sent)
        return sent

    def _send_each(self, events: list[RoomEvent]) -> None:
        """The naive fan-out (the benchmark's baseline): a frame per event per viewer."""
        for event in events:
            self.seq += 1
            self.keep(encode_frame(self.seq, self.epoch, [event]))
            for subscriber in self.subscribers:
                subscriber.offer(encode_frame(self.seq, self.epoch, [event]), self.snapshot_frame)


class Hub:
    def __init__(
        self,
        *,
        tick_ms: float = 100.0,
        ring_frames: int = 600,
        ring_max_bytes: int = DEFAULT_RING_MAX_BYTES,
        soft_limit_bytes: int = 256 * 1024,
        hard_limit_ticks: int = 50,
        combo_quiet_ms: int = 3000,
        combo_settle_ms: int = 0,
        battle_result_ms: int = BATTLE_RESULT_US // 1000,
        coalesce: bool = True,
        max_rooms: int = 100_000,
        clock_us: Callable[[], int] = lambda: time.time_ns() // 1000,
        broker: Broker | None = None,
        seed: Callable[[str], Awaitable[RoomSeed]] | None = None,
        levels: LevelLookup | None = None,
    ) -> None:
        self.broker = broker
        self._levels = levels
        self._seed = seed
        self._tick_s = tick_ms / 1000
        self._ring = ring_frames
        self._ring_bytes = ring_max_bytes
        self._soft = soft_limit_bytes
        self._hard = hard_limit_ticks
        self._combo_quiet_us = combo_quiet_ms * 1000
        self._combo_settle_us = combo_settle_ms * 1000
        self._battle_result_us = battle_result_ms * 1000
        self._coalesce = coalesce
        self._max_rooms = max_rooms
        self._clock_us = clock_us
        self._channels: dict[str, Channel] = {}
        self._closing: list[Sink] = []  # closed by close_all, their close not yet finished
        self._observers: list[RoomObserver] = []
        self._task: asyncio.Task[None] | None = None
        self._counting = PeriodicTask(
            "realtime-viewers", self._count_viewers, Schedule(VIEWER_COUNT_INTERVAL_S)
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="realtime-hub")
        self._counting.start()

    async def stop(self) -> None:
        await cancel(self._task)
        await self._counting.stop()

    async def _count_viewers(self) -> None:
        """Each room's viewers on every node (the broker sums them), about once a second."""
        local = {s: len(c.subscribers) for s, c in self._channels.items()}
        if not local:
            return
        totals = local if self.broker is None else await self.broker.count_viewers(local)
        for stream_id, total in totals.items():
            channel = self._channels.get(stream_id)
            if channel is not None:
                channel.room.set_viewers(total)

    def level_of(self, user_id: int) -> int | None:
        """The user's gifter level badge as this node knows it (None: none shown)."""
        return None if self._levels is None else self._levels(user_id)

    def viewer_counts(self) -> dict[str, int]:
        """Each followed room's viewers on every node, as last counted (once a second)."""
        return {stream_id: c.room.viewers for stream_id, c in self._channels.items()}

    def channel(self, stream_id: str) -> Channel:
        channel = self._channels.get(stream_id)
        if channel is None:
            if len(self._channels) >= self._max_rooms:
                raise RuntimeError("too many live rooms in this process")
            channel = Channel(
                stream_id,
                ring_frames=self._ring,
                combo_quiet_us=self._combo_quiet_us,
                combo_settle_us=self._combo_settle_us,
                coalesce=self._coalesce,
                ring_max_bytes=self._ring_bytes,
                battle_result_us=self._battle_result_us,
                levels=self._levels,
            )
            self._channels[stream_id] = channel
        return channel

    def peek(self, stream_id: str) -> Room | None:
        """The room as this node has it, if it follows it; never starts following."""
        channel = self._channels.get(stream_id)
        return None if channel is None else channel.room

    def add_observer(self, observer: RoomObserver) -> None:
        self._observers.append(observer)

    async def _bring_up(self, channel: Channel) -> None:
        """This node's copy of the room, up to date: the first caller builds it, others wait."""
        channel.joining += 1
        try:
            async with channel.rebuilding:
                if not channel.followed and self.broker is not None and self.broker.keeps_history:
                    await self.broker.join(channel.room.stream_id)  # likes, chat: broker only
                channel.followed = True
                if not channel.seeded:
                    await self._restore(channel)  # gifts, goal, battle: the database has them
                    channel.seeded = True
        finally:
            channel.joining -= 1

    async def subscribe(
        self, stream_id: str, sink: Sink, user_id: int | None = None
    ) -> tuple[Channel, Subscriber]:
        """A new socket on this room, of a logged-in ``user_id`` or anonymous; the first one
        makes this node follow the room."""
        channel = self.channel(stream_id)
        await self._bring_up(channel)
        subscriber = Subscriber(sink, soft_limit_bytes=self._soft, hard_limit_ticks=self._hard)
        channel.subscribers.add(subscriber)
        sockets = len(channel.subscribers)
        metrics.room_sockets_changed(sockets - 1, sockets)
        channel.watch(subscriber, user_id)
        return channel, subscriber

    def watchers(self) -> dict[str, list[int]]:
        """Each room's logged-in viewers on this node now (fan clubs count their watch time)."""
        return {s: list(c.watchers) for s, c in self._channels.items() if c.watchers}

    def watching(self, stream_id: str, among: list[int]) -> list[int]:
        """Which of ``among`` (in its order) have this room open on this node now."""
        channel = self._channels.get(stream_id)
        if channel is None or not channel.watchers:
            return []
        watchers = channel.watchers
        return [user_id for user_id in among if user_id in watchers]

    async def follow(self, stream_id: str) -> None:
        """Keep this node's copy of the room though nobody here watches it, for ``FOLLOW_US``
        after the last call: webhooks need its goal reached, watched or not."""
        channel = self.channel(stream_id)
        await self._bring_up(channel)
        channel.followed_until_us = self._clock_us() + FOLLOW_US

    async def reseed(self, stream_id: str) -> None:
        """The broker may have lost some of this room's events (it restarted, or was out of
        reach): rebuild the room from the database, and start every viewer afresh."""
        channel = self._channels.get(stream_id)
        if channel is None:
            return
        async with channel.rebuilding:
            await self._restore(channel)
            channel.restart()

    async def _restore(self, channel: Channel) -> None:
        if self._seed is None:
            return
        channel.seeding = deque(maxlen=SEEDING_MAX_EVENTS)
        try:
            seed = await self._seed(channel.room.stream_id)
            channel.room.restore(seed, self._clock_us())
        finally:
            waiting, channel.seeding = channel.seeding, None
            for event in waiting:  # the room counts each gift once: the seed's are skipped
                self._apply(channel, event)

    def unsubscribe(self, stream_id: str, subscriber: Subscriber) -> None:
        channel = self._channels.get(stream_id)
        if channel is not None and subscriber in channel.subscribers:
            channel.subscribers.discard(subscriber)
            channel.unwatch(subscriber)
            sockets = len(channel.subscribers)
            metrics.room_sockets_changed(sockets + 1, sockets)

    def apply(self, stream_id: str, news: RoomNews) -> None:
        """One room's news from the broker, in the broker's order (the ``EventSink``)."""
        channel = self.channel(stream_id)
        if channel.seeding is not None:
            channel.seeding.append(news)
            return
        self._apply(channel, news)

    def _apply(self, channel: Channel, news: RoomNews) -> None:
        _HANDLERS[type(news)](channel.room, news)
        if not self._coalesce:
            channel.tick(self._clock_us())  # out at once, not next tick

    def close_all(self, code: int, reason: str) -> int:
        """Close every socket of every room here (a draining node); how many were open."""
        closed = 0
        for channel in self._channels.values():
            for subscriber in list(channel.subscribers):
                if subscriber.closed_reason is None:
                    subscriber.closed_reason = reason
                    subscriber.sink.close(code, reason)
                    self._closing.append(subscriber.sink)
                    closed += 1
        return closed

    def still_closing(self) -> int:
        """How many sockets ``close_all`` closed have not finished closing (the peer has not
        answered, or the close frame has not left): a draining node waits for them."""
        self._closing = [sink for sink in self._closing if sink.closing()]
        return len(self._closing)

    def tick_now(self) -> None:
        now = self._clock_us()
        for channel in list(self._channels.values()):
            events = channel.tick(now)
            if events:
                self._observe(channel.room, events)
            if (
                not channel.subscribers
                and not channel.joining
                and channel.seeding is None
                and (
                    channel.room.ended
                    or (
                        self.broker is not None
                        and self.broker.keeps_history
                        and channel.followed_until_us < now
                    )
                )
            ):
                # Nobody here watches: stop following the room (the broker keeps its events).
                del self._channels[channel.room.stream_id]
                if self.broker is not None:
                    self.broker.leave(channel.room.stream_id)

    def _observe(self, room: Room, events: list[RoomEvent]) -> None:
        for observer in self._observers:
            try:
                observer(room, events)
            except Exception:  # an observer's bug must not stop every room's tick
                log.exception("room observer failed")

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            # A busy loop delays every room's news: a quarter period late is worth counting.
            if loop.time() - next_at > self._tick_s / 4:
                metrics.LIVE_TICKS_LATE.inc()
            self.tick_now()
            next_at += self._tick_s
            behind_s = loop.time() - next_at
            if behind_s >= self._tick_s:  # whole periods went by without a tick
                metrics.LIVE_TICKS_MISSED.inc(int(behind_s / self._tick_s))
            # Keep the cadence; if a tick overran, start the next one at once, not a burst.
            next_at = max(next_at, loop.time())
            await asyncio.sleep(next_at - loop.time())
