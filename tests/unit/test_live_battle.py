"""A battle as rooms hold it: live scores from points within its time, one coalesced ``battle``
event per tick, the result once, the same in both rooms (no I/O)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from giftwave.live.battles import Battle, BattleStatus, Side, Winner, winner_of
from giftwave.live.events import (
    BattleEnded,
    BattleScored,
    BattleSet,
    RoomNews,
    decode_news,
    encode_news,
    plain,
)
from giftwave.live.room import Room, RoomSeed
from giftwave.realtime.hub import Hub
from giftwave.realtime.sockets import ListSink

S = 1_000_000
PENDING = Battle(
    id=7,
    a=Side("st_a", 1, "ana"),
    b=Side("st_b", 2, "bo"),
    status=BattleStatus.PENDING,
    duration_s=60,
    created_at_us=0,
    started_at_us=None,
    ends_at_us=None,
    ended_at_us=None,
    score_a=0,
    score_b=0,
    winner=None,
)
ACTIVE = replace(PENDING, status=BattleStatus.ACTIVE, started_at_us=10 * S, ends_at_us=70 * S)


def _ended(score_a: int, score_b: int) -> Battle:
    return replace(
        ACTIVE,
        status=BattleStatus.ENDED,
        ended_at_us=71 * S,
        score_a=score_a,
        score_b=score_b,
        winner=winner_of(score_a, score_b),
    )


def _battle_events(room: Room, now_us: int) -> list[dict[str, Any]]:
    return [e for e in plain(room.tick(now_us)) if e["type"].startswith("battle")]


def _scores(event: dict[str, Any]) -> list[int]:
    return [side["score"] for side in event["sides"]]


def test_points_count_only_within_the_battle_and_coalesce_per_tick() -> None:
    room = Room("st_a", combo_quiet_us=3 * S)
    room.set_battle(PENDING)
    (invited,) = _battle_events(room, 0)
    assert (invited["status"], invited["starts_at_us"], _scores(invited)) == (
        "pending",
        None,
        [0, 0],
    )
    room.battle_points(7, "a", 5, 1 * S)  # before it was accepted: nothing
    room.set_battle(ACTIVE)
    room.battle_points(7, "a", 5, 9 * S)  # during the countdown: nothing
    room.battle_points(7, "a", 100, 10 * S)
    for _ in range(30):  # many gifts in one tick: one event with the sums
        room.battle_points(7, "b", 1, 11 * S)
    room.battle_points(8, "a", 1000, 12 * S)  # another battle's points
    room.battle_points(7, "a", 1000, 70 * S)  # at the end: too late
    (live,) = _battle_events(room, 20 * S)
    assert (live["status"], _scores(live)) == ("active", [100, 30])
    assert (live["starts_at_us"], live["ends_at_us"], live["duration_s"]) == (10 * S, 70 * S, 60)
    assert [s["handle"] for s in live["sides"]] == ["ana", "bo"]
    assert _battle_events(room, 21 * S) == []  # nothing new: nothing said


def test_the_result_replaces_live_scores_once_and_is_never_undone() -> None:
    room = Room("st_b", combo_quiet_us=3 * S)
    room.set_battle(ACTIVE)
    room.battle_points(7, "a", 3, 20 * S)
    plain(room.tick(21 * S))
    room.end_battle(_ended(4, 4))  # the database saw one more gift than this room did
    events = _battle_events(room, 72 * S)
    assert [e["type"] for e in events] == ["battle_ended", "battle"]
    assert (events[0]["winner"], _scores(events[0])) == ("draw", [4, 4])
    assert (events[1]["status"], events[1]["winner"], _scores(events[1])) == (
        "ended",
        "draw",
        [4, 4],
    )
    room.end_battle(_ended(4, 4))  # announced twice: said once
    room.battle_points(7, "b", 9, 30 * S)  # a late point: the result stands
    room.set_battle(ACTIVE)  # late news of the battle running: the result stands
    assert _battle_events(room, 73 * S) == []
    assert _scores(plain(room.snapshot())["battle"]) == [4, 4]
    assert plain(room.snapshot())["battle"]["winner"] == "draw"


def test_a_new_battle_replaces_the_old_and_late_news_of_the_old_is_ignored() -> None:
    room = Room("st_a", combo_quiet_us=3 * S)
    room.set_battle(ACTIVE)
    plain(room.tick(0))
    newer = replace(PENDING, id=9, created_at_us=80 * S)
    room.set_battle(newer)
    room.set_battle(replace(ACTIVE, ends_at_us=60 * S))  # battle 7, announced late
    (event,) = _battle_events(room, 81 * S)
    assert (event["battle_id"], event["status"]) == (9, "pending")
    room.end_battle(_ended(2, 1))  # battle 7's result, late: shown, but 9 stays current
    events = _battle_events(room, 82 * S)
    assert [e["type"] for e in events] == ["battle_ended"]
    assert events[0]["winner"] == "a"
    assert plain(room.snapshot())["battle"]["battle_id"] == 9
    declined = replace(newer, status=BattleStatus.DECLINED, ended_at_us=83 * S)
    room.set_battle(declined)
    (event,) = _battle_events(room, 84 * S)
    assert event["status"] == "declined"


def test_a_rebuilt_room_starts_from_the_committed_scores() -> None:
    room = Room("st_b", combo_quiet_us=3 * S)
    seed = RoomSeed(battle=ACTIVE, battle_scores=(12, 30), seen_points=(("gift:1:k", 20 * S),))
    room.restore(seed, 30 * S)
    room.battle_points(7, "b", 1, 30 * S)
    assert _scores(plain(room.snapshot())["battle"]) == [12, 31]
    room.battle_points(7, "b", 5, 20 * S, "gift:1:k")  # in the committed scores already
    room.battle_points(7, "a", 2, 31 * S, "gift:2:k")
    room.battle_points(7, "a", 2, 31 * S, "gift:2:k")  # broadcast twice, scored once
    assert _scores(plain(room.snapshot())["battle"]) == [14, 31]
    assert plain(Room("st_x", combo_quiet_us=S).snapshot())["battle"] == {
        "type": "battle",
        "battle_id": None,
    }


def test_winner_is_the_side_with_more_coins_or_a_draw() -> None:
    assert (winner_of(2, 1), winner_of(1, 2), winner_of(0, 0)) == (Winner.A, Winner.B, Winner.DRAW)


async def test_both_rooms_see_the_same_battle_through_the_hub() -> None:
    """Broker events (plain JSON) to both rooms: the same frames' battle events in each."""
    hub = Hub(clock_us=lambda: 0)
    in_a, in_b = ListSink(), ListSink()
    await hub.subscribe("st_a", in_a)
    await hub.subscribe("st_b", in_b)

    def both(news: RoomNews) -> None:
        wire = decode_news(encode_news(news))  # as the Redis broker would carry it
        hub.apply("st_a", wire)
        hub.apply("st_b", wire)

    both(ACTIVE.state(BattleSet))
    both(BattleScored(battle_id=7, side="a", points=99, at_us=15 * S, send_id=None))
    both(BattleScored(battle_id=7, side="b", points=1, at_us=16 * S, send_id=None))
    hub.tick_now()
    both(_ended(99, 1).state(BattleEnded))
    hub.tick_now()

    def battle_events(frames: Any) -> list[dict[str, Any]]:
        return [
            e for f in frames for e in orjson.loads(f)["events"] if e["type"].startswith("battle")
        ]

    seen_a, seen_b = battle_events(in_a.take()), battle_events(in_b.take())
    assert seen_a == seen_b
    assert [(e["type"], _scores(e)) for e in seen_a] == [
        ("battle", [99, 1]),
        ("battle_ended", [99, 1]),
        ("battle", [99, 1]),
    ]
    assert seen_a[1]["winner"] == "a"
    assert Battle.of_state(ACTIVE.state(BattleSet)) == ACTIVE
