"""The level follower's rules, pure (social/level_follower.tally), on random gift and reversal
sequences cut into random chunks: the exact coins are the sum, the level is the curve of the
highest total ever reached, never lower, and each level is reached once, by the move that
crossed it."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from giftwave.social.level_follower import Move, tally
from giftwave.social.levels import Curve

CURVE = Curve.configured(())
USERS = (1, 2, 3)
CREATORS = (10, 11)

# (user, creator, coins): a gift, or a reversal of one earlier gift (chosen by index)
step = st.one_of(
    st.tuples(
        st.just("gift"),
        st.sampled_from(USERS),
        st.sampled_from(CREATORS),
        st.sampled_from([1, 5, 30, 100, 1_000, 29_999]) | st.integers(1, 50_000),
    ),
    st.tuples(st.just("reverse"), st.integers(0, 10_000), st.just(0), st.just(0)),
)


def _moves(steps: list[tuple[str, int, int, int]]) -> list[Move]:
    moves: list[Move] = []
    gifts: list[Move] = []
    reversed_: set[int] = set()
    for kind, a, b, c in steps:
        seq = len(moves) + 1
        if kind == "gift":
            gift = Move(seq, a, b, c)
            gifts.append(gift)
            moves.append(gift)
        elif gifts:
            i = a % len(gifts)
            if i in reversed_:
                continue
            reversed_.add(i)
            g = gifts[i]
            moves.append(Move(seq, g.user_id, g.creator_id, -g.coins))
    return moves


@settings(max_examples=300)
@given(st.lists(step, max_size=60), st.lists(st.integers(1, 10), max_size=20))
def test_chunks_of_any_size_give_the_sum_and_the_peak(
    steps: list[tuple[str, int, int, int]], cuts: list[int]
) -> None:
    moves = _moves(steps)
    held: dict[int, list[Any]] = {}
    given_total: dict[tuple[int, int], int] = {}
    ups: list[tuple[int, int, int]] = []
    start = 0
    for cut in [*cuts, len(moves)]:  # chunks as the follower's runs would cut them
        chunk = moves[start : start + cut]
        add, reached = tally(CURVE, held, chunk, quiet_until=0)
        for key, coins in add.items():
            given_total[key] = given_total.get(key, 0) + coins
        ups.extend((u, lv, chunk[i].seq) for u, lv, i in reached)
        start += len(chunk)
        if start >= len(moves):
            break
    for user in USERS:
        mine = [m for m in moves if m.user_id == user]
        running, peak, levels = 0, 0, []
        for m in mine:
            running += m.coins
            if running > peak:
                if CURVE.level(running) > CURVE.level(peak):
                    levels.append((CURVE.level(running), m.seq))
                peak = running
        coins, held_peak, _ = held.get(user, [0, 0, False])
        assert coins == running == sum(m.coins for m in mine)
        assert held_peak == peak
        assert [(lv, seq) for u, lv, seq in ups if u == user] == levels
        if all(m.coins > 0 for m in mine):  # without reversals the level is the sum's
            assert CURVE.level(held_peak) == CURVE.level(coins)
        for creator in CREATORS:
            expect = sum(m.coins for m in mine if m.creator_id == creator)
            assert given_total.get((user, creator), 0) == expect
    levels_reached = [(u, lv) for u, lv, _ in ups]
    assert len(levels_reached) == len(set(levels_reached))  # each level once


def test_moves_up_to_the_quiet_position_count_but_announce_nothing() -> None:
    held: dict[int, list[Any]] = {}
    moves = [Move(1, 1, 10, 100), Move(2, 1, 10, 1_000), Move(3, 1, 10, 10_000)]
    _, reached = tally(CURVE, held, moves, quiet_until=2)
    assert held[1][:2] == [11_100, 11_100]
    assert reached == [(1, CURVE.level(11_100), 2)]
