"""Responsible spending's rules, pure: a viewer's own limits, their cooling-off, the young
adults' default, self-exclusion and the periods a limit counts over (docs/economy.md,
"Responsible spending"). Plain values in and out, no database: the service
(economy/spending.py) loads and stores, and these decide.

    lowering a limit (or setting a first one)  in force at once, a pending raise dropped
    raising or removing one                   pending until now + cooling-off; a second raise
                                              while one waits: spending_limit_raise_pending
    a young adult's month                     min(own limit, the default): never above it
    a self-exclusion                          from now to its end: never shortened, only
                                              lengthened; an end in the past or too far: invalid
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from giftwave.errors import Code, Conflict, Forbidden, Invalid
from giftwave.identity.users import User, age_on

COIN_UNIT: Final = "COIN"
# The largest limit one may set: 2**40 coins is the operator's cap's bound too; above it a
# limit limits nothing and is most likely a typing slip.
LIMIT_MAX_COINS: Final = 2**40
US_PER_S: Final = 1_000_000
EXCLUSION_MIN_S: Final = 86_400
DAY_US: Final = 86_400 * US_PER_S
EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


class Period(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class LimitState:
    """One period's row: the limit in force, and a raise (or removal) waiting to apply."""

    period: Period
    limit_coins: int | None  # None: no own limit in force
    unit: str = COIN_UNIT  # what the viewer typed it in: COIN or an ISO currency
    entered: int | None = None  # in that unit (a currency's minor units)
    pending_coins: int | None = None  # with pending_at_us: None means the limit is removed
    pending_unit: str | None = None
    pending_entered: int | None = None
    pending_at_us: int | None = None

    def settled(self, at_us: int) -> LimitState:
        """The row as it stands at ``at_us``: a raise whose cooling-off is over has applied."""
        if self.pending_at_us is None or self.pending_at_us > at_us:
            return self
        return LimitState(
            self.period,
            self.pending_coins,
            self.pending_unit or COIN_UNIT,
            self.pending_entered,
        )

    def pending(self, at_us: int) -> bool:
        return self.pending_at_us is not None and self.pending_at_us > at_us


@dataclass(frozen=True, slots=True)
class LimitChange:
    """What a viewer asked: this period's limit in coins (converted from ``unit``), or None to
    remove it."""

    period: Period
    coins: int | None
    unit: str = COIN_UNIT
    entered: int | None = None


@dataclass(frozen=True, slots=True)
class YoungAdultRule:
    """A default monthly limit below an age (the country's own, else ``age``); 0: none."""

    age: int
    by_country: dict[str, int]
    month_coins: int

    def month_cap(self, user: User, today: date) -> int | None:
        if not self.month_coins:
            return None
        young = age_on(user.birth_date, today) < self.by_country.get(user.country, self.age)
        return self.month_coins if young else None


@dataclass(frozen=True, slots=True)
class SpendProfile:
    """What a gift needs to know about its sender's own spending rules."""

    limits: tuple[LimitState, ...] = ()
    time_zone: str = "UTC"
    excluded_until_us: int | None = None

    def excluded(self, at_us: int) -> bool:
        return self.excluded_until_us is not None and self.excluded_until_us > at_us


NO_PROFILE: Final = SpendProfile()


@dataclass(frozen=True, slots=True)
class PeriodWindow:
    """One period around an instant, in the viewer's zone: its key (the account's name part),
    and where it starts and ends."""

    period: Period
    key: str
    starts_at_us: int
    ends_at_us: int


@dataclass(frozen=True, slots=True)
class ChainLimits:
    """The spend legs a payment carries: the day (its account's date and the tighter of the
    operator's cap and the viewer's own, 0: none) and, for viewers who set them, the week's
    and the month's (window, limit). ``own_day``: the viewer's own day limit is the binding
    one (a refusal says ``spending_limit_reached``, else ``daily_spend_limit``)."""

    day_window: PeriodWindow
    day_limit_coins: int
    own_day: bool
    week: tuple[PeriodWindow, int] | None
    month: tuple[PeriodWindow, int] | None

    @property
    def day(self) -> date:
        return date.fromisoformat(self.day_window.key)


def in_force(profile: SpendProfile, at_us: int, young_cap: int | None) -> dict[Period, int]:
    """The viewer's own limits at ``at_us``, the young adults' default month included."""
    limits = {}
    for state in profile.limits:
        coins = state.settled(at_us).limit_coins
        if coins is not None:
            limits[state.period] = coins
    if young_cap is not None:
        limits[Period.MONTH] = min(limits.get(Period.MONTH, young_cap), young_cap)
    return limits


def chain_limits(
    profile: SpendProfile, at_us: int, young_cap: int | None, operator_day_coins: int
) -> ChainLimits:
    """The legs of a payment made at ``at_us``. A viewer with no limit of their own keeps the
    operator's leg alone, on the UTC day (the gift path of everyone else is as it was); one
    with limits counts every period in their own time zone."""
    own = in_force(profile, at_us, young_cap)
    if not own:  # nearly every sender: the operator's cap on the UTC day, made once a day
        return _operator_only(at_us - at_us % DAY_US, operator_day_coins)
    windows = {w.period: w for w in windows_at(at_us, profile.time_zone)}
    own_day = own.get(Period.DAY)
    day_limit = operator_day_coins
    if own_day is not None and (not operator_day_coins or own_day <= operator_day_coins):
        day_limit = own_day
    week, month = own.get(Period.WEEK), own.get(Period.MONTH)
    return ChainLimits(
        day_window=windows[Period.DAY],
        day_limit_coins=day_limit,
        own_day=own_day is not None and day_limit == own_day,
        week=None if week is None else (windows[Period.WEEK], week),
        month=None if month is None else (windows[Period.MONTH], month),
    )


def utc_day(at_us: int) -> date:
    """The UTC day of a timestamp in integer arithmetic (``clock.day_of`` builds a datetime:
    several times slower, and this runs for every gift)."""
    return date.fromordinal(EPOCH_ORDINAL + at_us // DAY_US)


@lru_cache(maxsize=4)
def _operator_only(day_start_us: int, operator_day_coins: int) -> ChainLimits:
    day = datetime.fromtimestamp(day_start_us // US_PER_S, tz=UTC).date()
    window = PeriodWindow(Period.DAY, day.isoformat(), day_start_us, day_start_us + DAY_US)
    return ChainLimits(window, operator_day_coins, False, None, None)


def zone_of(name: str) -> ZoneInfo:
    """A stored zone name's zone; one no longer known (tzdata changed) counts as UTC."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def windows_at(at_us: int, time_zone: str) -> list[PeriodWindow]:
    """The day (ISO date), the ISO week (2026-w49) and the month (2026-12) around ``at_us`` in
    ``time_zone``: a local day may be 23 or 25 hours long, which the bounds follow."""
    zone = zone_of(time_zone)
    local = datetime.fromtimestamp(at_us / US_PER_S, tz=zone)
    day = local.date()
    monday = day - timedelta(days=day.weekday())
    first = day.replace(day=1)
    next_month = (first + timedelta(days=32)).replace(day=1)
    iso_year, iso_week, _ = day.isocalendar()

    def at(d: date) -> int:
        return int(datetime(d.year, d.month, d.day, tzinfo=zone).timestamp()) * US_PER_S

    return [
        PeriodWindow(Period.DAY, day.isoformat(), at(day), at(day + timedelta(days=1))),
        PeriodWindow(
            Period.WEEK, f"{iso_year}-w{iso_week:02d}", at(monday), at(monday + timedelta(days=7))
        ),
        PeriodWindow(Period.MONTH, first.strftime("%Y-%m"), at(first), at(next_month)),
    ]


def check_limit_coins(coins: int) -> int:
    if not 1 <= coins <= LIMIT_MAX_COINS:
        raise Invalid(
            Code.INVALID_SPENDING_LIMIT,
            f"a spending limit is 1..{LIMIT_MAX_COINS:,} coins (or its worth in money)",
            max_coins=LIMIT_MAX_COINS,
        )
    return coins


def plan_change(
    current: LimitState | None,
    change: LimitChange,
    at_us: int,
    cooling_off_s: int,
    young_cap: int | None,
) -> LimitState:
    """The period's row after ``change``: a lowering at once, a raise after the cooling-off."""
    if change.coins is not None:
        check_limit_coins(change.coins)
    if (
        young_cap is not None
        and change.period is Period.MONTH
        and (change.coins is None or change.coins > young_cap)
    ):
        raise Forbidden(
            Code.YOUNG_ADULT_LIMIT,
            f"at your age the monthly limit is at most {young_cap:,} coins",
            max_coins=young_cap,
        )
    now = current.settled(at_us) if current is not None else LimitState(change.period, None)
    raising = now.limit_coins is not None and (
        change.coins is None or change.coins > now.limit_coins
    )
    if not raising:
        return LimitState(change.period, change.coins, change.unit, change.entered)
    if now.pending(at_us) and (now.pending_coins, now.pending_unit) == (change.coins, change.unit):
        return now  # the same raise again (a retry): the clock runs on, unchanged
    if now.pending(at_us):
        assert now.pending_at_us is not None
        raise Conflict(
            Code.SPENDING_LIMIT_RAISE_PENDING,
            "a raise of this limit is already waiting out its cooling-off",
            period=change.period.value,
            applies_at=iso_utc(now.pending_at_us),
        )
    return replace(
        now,
        pending_coins=change.coins,
        pending_unit=change.unit,
        pending_entered=change.entered,
        pending_at_us=at_us + cooling_off_s * US_PER_S,
    )


def plan_exclusion(
    current_ends_at_us: int | None, ends_at_us: int, at_us: int, max_days: int
) -> tuple[int, int]:
    """(starts, ends) of the self-exclusion asked to end at ``ends_at_us``: from now, or the
    running one lengthened. It is never shortened nor ended early."""
    if ends_at_us <= at_us:
        raise Invalid(Code.INVALID_SELF_EXCLUSION, "a self-exclusion ends in the future")
    if ends_at_us - at_us < EXCLUSION_MIN_S * US_PER_S:
        raise Invalid(Code.INVALID_SELF_EXCLUSION, "a self-exclusion lasts at least a day")
    if ends_at_us - at_us > max_days * 86_400 * US_PER_S:
        raise Invalid(
            Code.INVALID_SELF_EXCLUSION,
            f"a self-exclusion lasts at most {max_days:,} days",
            max_days=max_days,
        )
    running = current_ends_at_us is not None and current_ends_at_us > at_us
    if running and current_ends_at_us is not None and ends_at_us < current_ends_at_us:
        raise Conflict(
            Code.SELF_EXCLUSION_CANNOT_SHORTEN,
            "a self-exclusion cannot be shortened or undone before it ends",
            ends_at=iso_utc(current_ends_at_us),
        )
    return at_us, ends_at_us


def iso_utc(at_us: int) -> str:
    return datetime.fromtimestamp(at_us / US_PER_S, tz=UTC).isoformat(timespec="seconds")
