"""The hub: one channel per live room, one tick loop for all of them.

Every tick (default 100 ms) each room with news becomes ONE frame
``{"v":1,"seq":n,"epoch":"…","events":[…]}``, encoded once; the same string goes to every
subscriber's buffer. Buffers are bounded: a subscriber that falls ``soft_limit`` frames behind
has its backlog replaced by one snapshot; one that keeps falling behind (``hard_limit``
snapshots in a row without catching up) is closed. A slow subscriber never delays another:
the tick only appends to buffers, each socket's own writer task drains its own.

Recent frames stay in a bounded ring per room, so a client reconnecting with ``since`` and the
same ``epoch`` gets exactly what it missed, or a snapshot when that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from giftwave.live.goals import Goal
from giftwave.live.room import Room
from giftwave.realtime.broker import Broker

PROTOCOL_VERSION: Final = 1
FOLLOW_US: Final = 15 * 60 * 1_000_000  # a followed room is kept this long after the last call
log = logging.getLogger(__name__)
# Sees every room's events once per tick, after the room's frame went out; must not block.
RoomObserver = Callable[[Room, list[dict[str, Any]]], None]


def encode_frame(seq: int, epoch: str, events: list[dict[str, Any]]) -> str:
    return orjson.dumps(
        {"v": PROTOCOL_VERSION, "seq": seq, "epoch": epoch, "events": events}
    ).decode()


@dataclass(eq=False)
class Subscriber:
    """One socket's outgoing buffer; its writer task awaits ``ready`` and drains ``frames``."""

    soft_limit: int
    hard_limit: int
    frames: deque[str] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    needs_snapshot: bool = False
    snapshots_in_a_row: int = 0
    closed_reason: str | None = None

    def offer(self, frame: str) -> None:
        if self.closed_reason is not None:
            return
        if len(self.frames) >= self.soft_limit:
            # Too far behind for deltas to help: drop them, send the state instead.
            self.frames.clear()
            self.needs_snapshot = True
            self.snapshots_in_a_row += 1
            if self.snapshots_in_a_row > self.hard_limit:
                self.closed_reason = "too slow: could not keep up with the room"
        else:
            self.frames.append(frame)
        self.ready.set()

    def caught_up(self) -> None:
        self.snapshots_in_a_row = 0


class Channel:
    def __init__(self, stream_id: str, *, ring_frames: int, combo_quiet_us: int) -> None:
        self.room = Room(stream_id, combo_quiet_us=combo_quiet_us)
        self.epoch = secrets.token_hex(4)
        self.seq = 0
        self.ring: deque[tuple[int, str]] = deque(maxlen=ring_frames)
        self.subscribers: set[Subscriber] = set()
        self.seeded = False
        self.followed_until_us = 0

    def snapshot_frame(self) -> str:
        return encode_frame(self.seq, self.epoch, [self.room.snapshot()])

    def replay(self, since: int, epoch: str) -> list[str] | None:
        """The frames after ``since``, or None when a snapshot is needed instead."""
        if epoch != self.epoch or since > self.seq:
            return None
        if since == self.seq:
            return []
        if not self.ring or self.ring[0][0] > since + 1:
            return None
        return [frame for seq, frame in self.ring if seq > since]

    def tick(self, now_us: int) -> list[dict[str, Any]]:
        self.room.set_viewers(len(self.subscribers))
        events = self.room.tick(now_us)
        if not events:
            return events
        self.seq += 1
        frame = encode_frame(self.seq, self.epoch, events)  # encoded once for everyone
        self.ring.append((self.seq, frame))
        for subscriber in self.subscribers:
            subscriber.offer(frame)
        return events


class Hub:
    def __init__(
        self,
        *,
        tick_ms: float = 100.0,
        ring_frames: int = 600,
        soft_limit_frames: int = 50,
        hard_limit_snapshots: int = 5,
        combo_quiet_ms: int = 3000,
        max_rooms: int = 100_000,
        clock_us: Callable[[], int] = lambda: time.time_ns() // 1000,
        broker: Broker | None = None,
        seed: Callable[[str], Awaitable[tuple[Goal | None, int]]] | None = None,
    ) -> None:
        self.broker = broker
        self._seed = seed
        self._tick_s = tick_ms / 1000
        self._ring = ring_frames
        self._soft = soft_limit_frames
        self._hard = hard_limit_snapshots
        self._combo_quiet_us = combo_quiet_ms * 1000
        self._max_rooms = max_rooms
        self._clock_us = clock_us
        self._channels: dict[str, Channel] = {}
        self._observers: list[RoomObserver] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="realtime-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def channel(self, stream_id: str) -> Channel:
        channel = self._channels.get(stream_id)
        if channel is None:
            if len(self._channels) >= self._max_rooms:
                raise RuntimeError("too many live rooms in this process")
            channel = Channel(
                stream_id, ring_frames=self._ring, combo_quiet_us=self._combo_quiet_us
            )
            self._channels[stream_id] = channel
        return channel

    def add_observer(self, observer: RoomObserver) -> None:
        self._observers.append(observer)

    async def _bring_up(self, stream_id: str) -> Channel:
        """This node's copy of the room, up to date (a new one is rebuilt first)."""
        fresh = stream_id not in self._channels
        channel = self.channel(stream_id)
        if fresh and self.broker is not None and self.broker.keeps_history:
            await self.broker.join(stream_id)
        elif not channel.seeded and channel.room.goal is None and self._seed is not None:
            # One process, no broker history: what survives a restart is in the database. A
            # room that heard its goal set in this process knows better (likes are not stored).
            goal, progress = await self._seed(stream_id)
            if goal is not None:
                channel.room.set_goal(goal, progress)
        channel.seeded = True
        return channel

    async def subscribe(self, stream_id: str) -> tuple[Channel, Subscriber]:
        """A new socket on this room; the first one makes this node follow the room."""
        channel = await self._bring_up(stream_id)
        subscriber = Subscriber(soft_limit=self._soft, hard_limit=self._hard)
        channel.subscribers.add(subscriber)
        return channel, subscriber

    async def follow(self, stream_id: str) -> None:
        """Keep this node's copy of the room though nobody here watches it, for ``FOLLOW_US``
        after the last call: webhooks need its goal reached, watched or not."""
        channel = await self._bring_up(stream_id)
        channel.followed_until_us = self._clock_us() + FOLLOW_US

    def unsubscribe(self, stream_id: str, subscriber: Subscriber) -> None:
        channel = self._channels.get(stream_id)
        if channel is not None:
            channel.subscribers.discard(subscriber)

    def apply(self, stream_id: str, event: dict[str, Any]) -> None:
        """One room event from the broker, in the broker's order (the ``EventSink``)."""
        room = self.channel(stream_id).room
        kind = event.get("type")
        if kind == "gift":
            room.gift(
                send_id=str(event["send_id"]),
                sender_id=int(event["sender_id"]),
                sender_handle=str(event["sender"]),
                gift_id=str(event["gift_id"]),
                count=int(event["count"]),
                coins=int(event["coins"]),
                diamonds=int(event["diamonds"]),
                comboable=bool(event["comboable"]),
                at_us=int(event["at_us"]),
            )
        elif kind == "like":
            room.like(int(event["count"]))
        elif kind == "chat":
            room.chat(
                {
                    "message_id": event.get("message_id"),
                    "user_id": event["user_id"],
                    "handle": event["handle"],
                    "text": event["text"],
                }
            )
        elif kind == "join":
            room.join(int(event["user_id"]), str(event["handle"]))
        elif kind == "chat_deleted":
            room.delete_message(str(event["message_id"]))
        elif kind == "mute":
            room.mute(int(event["user_id"]), int(event["until_us"]))
        elif kind == "end":
            room.end()
        elif kind == "goal_set":
            room.set_goal(Goal.from_event(stream_id, event))
        elif kind == "goal_cleared":
            room.set_goal(None)

    def tick_now(self) -> None:
        now = self._clock_us()
        for channel in list(self._channels.values()):
            events = channel.tick(now)
            if events:
                self._observe(channel.room, events)
            if not channel.subscribers and (
                channel.room.ended
                or (
                    self.broker is not None
                    and self.broker.keeps_history
                    and channel.followed_until_us < now
                )
            ):
                # Nobody here watches: stop following the room (the broker keeps its events).
                del self._channels[channel.room.stream_id]
                if self.broker is not None:
                    self.broker.leave(channel.room.stream_id)

    def _observe(self, room: Room, events: list[dict[str, Any]]) -> None:
        for observer in self._observers:
            try:
                observer(room, events)
            except Exception:  # an observer's bug must not stop every room's tick
                log.exception("room observer failed")

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            self.tick_now()
            next_at += self._tick_s
            # Keep the cadence; if a tick overran, start the next one at once, not a burst.
            next_at = max(next_at, loop.time())
            await asyncio.sleep(next_at - loop.time())
