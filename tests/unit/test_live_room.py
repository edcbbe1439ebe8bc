"""Combos, the leaderboard, and the hub's frames, buffers, replay and snapshots (no I/O)."""

from __future__ import annotations

import orjson

from giftwave.live.combos import ComboTracker
from giftwave.live.leaderboard import Leaderboard
from giftwave.realtime.hub import Hub

S = 1_000_000  # one second in microseconds


def _gift(t: ComboTracker, sender: int, gift: str, at: int, combo: bool = True) -> None:
    t.add(
        combo_id=f"c{sender}{gift}{at}",
        sender_id=sender,
        sender_handle=f"u{sender}",
        gift_id=gift,
        count=1,
        coins=1,
        comboable=combo,
        at_us=at,
    )


def test_a_combo_grows_then_ends_with_its_total() -> None:
    t = ComboTracker(quiet_window_us=3 * S)
    for i in range(57):
        _gift(t, 1, "rose", i * S // 10)
    grown = t.drain(6 * S)
    assert [(e["count"], e["final"]) for e in grown] == [(57, False)]
    assert t.drain(8 * S) == []  # quiet, but still inside the window: nothing new
    final = t.drain(9 * S)  # the last Rose was at 5.6 s: the window closed at 8.6 s
    assert [(e["count"], e["final"], e["gift_id"]) for e in final] == [(57, True, "rose")]
    assert t.drain(20 * S) == []


def test_a_pause_longer_than_the_window_starts_a_new_combo() -> None:
    t = ComboTracker(quiet_window_us=3 * S)
    _gift(t, 1, "rose", 0)
    _gift(t, 1, "rose", 1 * S)
    _gift(t, 1, "rose", 5 * S)  # 4 s quiet: the first combo ended at 2
    events = t.drain(5 * S)
    assert [(e["count"], e["final"]) for e in events] == [(2, True), (1, False)]


def test_expensive_gifts_arrive_once_and_senders_do_not_mix() -> None:
    t = ComboTracker(quiet_window_us=3 * S)
    _gift(t, 1, "lion", 0, combo=False)
    _gift(t, 1, "rose", 0)
    _gift(t, 2, "rose", 0)
    events = t.drain(0)
    assert [(e["sender_id"], e["gift_id"], e["final"]) for e in events] == [
        (1, "lion", True),
        (1, "rose", False),
        (2, "rose", False),
    ]


def test_leaderboard_ties_go_to_who_got_there_first() -> None:
    board = Leaderboard()
    board.add(7, "g", 100)
    board.add(3, "c", 100)
    board.add(5, "e", 30)
    board.add(5, "e", 70)
    assert [e["user_id"] for e in board.top()] == [7, 3, 5]
    board.add(3, "c", 1)
    assert [(e["rank"], e["user_id"], e["coins"]) for e in board.top(2)] == [
        (1, 3, 101),
        (2, 7, 100),
    ]


def _hub(now: list[int], **kw: int) -> Hub:
    return Hub(clock_us=lambda: now[0], **kw)


def _room_gift(hub: Hub, sender: int, n: int) -> None:
    event = {
        "type": "gift",
        "send_id": f"s{sender}-{n}",
        "sender_id": sender,
        "sender": f"u{sender}",
        "gift_id": "rose",
        "count": 1,
        "coins": 1,
        "diamonds": 1,
        "comboable": True,
        "at_us": 0,
    }
    hub.apply("st_x", event)


async def test_one_frame_per_tick_encoded_once_for_every_subscriber() -> None:
    now = [0]
    hub = _hub(now)
    channel, a = await hub.subscribe("st_x")
    _, b = await hub.subscribe("st_x")
    for n in range(5):
        _room_gift(hub, 1, n)
    hub.tick_now()
    hub.tick_now()  # nothing new: no frame
    assert len(a.frames) == len(b.frames) == 1
    assert a.frames[0] is b.frames[0]  # the same string object: encoded once
    frame = orjson.loads(a.frames[0])
    assert (frame["v"], frame["seq"], frame["epoch"]) == (1, 1, channel.epoch)
    kinds = [e["type"] for e in frame["events"]]
    assert kinds == ["gift", "leaderboard", "viewers"]
    assert frame["events"][0]["count"] == 5


async def test_replay_gives_exactly_the_missed_frames_or_asks_for_a_snapshot() -> None:
    now = [0]
    hub = _hub(now, ring_frames=3)
    channel, _ = await hub.subscribe("st_x")
    for n in range(5):
        _room_gift(hub, n + 1, n)  # a new sender each time: a new event every tick
        hub.tick_now()
    assert channel.seq == 5
    assert [orjson.loads(f)["seq"] for f in channel.replay(3, channel.epoch) or []] == [4, 5]
    assert channel.replay(5, channel.epoch) == []
    assert channel.replay(1, channel.epoch) is None  # frame 2 left the ring
    assert channel.replay(4, "other-epoch") is None  # another process's numbering
    assert channel.replay(9, channel.epoch) is None


async def test_a_slow_subscriber_gets_a_snapshot_then_is_closed_and_never_delays_others() -> None:
    now = [0]
    hub = _hub(now, soft_limit_frames=3, hard_limit_snapshots=2)
    _, slow = await hub.subscribe("st_x")
    _, fast = await hub.subscribe("st_x")
    received = 0
    for n in range(30):
        _room_gift(hub, n + 1, n)
        hub.tick_now()
        received += len(fast.frames)
        fast.frames.clear()  # the fast reader keeps up
        fast.caught_up()
    assert received == 30  # every tick reached the fast one
    assert slow.needs_snapshot
    assert slow.closed_reason is not None
    assert len(slow.frames) <= 3  # bounded whatever happens


def test_a_goal_counts_what_arrives_after_it_and_is_reached_once() -> None:
    from giftwave.live.goals import Goal, GoalKind
    from giftwave.live.room import Room

    room = Room("st_x", combo_quiet_us=3 * S)

    def gift(gift_id: str, coins: int, at: int) -> None:
        room.gift(
            send_id=f"{gift_id}{at}",
            sender_id=1,
            sender_handle="u1",
            gift_id=gift_id,
            count=1,
            coins=coins,
            diamonds=coins,
            comboable=True,
            at_us=at,
        )

    gift("rose", 1, 0)  # before the goal: does not count
    room.set_goal(Goal(1, "st_x", GoalKind.COINS, "rose", 3, "3 Roses", created_at_us=10))
    gift("rose", 1, 20)
    gift("panda", 5, 21)  # another gift: does not count toward a Roses goal
    first = [e for e in room.tick(30) if e["type"].startswith("goal")]
    assert first == [
        {
            "type": "goal",
            "goal_id": 1,
            "kind": "coins",
            "gift_id": "rose",
            "target": 3,
            "title": "3 Roses",
            "progress": 1,
            "reached": False,
        }
    ]
    gift("rose", 1, 40)
    gift("rose", 1, 41)
    gift("rose", 1, 42)
    events = [e for e in room.tick(50) if e["type"].startswith("goal")]
    assert [e["type"] for e in events] == ["goal_reached", "goal"]
    assert (events[1]["progress"], events[1]["reached"]) == (4, True)
    gift("rose", 1, 60)
    assert [e["type"] for e in room.tick(70) if e["type"].startswith("goal")] == ["goal"]
    assert room.snapshot()["goal"]["progress"] == 5

    room.set_goal(Goal(2, "st_x", GoalKind.LIKES, None, 10, "10 likes", created_at_us=80))
    room.like(6)
    room.like(6)
    events = [e for e in room.tick(90) if e["type"].startswith("goal")]
    assert [e["type"] for e in events] == ["goal_reached", "goal"]
    assert events[1]["progress"] == 12


def test_joins_are_named_a_few_per_tick_and_counted_beyond() -> None:
    from giftwave.live.room import Room

    room = Room("st_x", combo_quiet_us=3 * S)
    for i in range(8):
        room.join(i, f"u{i}")
    (join,) = [e for e in room.tick(0) if e["type"] == "join"]
    assert [u["handle"] for u in join["users"]] == ["u0", "u1", "u2", "u3", "u4"]
    assert join["others"] == 3
    assert [e for e in room.tick(1) if e["type"] == "join"] == []
