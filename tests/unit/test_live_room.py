"""Combos, the leaderboard, and the hub's frames, buffers, replay and snapshots (no I/O)."""

from __future__ import annotations

import orjson

from giftwave.live.combos import ComboTracker
from giftwave.live.events import GiftCommitted, Ranked, plain
from giftwave.live.leaderboard import Leaderboard
from giftwave.realtime.hub import Hub
from giftwave.realtime.sockets import ListSink, text_frame

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
    grown = plain(t.drain(6 * S))
    assert [(e["count"], e["final"]) for e in grown] == [(57, False)]
    assert plain(t.drain(8 * S)) == []  # quiet, but still inside the window: nothing new
    final = plain(t.drain(9 * S))  # the last Rose was at 5.6 s: the window closed at 8.6 s
    assert [(e["count"], e["final"], e["gift_id"]) for e in final] == [(57, True, "rose")]
    assert plain(t.drain(20 * S)) == []


def test_a_combo_is_announced_once_then_grows_in_compact_counts() -> None:
    t = ComboTracker(quiet_window_us=3 * S)
    _gift(t, 1, "rose", 0)
    _gift(t, 2, "rose", 0)
    first = plain(t.drain(S // 10))
    assert [(e["type"], e["count"], e["n"]) for e in first] == [("gift", 1, 1), ("gift", 1, 2)]
    _gift(t, 1, "rose", S // 5)
    _gift(t, 1, "rose", S // 4)
    _gift(t, 2, "rose", S // 3)
    grown = plain(t.drain(S // 2))  # both tapped again: one compact update, by short number
    assert grown == [
        {"type": "combo_counts", "at_us": S // 4, "counts": [[1, 3, 3, 0], [2, 2, 2, 83]]}
    ]
    assert plain(t.drain(S)) == []
    finals = plain(t.drain(4 * S))
    assert [(e["combo_id"], e["count"], e["final"]) for e in finals] == [
        ("c1rose0", 3, True),
        ("c2rose0", 2, True),
    ]


def test_a_pause_longer_than_the_window_starts_a_new_combo() -> None:
    t = ComboTracker(quiet_window_us=3 * S)
    _gift(t, 1, "rose", 0)
    _gift(t, 1, "rose", 1 * S)
    _gift(t, 1, "rose", 5 * S)  # 4 s quiet: the first combo ended at 2
    events = plain(t.drain(5 * S))
    assert [(e["count"], e["final"]) for e in events] == [(2, True), (1, False)]


def test_expensive_gifts_arrive_once_and_senders_do_not_mix() -> None:
    t = ComboTracker(quiet_window_us=3 * S)
    _gift(t, 1, "lion", 0, combo=False)
    _gift(t, 1, "rose", 0)
    _gift(t, 2, "rose", 0)
    events = plain(t.drain(0))
    assert [(e["sender_id"], e["gift_id"], e["final"]) for e in events] == [
        (1, "lion", True),
        (1, "rose", False),
        (2, "rose", False),
    ]


def test_leaderboard_ties_go_to_who_got_there_first() -> None:
    board = Leaderboard(Ranked)
    board.add(7, "g", 100)
    board.add(3, "c", 100)
    board.add(5, "e", 30)
    board.add(5, "e", 70)
    assert [e["user_id"] for e in plain(board.top())] == [7, 3, 5]
    board.add(3, "c", 1)
    assert [(e["rank"], e["user_id"], e["coins"]) for e in plain(board.top(2))] == [
        (1, 3, 101),
        (2, 7, 100),
    ]


def _hub(now: list[int], **kw: int) -> Hub:
    return Hub(clock_us=lambda: now[0], **kw)


def _room_gift(hub: Hub, sender: int, n: int) -> None:
    event = GiftCommitted(
        send_id=f"s{sender}-{n}",
        sender_id=sender,
        sender=f"u{sender}",
        gift_id="rose",
        count=1,
        coins=1,
        diamonds=1,
        comboable=True,
        at_us=0,
    )
    hub.apply("st_x", event)


async def test_one_frame_per_tick_encoded_once_for_every_subscriber() -> None:
    now = [0]
    hub = _hub(now)
    a, b = ListSink(), ListSink()
    channel, _ = await hub.subscribe("st_x", a)
    await hub.subscribe("st_x", b)
    for n in range(5):
        _room_gift(hub, 1, n)
    hub.tick_now()
    hub.tick_now()  # nothing new: no frame
    assert len(a.frames) == len(b.frames) == 1
    assert a.frames[0] is b.frames[0]  # the same object: encoded once
    assert a.frames[0].wire is b.frames[0].wire  # and framed once for the wire
    assert a.frames[0].wire == text_frame(a.frames[0].text.encode())
    frame = orjson.loads(a.frames[0].text)
    assert (frame["v"], frame["seq"], frame["epoch"]) == (1, 1, channel.epoch)
    kinds = [e["type"] for e in frame["events"]]
    assert kinds == ["gift", "leaderboard"]  # viewer counts come once a second, not per tick
    assert frame["events"][0]["count"] == 5


def test_websocket_frame_headers_for_every_payload_length() -> None:
    for n, head in ((0, b"\x81\x00"), (125, b"\x81\x7d"), (126, b"\x81\x7e\x00\x7e")):
        assert text_frame(b"x" * n)[: len(head)] == head
    big = text_frame(b"x" * 70_000)
    assert big[:2] == b"\x81\x7f"
    assert int.from_bytes(big[2:10], "big") == 70_000


async def test_replay_gives_exactly_the_missed_frames_or_asks_for_a_snapshot() -> None:
    now = [0]
    hub = _hub(now, ring_frames=3)
    channel, _ = await hub.subscribe("st_x", ListSink())
    for n in range(5):
        _room_gift(hub, n + 1, n)  # a new sender each time: a new event every tick
        hub.tick_now()
    assert channel.seq == 5
    assert [f.seq for f in channel.replay(3, channel.epoch) or []] == [4, 5]
    assert channel.replay(5, channel.epoch) == []
    assert channel.replay(1, channel.epoch) is None  # frame 2 left the ring
    assert channel.replay(4, "other-epoch") is None  # another process's numbering
    assert channel.replay(9, channel.epoch) is None


async def test_a_slow_subscriber_skips_deltas_gets_a_snapshot_or_is_closed() -> None:
    now = [0]
    hub = _hub(now, soft_limit_bytes=1000, hard_limit_ticks=3)
    slow, fast, stuck = ListSink(), ListSink(), ListSink()
    for sink in (slow, fast, stuck):
        await hub.subscribe("st_x", sink)
    slow.unsent = stuck.unsent = 5000  # neither reads
    for n in range(3):
        _room_gift(hub, n + 1, n)
        hub.tick_now()
    assert len(fast.frames) == 3  # every tick reached the one that keeps up
    assert slow.frames == stuck.frames == []  # nothing more piled up behind the slow ones
    slow.unsent = 0  # the slow one drained its socket
    _room_gift(hub, 9, 9)
    hub.tick_now()
    snapshot = orjson.loads(slow.frames[-1].text)
    assert [e["type"] for e in snapshot["events"]] == ["snapshot"]
    assert snapshot["seq"] == 4
    assert snapshot["events"][0]["leaderboard"]["coins"] == 4
    _room_gift(hub, 10, 10)
    hub.tick_now()
    assert orjson.loads(slow.frames[-1].text)["seq"] == 5  # deltas again
    assert stuck.closed is not None
    assert stuck.closed[0] == 1008
    assert slow.closed is None
    assert fast.closed is None
    assert len(fast.frames) == 5


def test_a_goal_counts_what_arrives_after_it_and_is_reached_once() -> None:
    from giftwave.live.goals import Goal, GoalKind
    from giftwave.live.room import Room

    room = Room("st_x", combo_quiet_us=3 * S)

    def gift(gift_id: str, coins: int, at: int) -> None:
        room.gift(
            GiftCommitted(
                send_id=f"{gift_id}{at}",
                sender_id=1,
                sender="u1",
                gift_id=gift_id,
                count=1,
                coins=coins,
                diamonds=coins,
                comboable=True,
                at_us=at,
            )
        )

    gift("rose", 1, 0)  # before the goal: does not count
    room.set_goal(Goal(1, "st_x", GoalKind.COINS, "rose", 3, "3 Roses", created_at_us=10))
    gift("rose", 1, 20)
    gift("panda", 5, 21)  # another gift: does not count toward a Roses goal
    first = [e for e in plain(room.tick(30)) if e["type"].startswith("goal")]
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
    events = [e for e in plain(room.tick(50)) if e["type"].startswith("goal")]
    assert [e["type"] for e in events] == ["goal_reached", "goal"]
    assert (events[1]["progress"], events[1]["reached"]) == (4, True)
    gift("rose", 1, 60)
    assert [e["type"] for e in plain(room.tick(70)) if e["type"].startswith("goal")] == ["goal"]
    assert plain(room.snapshot())["goal"]["progress"] == 5

    room.set_goal(Goal(2, "st_x", GoalKind.LIKES, None, 10, "10 likes", created_at_us=80))
    room.like(6)
    room.like(6)
    events = [e for e in plain(room.tick(90)) if e["type"].startswith("goal")]
    assert [e["type"] for e in events] == ["goal_reached", "goal"]
    assert events[1]["progress"] == 12


def test_joins_are_named_a_few_per_tick_and_counted_beyond() -> None:
    from giftwave.live.room import Room

    room = Room("st_x", combo_quiet_us=3 * S)
    for i in range(8):
        room.join(i, f"u{i}")
    (join,) = [e for e in plain(room.tick(0)) if e["type"] == "join"]
    assert [u["handle"] for u in join["users"]] == ["u0", "u1", "u2", "u3", "u4"]
    assert join["others"] == 3
    assert [e for e in plain(room.tick(1)) if e["type"] == "join"] == []
