"""At-least-once broadcast: a room counts each gift once, keeps the last finished gifts the
same on every node, is rebuilt from a seed without counting anything twice, and starts its
viewers afresh when rebuilt (no I/O)."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import orjson

from giftwave.live.events import GiftCommitted, plain
from giftwave.live.room import RECENT_GIFTS, Room, RoomSeed, SeedGift, SeedGifter
from giftwave.live.seen import SeenIds
from giftwave.realtime.hub import Hub
from giftwave.realtime.sockets import ListSink

S = 1_000_000
QUIET = 3 * S


def _event(n: int, sender: int, gift: str = "rose", at_us: int | None = None) -> dict[str, Any]:
    return {
        "type": "gift",
        "send_id": f"gift:{sender}:k{n}",
        "sender_id": sender,
        "sender": f"u{sender}",
        "gift_id": gift,
        "count": 1,
        "coins": 1 if gift == "rose" else 299,
        "diamonds": 1 if gift == "rose" else 299,
        "comboable": gift == "rose",
        "at_us": n * S // 10 if at_us is None else at_us,
    }


def _news(event: dict[str, Any]) -> GiftCommitted:
    """A gift's news as the broker carries it (the dicts below are its JSON)."""
    return msgspec.convert(event, GiftCommitted)


def _give(room: Room, event: dict[str, Any]) -> None:
    room.gift(_news(event))


def test_a_gift_broadcast_twice_is_counted_once() -> None:
    room = Room("st_x", combo_quiet_us=QUIET)
    for n in range(5):
        _give(room, _event(n, sender=1))
    _give(room, _event(2, sender=1))  # a retry republished it
    _give(room, _event(6, sender=2, gift="corgi"))
    _give(room, _event(6, sender=2, gift="corgi"))
    events = plain(room.tick(10 * S))
    finals = [(e["combo_id"], e["count"]) for e in events if e["type"] == "gift"]
    assert finals == [("gift:1:k0", 5), ("gift:2:k6", 1)]  # by the time of their last gift
    board = plain(room.snapshot())["leaderboard"]
    assert (board["coins"], board["diamonds"]) == (5 + 299, 5 + 299)
    assert [(e["user_id"], e["coins"]) for e in board["top"]] == [(2, 299), (1, 5)]


def test_a_late_gift_joins_its_combo_and_never_moves_its_end_back() -> None:
    room = Room("st_x", combo_quiet_us=QUIET, combo_settle_us=S)
    _give(room, _event(0, sender=1, at_us=0))
    _give(room, _event(2, sender=1, at_us=2 * S))
    _give(room, _event(1, sender=1, at_us=1 * S))  # reached this node after the one at 2 s
    assert [e for e in plain(room.tick(5 * S + S // 2)) if e["type"] == "gift" and e["final"]] == []
    (final,) = [e for e in plain(room.tick(6 * S + 1)) if e["type"] == "gift"]  # 2 s + 3 s + 1 s
    assert (final["combo_id"], final["count"], final["final"]) == ("gift:1:k0", 3, True)


def test_seen_ids_are_bounded_and_older_ones_count_as_seen() -> None:
    seen = SeenIds(capacity=3)
    assert [seen.first(f"s{n}", n) for n in range(5)] == [True] * 5
    assert len(seen) == 3
    assert seen.floor_us == 1  # s0 and s1 were forgotten
    assert not seen.first("s1", 1)  # forgotten, but no newer than what was: taken as counted
    assert not seen.first("s4", 4)
    assert seen.first("s9", 2)  # unknown and newer than the floor: new
    seen.reset([("a", 10), ("b", 11)], floor_us=9)
    assert not seen.first("a", 10)
    assert not seen.first("z", 9)
    assert seen.first("c", 12)


def test_recent_gifts_keep_the_newest_finished_in_one_order_whatever_the_ticks() -> None:
    events = [_event(n, sender=n % 7, gift="corgi" if n % 3 else "rose") for n in range(300)]
    rooms = [Room("st_x", combo_quiet_us=QUIET, combo_settle_us=S) for _ in range(3)]
    rng = random.Random(7)
    for i, room in enumerate(rooms):
        now = 0
        for event in events:
            _give(room, event)
            if i and rng.random() < 0.3:  # each node ticks on its own clock, events up to
                now = max(now, event["at_us"] + rng.randrange(S))  # a second late
                plain(room.tick(now))
        plain(room.tick(60 * S))
    recent = [plain(room.snapshot())["recent_gifts"] for room in rooms]
    assert len(recent[0]) == RECENT_GIFTS
    assert recent[1] == recent[0]
    assert recent[2] == recent[0]
    assert all(e["final"] for e in recent[0])
    order = [(e["at_us"], e["combo_id"]) for e in recent[0]]
    assert order == sorted(order)
    assert recent[0][-1]["combo_id"] == "gift:5:k299"  # the newest Corgi, last


def _seed() -> RoomSeed:
    """Sender 1: a Rose combo of 3 long over and one of 2 still open; sender 2: a Corgi."""
    roses = [(0, 0), (1, S), (2, 2 * S), (3, 20 * S), (4, 21 * S)]
    recent = [
        SeedGift(f"gift:1:r{n}", 1, "u1", "rose", 1, 1, True, at_us) for n, at_us in roses
    ] + [SeedGift("gift:2:c", 2, "u2", "corgi", 1, 299, False, 5 * S)]
    recent.sort(key=lambda g: g.at_us)
    return RoomSeed(
        coins=5 + 299,
        diamonds=5 + 299,
        gifters=(SeedGifter(2, "u2", 299, 5 * S), SeedGifter(1, "u1", 5, 21 * S)),
        recent=tuple(recent),
        seen=tuple((g.send_id, g.at_us) for g in recent),
    )


def test_a_rebuilt_room_counts_nothing_twice_and_shows_what_happened() -> None:
    room = Room("st_x", combo_quiet_us=QUIET)
    room.like(4)
    room.restore(_seed(), 22 * S)
    snapshot = plain(room.snapshot())
    assert (snapshot["leaderboard"]["coins"], snapshot["likes"]) == (304, 4)
    assert [(e["user_id"], e["coins"]) for e in snapshot["leaderboard"]["top"]] == [
        (2, 299),
        (1, 5),
    ]
    assert [(e["combo_id"], e["count"]) for e in snapshot["recent_gifts"]] == [
        ("gift:1:r0", 3),
        ("gift:2:c", 1),
    ]
    assert [(e["combo_id"], e["count"]) for e in snapshot["combos"]] == [("gift:1:r3", 2)]
    # A republished gift of the seed is skipped; a new one grows the open combo.
    _give(room, {**_event(0, sender=1), "send_id": "gift:1:r4", "at_us": 21 * S})
    _give(room, {**_event(0, sender=1), "send_id": "gift:1:r5", "at_us": 22 * S})
    events = plain(room.tick(30 * S))
    gifts = [(e["combo_id"], e["count"], e["final"]) for e in events if e["type"] == "gift"]
    assert gifts == [("gift:1:r3", 3, True)]  # the seeded finals were never news again
    assert plain(room.snapshot())["leaderboard"]["coins"] == 305


def _frames(sink: ListSink) -> list[dict[str, Any]]:
    return [orjson.loads(text) for text in sink.take()]


async def test_a_reseeded_room_gives_viewers_a_snapshot_in_a_new_epoch() -> None:
    now = [22 * S]
    seeds = [RoomSeed(), _seed()]

    async def seed(_stream_id: str) -> RoomSeed:
        return seeds.pop(0)

    hub = Hub(clock_us=lambda: now[0], seed=seed)
    viewer = ListSink()
    channel, _ = await hub.subscribe("st_x", viewer)
    hub.apply("st_x", _news(_event(1, sender=3, gift="corgi", at_us=now[0])))
    hub.tick_now()
    first_epoch, seq = channel.epoch, channel.seq
    assert channel.replay(seq - 1, first_epoch) is not None
    await hub.reseed("st_x")
    (frame,) = _frames(viewer)[-1:]
    assert [e["type"] for e in frame["events"]] == ["snapshot"]
    assert frame["epoch"] == channel.epoch != first_epoch
    snapshot = frame["events"][0]
    assert snapshot["leaderboard"]["coins"] == 304  # the database's, not the stale room's
    assert [e["combo_id"] for e in snapshot["recent_gifts"]] == ["gift:1:r0", "gift:2:c"]
    assert channel.replay(seq, first_epoch) is None  # a resume from before: a snapshot


async def test_events_that_arrive_while_the_seed_is_read_wait_and_count_once() -> None:
    hub_ref: list[Hub] = []

    async def seed(stream_id: str) -> RoomSeed:
        hub = hub_ref[0]
        # Meanwhile, the broker delivers one gift of the seed and one newer gift.
        hub.apply(
            stream_id, _news({**_event(0, sender=1), "send_id": "gift:1:r4", "at_us": 21 * S})
        )
        hub.apply(stream_id, _news(_event(1, sender=5, gift="corgi", at_us=22 * S)))
        return _seed()

    hub = Hub(clock_us=lambda: 22 * S, seed=seed)
    hub_ref.append(hub)
    channel, _ = await hub.subscribe("st_x", ListSink())
    assert plain(channel.room.snapshot())["leaderboard"]["coins"] == 304 + 299
