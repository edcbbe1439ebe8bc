"""The trending poll's record of the gift rows it read (``SeenIds``): each row counted once,
a row committed late (a gap in the ids) still read, a gap that never fills given up."""

from __future__ import annotations

from giftwave.trending.service import GAP_WAIT_US, SeenIds

S = 1_000_000


def test_rows_in_order_move_the_mark_and_count_once() -> None:
    seen = SeenIds(10)
    assert seen.add([11, 12, 13], 0) == {11, 12, 13}
    assert (seen.low, seen.above) == (13, set())
    assert seen.add([12, 13], 1 * S) == set()  # read again: nothing new


def test_a_row_committed_late_is_read_when_it_comes() -> None:
    seen = SeenIds(0)
    assert seen.add([1, 2, 4, 5], 0) == {1, 2, 4, 5}  # 3 is not committed yet
    assert (seen.low, seen.above) == (2, {4, 5})  # the next read starts after 2
    assert seen.add([4, 5, 6], 5 * S) == {6}
    assert seen.add([3, 4, 5, 6, 7], 10 * S) == {3, 7}  # 3 came: counted, once
    assert (seen.low, seen.above) == (7, set())


def test_a_gap_that_never_fills_is_given_up() -> None:
    seen = SeenIds(0)
    seen.add([1, 3], 0)  # 2 rolled back: it will never come
    seen.add([3], GAP_WAIT_US)
    assert seen.low == 1  # still waiting
    assert seen.add([3, 4], GAP_WAIT_US + 1) == {4}
    assert (seen.low, seen.above) == (4, set())  # given up: the reads start after 4


def test_a_late_row_below_a_given_up_gap_is_not_counted_twice() -> None:
    seen = SeenIds(0)
    seen.add([2], 0)
    seen.add([2], GAP_WAIT_US + 1)
    assert seen.low == 2
    assert seen.add([1, 2], GAP_WAIT_US + 2) == set()  # below the mark: never read again
