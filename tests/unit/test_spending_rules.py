"""Responsible spending's rules, pure (economy/spending_rules.py): no database."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from giftwave.economy.spending_rules import (
    LimitChange,
    LimitState,
    Period,
    SpendProfile,
    YoungAdultRule,
    chain_limits,
    plan_change,
    plan_exclusion,
    windows_at,
)
from giftwave.errors import Conflict, Forbidden, Invalid
from giftwave.identity.users import Role, User, UserStatus

S = 1_000_000
DAY = 86_400
NOW = int(datetime(2026, 12, 6, 23, 30, tzinfo=UTC).timestamp()) * S  # a Sunday


def user(born: date, country: str = "US") -> User:
    return User(1, "ana", None, Role.VIEWER, born, country, UserStatus.ACTIVE, False, None)


def test_lowering_is_at_once_and_raising_waits_the_cooling_off() -> None:
    state = plan_change(None, LimitChange(Period.DAY, 500), NOW, DAY, None)
    assert (state.limit_coins, state.pending_at_us) == (500, None)
    raised = plan_change(state, LimitChange(Period.DAY, 900), NOW, DAY, None)
    assert (raised.limit_coins, raised.pending_coins, raised.pending_at_us) == (
        500,
        900,
        NOW + DAY * S,
    )
    assert raised.settled(NOW + DAY * S - 1).limit_coins == 500
    assert raised.settled(NOW + DAY * S).limit_coins == 900
    with pytest.raises(Conflict) as refused:
        plan_change(raised, LimitChange(Period.DAY, 950), NOW + S, DAY, None)
    assert refused.value.code == "spending_limit_raise_pending"
    assert plan_change(raised, LimitChange(Period.DAY, 900), NOW + S, DAY, None) == raised
    lowered = plan_change(raised, LimitChange(Period.DAY, 100), NOW + S, DAY, None)
    assert (lowered.limit_coins, lowered.pending_at_us) == (100, None)


def test_removing_a_limit_is_a_raise() -> None:
    state = LimitState(Period.WEEK, 500)
    removed = plan_change(state, LimitChange(Period.WEEK, None), NOW, DAY, None)
    assert (removed.limit_coins, removed.pending_coins, removed.pending_at_us) == (
        500,
        None,
        NOW + DAY * S,
    )
    assert removed.settled(NOW + DAY * S).limit_coins is None


@pytest.mark.parametrize("coins", [0, -1, 2**40 + 1])
def test_absurd_limits_are_invalid(coins: int) -> None:
    with pytest.raises(Invalid):
        plan_change(None, LimitChange(Period.DAY, coins), NOW, DAY, None)


def test_a_young_adult_cannot_pass_the_default() -> None:
    rule = YoungAdultRule(21, {"DE": 20}, 300)
    assert rule.month_cap(user(date(2006, 1, 1)), date(2026, 12, 6)) == 300
    assert rule.month_cap(user(date(2006, 1, 1), "DE"), date(2026, 12, 6)) is None
    assert rule.month_cap(user(date(1990, 1, 1)), date(2026, 12, 6)) is None
    with pytest.raises(Forbidden):
        plan_change(None, LimitChange(Period.MONTH, 301), NOW, DAY, 300)
    assert plan_change(None, LimitChange(Period.MONTH, 299), NOW, DAY, 300).limit_coins == 299


def test_periods_follow_the_viewers_zone() -> None:
    utc = {w.period: w.key for w in windows_at(NOW, "UTC")}
    assert utc == {Period.DAY: "2026-12-06", Period.WEEK: "2026-w49", Period.MONTH: "2026-12"}
    tokyo = {w.period: w for w in windows_at(NOW, "Asia/Tokyo")}
    assert tokyo[Period.DAY].key == "2026-12-07"  # 08:30 on Monday there
    assert tokyo[Period.WEEK].key == "2026-w50"
    start = int(datetime(2026, 12, 6, 15, 0, tzinfo=UTC).timestamp()) * S
    assert tokyo[Period.DAY].starts_at_us == start


def test_without_own_limits_the_chain_has_the_operators_day_alone() -> None:
    plain = chain_limits(SpendProfile(time_zone="Asia/Tokyo"), NOW, None, 1_000)
    assert (plain.day, plain.day_limit_coins, plain.own_day) == (date(2026, 12, 6), 1_000, False)
    assert (plain.week, plain.month) == (None, None)
    own = SpendProfile((LimitState(Period.DAY, 200), LimitState(Period.MONTH, 900)), "Asia/Tokyo")
    limited = chain_limits(own, NOW, None, 1_000)
    assert (limited.day, limited.day_limit_coins, limited.own_day) == (date(2026, 12, 7), 200, True)
    assert limited.week is None
    assert limited.month is not None
    assert limited.month[1] == 900
    above_cap = chain_limits(SpendProfile((LimitState(Period.DAY, 5_000),)), NOW, None, 1_000)
    assert (above_cap.day_limit_coins, above_cap.own_day) == (1_000, False)


def test_a_self_exclusion_is_never_shortened() -> None:
    with pytest.raises(Invalid):
        plan_exclusion(None, NOW - 1, NOW, 365)
    with pytest.raises(Invalid):
        plan_exclusion(None, NOW + 3600 * S, NOW, 365)  # under a day
    with pytest.raises(Invalid):
        plan_exclusion(None, NOW + 366 * DAY * S, NOW, 365)
    assert plan_exclusion(None, NOW + 7 * DAY * S, NOW, 365) == (NOW, NOW + 7 * DAY * S)
    with pytest.raises(Conflict):
        plan_exclusion(NOW + 7 * DAY * S, NOW + 2 * DAY * S, NOW, 365)
    assert plan_exclusion(NOW + 7 * DAY * S, NOW + 9 * DAY * S, NOW, 365)[1] == NOW + 9 * DAY * S
    # One that has ended may be followed by a shorter one.
    assert plan_exclusion(NOW - 1, NOW + 2 * DAY * S, NOW, 365)[1] == NOW + 2 * DAY * S
