"""A battle's result stays on the room for a short showing, then goes for everyone (one
``battle`` event with no battle), and never comes back: not by a late announcement, not in a
room rebuilt from the database, not in a newcomer's snapshot (no I/O)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from giftwave.live.battles import Battle, BattleStatus, Side, Winner
from giftwave.live.events import plain
from giftwave.live.room import BATTLE_RESULT_US, Room, RoomSeed

S = 1_000_000
SHOWN_US = 5 * S
ENDED = Battle(
    id=3,
    a=Side("st_a", 1, "ana"),
    b=Side("st_b", 2, "bo"),
    status=BattleStatus.ENDED,
    duration_s=60,
    created_at_us=0,
    started_at_us=10 * S,
    ends_at_us=70 * S,
    ended_at_us=71 * S,
    score_a=9,
    score_b=4,
    winner=Winner.A,
)


def _battles(room: Room, now_us: int) -> list[dict[str, Any]]:
    return [e for e in plain(room.tick(now_us)) if e["type"] == "battle"]


def test_the_result_is_shown_then_taken_down_for_good() -> None:
    room = Room("st_a", combo_quiet_us=3 * S, battle_result_us=SHOWN_US)
    room.set_battle(replace(ENDED, status=BattleStatus.ACTIVE, ended_at_us=None, winner=None))
    room.end_battle(ENDED)
    (result,) = _battles(room, 72 * S)
    assert result["winner"] == "a"
    assert plain(room.snapshot())["battle"]["winner"] == "a"  # a newcomer sees it while it shows
    assert _battles(room, 75 * S) == []  # still showing
    (gone,) = _battles(room, 76 * S)
    assert gone == {"type": "battle", "battle_id": None}
    assert plain(room.snapshot())["battle"] == {"type": "battle", "battle_id": None}
    room.end_battle(ENDED)  # a late or repeated announcement
    room.set_battle(ENDED)
    assert _battles(room, 77 * S) == []
    room.restore(RoomSeed(battle=ENDED), 78 * S)  # rebuilt: the database still has it
    assert plain(room.snapshot())["battle"]["battle_id"] is None
    assert _battles(room, 79 * S) == []
    room.set_battle(replace(ENDED, id=4, status=BattleStatus.PENDING, ended_at_us=None))
    (nxt,) = _battles(room, 80 * S)
    assert nxt["battle_id"] == 4  # the next battle shows as ever


def test_a_new_node_never_shows_an_old_result_and_the_default_is_fifteen_seconds() -> None:
    assert BATTLE_RESULT_US == 15 * S
    room = Room("st_b", combo_quiet_us=3 * S)
    room.restore(RoomSeed(battle=ENDED), 71 * S + BATTLE_RESULT_US)
    assert plain(room.snapshot())["battle"]["battle_id"] is None
    fresh = Room("st_b", combo_quiet_us=3 * S)
    fresh.restore(RoomSeed(battle=ENDED), 80 * S)  # ended 9 s ago: still showing
    assert plain(fresh.snapshot())["battle"]["winner"] == "a"
    declined = replace(ENDED, id=5, status=BattleStatus.DECLINED, ended_at_us=100 * S, winner=None)
    fresh.set_battle(declined)
    assert plain(fresh.snapshot())["battle"]["status"] == "declined"
    assert _battles(fresh, 116 * S)[-1] == {"type": "battle", "battle_id": None}
