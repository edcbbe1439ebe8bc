"""Responsible spending, the viewer's side: their own limits, self-exclusion, what they spent
(docs/economy.md, "Responsible spending"). The rules are in ``spending_rules`` (pure); this
loads and stores them, keeps each sender's profile for the gift path, and answers the pages.

A limit is enforced by the ledger, like the operator's daily cap: a payment of a viewer with
limits carries one more leg per limited period (``user:<id>:spent:week:…``/``month:…``) whose
``debit_limit`` is the limit, and the day leg's limit is the tighter of the cap and their own
(economy/gifting.py, ``money_chain``). A viewer without limits of their own has no extra leg.
The profile of a sender is cached per node for a minute, and dropped on every node at
once when it changes (a ``UserChanged`` notice: api/app.py), so a lowered limit holds at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from babel.numbers import get_territory_currencies
from sqlalchemy import Connection, Engine, RowMapping, func, select

from giftwave.clock import day_of, now_us
from giftwave.config import Settings
from giftwave.db.batch_read import BatchReader
from giftwave.db.engine import reads
from giftwave.db.id_lists import in_parts
from giftwave.db.tables import (
    gift_sends,
    notify_settings,
    self_exclusions,
    spending_limits,
    subscription_periods,
    users,
)
from giftwave.db.upsert import insert_for
from giftwave.economy.limits import daily_spend_refused, period_spend_account
from giftwave.economy.packages import custom_rate, packages_in
from giftwave.economy.spending_rules import (
    COIN_UNIT,
    ChainLimits,
    LimitChange,
    LimitState,
    Period,
    PeriodWindow,
    SpendProfile,
    YoungAdultRule,
    chain_limits,
    in_force,
    iso_utc,
    plan_change,
    plan_exclusion,
    utc_day,
    windows_at,
    zone_of,
)
from giftwave.economy.wallets import Wallets
from giftwave.errors import Code, DomainError, Forbidden, Invalid, RateLimited
from giftwave.identity.users import User
from giftwave.money import check_currency
from giftwave.ttl_cache import TtlCache

PROFILES_MAX: Final = 100_000
# Every change of a profile (limits, self-exclusion, time zone) drops it on every node at once
# (a ``UserChanged`` notice; a gap in the notices drops them all): the lapse only bounds what
# a notice lost without a gap could keep. At 5 s, a room of 500 senders read 200 profiles a
# second again, a twentieth of the server's time under `bench api` on PostgreSQL.
PROFILE_TTL_S: Final = 60.0
PROFILE_REFRESH_S: Final = 30.0  # read again in the background from this age
# The suffix of each period's leg in a payment's chain (the day's is ``:s``, as before).
LEG_SUFFIX: Final = {Period.WEEK: ":sw", Period.MONTH: ":sm"}
REPORT_DAYS_MAX: Final = 31
REPORT_CREATORS_MAX: Final = 50


@dataclass(frozen=True, slots=True)
class SpendingPolicy:
    cooling_off_s: int
    exclusion_max_days: int
    young: YoungAdultRule
    daily_cap_coins: int  # the operator's (0: none)
    default_currency: str

    @classmethod
    def configured(cls, settings: Settings) -> SpendingPolicy:
        return cls(
            cooling_off_s=settings.spending_cooling_off_s,
            exclusion_max_days=settings.spending_exclusion_max_days,
            young=YoungAdultRule(
                settings.spending_young_adult_age,
                dict(settings.spending_young_adult_age_by_country),
                settings.spending_young_adult_month_coins,
            ),
            daily_cap_coins=settings.gift_daily_spend_max_coins,
            default_currency=settings.default_currency,
        )


@dataclass(frozen=True, slots=True)
class PeriodLeg:
    """A week's or month's spend leg of a payment: its id suffix, account and limit."""

    suffix: str
    account: int
    limit_coins: int


@dataclass(frozen=True, slots=True)
class LimitView:
    period: Period
    limit_coins: int | None  # in force now (the young adults' default included)
    unit: str
    entered: int | None
    spent_coins: int
    resets_at_us: int
    pending_coins: int | None
    pending_removal: bool
    pending_at_us: int | None
    max_coins: int | None  # a young adult's ceiling


@dataclass(frozen=True, slots=True)
class SpendingOverview:
    time_zone: str
    limits: tuple[LimitView, ...]
    excluded_from_us: int | None
    excluded_until_us: int | None
    cooling_off_s: int
    currency: str
    coin_rate: tuple[int, int] | None  # (coins, minor units): what coins are worth


@dataclass(frozen=True, slots=True)
class CreatorSpend:
    creator_id: int
    handle: str
    coins: int


@dataclass(frozen=True, slots=True)
class MonthSpend:
    month: str  # yyyy-mm
    coins: int
    per_creator: tuple[CreatorSpend, ...]
    per_day: tuple[tuple[str, int], ...]  # (yyyy-mm-dd, coins), every day of the month so far


@dataclass(frozen=True, slots=True)
class SpendingReport:
    currency: str
    coin_rate: tuple[int, int] | None
    this_month: MonthSpend
    last_month: MonthSpend
    average_month_coins: int  # of the months before this one with any spend

    def money(self, coins: int) -> int | None:
        """Coins' worth in the report's currency (minor units), at the custom-amount rate."""
        if self.coin_rate is None:
            return None
        rate_coins, rate_minor = self.coin_rate
        return coins * rate_minor // rate_coins


class Spending:
    def __init__(self, db: Engine, wallets: Wallets, policy: SpendingPolicy) -> None:
        self._db = db
        self._reads = reads(db)  # autocommit reads on PostgreSQL (db/engine.py)
        self._wallets = wallets
        self._policy = policy
        # A sender's profile is read again in the background before it lapses, with the other
        # senders' due at the same turn of the loop (one query each table): when it lapsed
        # instead, each sender's next gift read it on the gift path, a thousand senders in a
        # room two hundred reads a second on the worker threads the gifts share.
        self._profiles: TtlCache[int, SpendProfile] = TtlCache(
            max_entries=PROFILES_MAX, ttl_s=PROFILE_TTL_S, refresh_s=PROFILE_REFRESH_S
        )
        self._profile_reads: BatchReader[int, SpendProfile] = BatchReader(self._read_profiles)
        self._forgotten = 0  # bumped by forget: a read begun before it stores nothing

    @property
    def policy(self) -> SpendingPolicy:
        return self._policy

    # --- the gift path ----------------------------------------------------------------------

    def cached(self, user_id: int) -> SpendProfile | None:
        return self._profiles.get(user_id)

    def cached_refreshing(self, user_id: int) -> SpendProfile | None:
        """``cached``, on the event loop: a profile near its lapse is read again meanwhile."""
        profile, refresh = self._profiles.get_refreshing(user_id)
        if refresh:
            self._profile_reads.prefetch(user_id)
        return profile

    def forget(self, user_id: int) -> None:
        self._forgotten += 1
        self._profiles.drop(user_id)

    def forget_all(self) -> None:
        self._forgotten += 1
        self._profiles.clear()

    def _read_profiles(self, user_ids: list[int]) -> dict[int, SpendProfile]:
        forgotten = self._forgotten
        with self._reads.connect() as conn:
            found = _load_profiles(conn, user_ids)
        if forgotten == self._forgotten:  # no change on this node since the read began
            for user_id, profile in found.items():
                self._profiles.put(user_id, profile)
        return found

    def profile(self, user_id: int) -> SpendProfile:
        """The sender's limits, zone and exclusion, read (and kept: ``PROFILE_TTL_S``)."""
        with self._db.connect() as conn:
            found = _load_profile(conn, user_id)
        self._profiles.put(user_id, found)
        return found

    def limits_for(self, user: User, profile: SpendProfile, at_us: int) -> ChainLimits:
        young = None
        if self._policy.young.month_coins:
            young = self._policy.young.month_cap(user, utc_day(at_us))
        return chain_limits(profile, at_us, young, self._policy.daily_cap_coins)

    def cached_period_legs(self, user_id: int, limits: ChainLimits) -> tuple[PeriodLeg, ...] | None:
        legs = []
        for window, limit in _limited(limits):
            name = period_spend_account(user_id, window.period.value, window.key)
            account = self._wallets.cached_period_account(name)
            if account is None:
                return None
            legs.append(PeriodLeg(LEG_SUFFIX[window.period], account, limit))
        return tuple(legs)

    def period_legs(self, user_id: int, limits: ChainLimits) -> tuple[PeriodLeg, ...]:
        """The week and month legs, their accounts opened on first need (a thread)."""
        return tuple(
            PeriodLeg(
                LEG_SUFFIX[window.period],
                self._wallets.period_account(
                    user_id, period_spend_account(user_id, window.period.value, window.key)
                ),
                limit,
            )
            for window, limit in _limited(limits)
        )

    def refusal(
        self, user_id: int, failed_id: str, limits: ChainLimits, day_account: int | None
    ) -> DomainError:
        """The answer to a payment whose spend leg ``failed_id`` the ledger refused for its
        limit: the viewer's own (``spending_limit_reached``) or the operator's daily cap."""
        at = now_us()
        for window, limit in _limited(limits):
            if failed_id.endswith(LEG_SUFFIX[window.period]):
                name = period_spend_account(user_id, window.period.value, window.key)
                spent = self._spent(self._wallets.cached_period_account(name))
                return limit_reached(window, limit, spent, at)
        spent = self._spent(day_account)
        if limits.own_day:
            return limit_reached(limits.day_window, limits.day_limit_coins, spent, at)
        return daily_spend_refused(limits.day_limit_coins, spent)

    def check_not_excluded(self, user_id: int) -> None:
        """Raise ``self_excluded`` while the user's self-exclusion runs (read fresh: rare)."""
        profile = self.profile(user_id)
        if profile.excluded(now_us()):
            raise excluded(profile)

    def _spent(self, account_id: int | None) -> int:
        if account_id is None:
            return 0
        (account,) = self._wallets.accounts([account_id])
        return account.debits_posted + account.debits_pending - account.credits_posted

    # --- the viewer's page ------------------------------------------------------------------

    def overview(self, user: User) -> SpendingOverview:
        at = now_us()
        profile = self.profile(user.id)
        young = self._policy.young.month_cap(user, day_of(at))
        own = in_force(profile, at, young)
        states = {s.period: s.settled(at) for s in profile.limits}
        windows = windows_at(at, profile.time_zone)
        spent = self._spent_in(user.id, windows)
        views = []
        for window in windows:
            state = states.get(window.period, LimitState(window.period, None))
            pending = state.pending(at)
            views.append(
                LimitView(
                    period=window.period,
                    limit_coins=own.get(window.period),
                    unit=state.unit,
                    entered=state.entered,
                    spent_coins=spent[window.period],
                    resets_at_us=window.ends_at_us,
                    pending_coins=state.pending_coins if pending else None,
                    pending_removal=pending and state.pending_coins is None,
                    pending_at_us=state.pending_at_us if pending else None,
                    max_coins=young if window.period is Period.MONTH else None,
                )
            )
        ex_from, ex_until = self._exclusion(user.id)
        currency, rate = self._rate(user, profile)
        return SpendingOverview(
            time_zone=profile.time_zone,
            limits=tuple(views),
            excluded_from_us=ex_from if profile.excluded(at) else None,
            excluded_until_us=ex_until if profile.excluded(at) else None,
            cooling_off_s=self._policy.cooling_off_s,
            currency=currency,
            coin_rate=rate,
        )

    def to_coins(self, amount: int, unit: str) -> int:
        """A limit typed in ``unit`` (COIN, or a currency's minor units) in coins: what that
        money buys at the custom-amount rate (economy/packages.py), rounded down."""
        if unit == COIN_UNIT:
            return amount
        try:
            check_currency(unit)
        except DomainError:
            raise Invalid(
                Code.INVALID_SPENDING_LIMIT, f"{unit!r} is neither COIN nor a currency"
            ) from None
        packages = packages_in(self._db, [unit])
        if not packages:
            raise Invalid(Code.INVALID_SPENDING_LIMIT, f"coins are not sold in {unit}")
        rate = custom_rate(packages)
        return amount * rate.coins // rate.price_minor

    def set_limits(self, user: User, changes: list[LimitChange]) -> None:
        """Every change in one transaction: all or none (a refused raise writes nothing)."""
        at = now_us()
        young = self._policy.young.month_cap(user, day_of(at))
        with self._db.begin() as conn:
            rows = conn.execute(
                select(spending_limits)
                .where(spending_limits.c.user_id == user.id)
                # Two raises at once on two nodes: the second waits, then sees the first.
                .with_for_update()
            ).all()
            current = {s.period: s for s in (_to_state(r._mapping) for r in rows)}
            for change in changes:
                state = plan_change(
                    current.get(change.period), change, at, self._policy.cooling_off_s, young
                )
                _store_limit(conn, user.id, state, at)
        self.forget(user.id)

    def exclude(self, user: User, ends_at_us: int) -> None:
        at = now_us()
        with self._db.begin() as conn:
            row = conn.execute(
                select(self_exclusions.c.starts_at_us, self_exclusions.c.ends_at_us)
                .where(self_exclusions.c.user_id == user.id)
                .with_for_update()
            ).first()
            running = row is not None and int(row[1]) > at
            starts, ends = plan_exclusion(
                int(row[1]) if row is not None else None,
                ends_at_us,
                at,
                self._policy.exclusion_max_days,
            )
            if running and row is not None:
                starts = int(row[0])
            values = {"starts_at_us": starts, "ends_at_us": ends}
            statement = insert_for(conn, self_exclusions).values(user_id=user.id, **values)
            conn.execute(statement.on_conflict_do_update(index_elements=["user_id"], set_=values))
        self.forget(user.id)

    def report(self, user: User) -> SpendingReport:
        """This month and last, per creator and per day, in the viewer's zone."""
        at = now_us()
        profile = self.profile(user.id)
        month = windows_at(at, profile.time_zone)[2]
        last = windows_at(month.starts_at_us - 1, profile.time_zone)[2]
        currency, rate = self._rate(user, profile)
        with self._db.connect() as conn:
            this_spend = _month_spend(conn, user.id, month, min(at, month.ends_at_us), profile)
            last_spend = _month_spend(conn, user.id, last, last.ends_at_us, profile)
            average = _average_month(conn, user.id, month.starts_at_us)
        return SpendingReport(currency, rate, this_spend, last_spend, average)

    def months_and_averages(self, user_ids: list[int]) -> dict[int, tuple[str, int, int]]:
        """Each viewer's month key and spend so far, and their average month before it (the
        reminders): grouped queries per month window (viewers in one time zone share it), not
        three queries per viewer."""
        at = now_us()
        with self._db.connect() as conn:
            missing = [user_id for user_id in user_ids if self.cached(user_id) is None]
            profiles = _load_profiles(conn, missing) if missing else {}
            windows: dict[PeriodWindow, list[int]] = {}
            for user_id in user_ids:
                profile = self.cached(user_id) or profiles[user_id]
                windows.setdefault(windows_at(at, profile.time_zone)[2], []).append(user_id)
            out: dict[int, tuple[str, int, int]] = {}
            for month, ids in windows.items():
                spent = _paid_between_many(conn, ids, month.starts_at_us, month.ends_at_us)
                averages = _average_months(conn, ids, month.starts_at_us)
                for user_id in ids:
                    out[user_id] = (month.key, spent.get(user_id, 0), averages.get(user_id, 0))
        return out

    def _spent_in(self, user_id: int, windows: list[PeriodWindow]) -> dict[Period, int]:
        """What the viewer spent in each window, from their payments' rows."""
        with self._db.connect() as conn:
            return {
                w.period: _paid_between(conn, user_id, w.starts_at_us, w.ends_at_us)
                for w in windows
            }

    def _exclusion(self, user_id: int) -> tuple[int | None, int | None]:
        with self._db.connect() as conn:
            row = conn.execute(
                select(self_exclusions.c.starts_at_us, self_exclusions.c.ends_at_us).where(
                    self_exclusions.c.user_id == user_id
                )
            ).first()
        return (None, None) if row is None else (int(row[0]), int(row[1]))

    def _rate(self, user: User, profile: SpendProfile) -> tuple[str, tuple[int, int] | None]:
        """The currency the viewer reads money in (the one they typed a limit in, else their
        country's, else the default) and what coins are worth in it."""
        chosen = [s.unit for s in profile.limits if s.unit != COIN_UNIT]
        country = get_territory_currencies(user.country)[:1] if user.country else []
        candidates = [*chosen[:1], *country, self._policy.default_currency, "USD"]
        packages = packages_in(self._db, candidates)
        if not packages:
            return candidates[0], None
        rate = custom_rate(packages)
        return rate.currency, (rate.coins, rate.price_minor)


def excluded(profile: SpendProfile) -> Forbidden:
    assert profile.excluded_until_us is not None
    return Forbidden(
        Code.SELF_EXCLUDED,
        "you excluded yourself from spending until "
        f"{iso_utc(profile.excluded_until_us)}: no top-ups, gifts or paid messages",
        until=iso_utc(profile.excluded_until_us),
    )


def limit_reached(window: PeriodWindow, limit: int, spent: int, at_us: int) -> RateLimited:
    return RateLimited(
        Code.SPENDING_LIMIT_REACHED,
        f"you reached your own {window.period.value}ly spending limit of {limit:,} coins"
        if window.period is not Period.DAY
        else f"you reached your own daily spending limit of {limit:,} coins",
        retry_after_s=max(1.0, (window.ends_at_us - at_us) / 1e6),
        limit=window.period.value,
        limit_coins=limit,
        spent_coins=spent,
        resets_at=iso_utc(window.ends_at_us),
    )


def _limited(limits: ChainLimits) -> list[tuple[PeriodWindow, int]]:
    return [found for found in (limits.week, limits.month) if found is not None]


def _to_state(m: RowMapping) -> LimitState:
    g = m.__getitem__
    return LimitState(
        period=Period(g("period")),
        limit_coins=None if g("limit_coins") is None else int(g("limit_coins")),
        unit=str(g("unit")),
        entered=None if g("entered") is None else int(g("entered")),
        pending_coins=None if g("pending_coins") is None else int(g("pending_coins")),
        pending_unit=g("pending_unit"),
        pending_entered=None if g("pending_entered") is None else int(g("pending_entered")),
        pending_at_us=None if g("pending_at_us") is None else int(g("pending_at_us")),
    )


def _store_limit(conn: Connection, user_id: int, state: LimitState, at_us: int) -> None:
    values = {
        "limit_coins": state.limit_coins,
        "unit": state.unit,
        "entered": state.entered,
        "pending_coins": state.pending_coins,
        "pending_unit": state.pending_unit,
        "pending_entered": state.pending_entered,
        "pending_at_us": state.pending_at_us,
        "updated_at_us": at_us,
    }
    statement = insert_for(conn, spending_limits).values(
        user_id=user_id, period=state.period.value, **values
    )
    conn.execute(statement.on_conflict_do_update(index_elements=["user_id", "period"], set_=values))


def _load_profile(conn: Connection, user_id: int) -> SpendProfile:
    return _load_profiles(conn, [user_id])[user_id]


def _load_profiles(conn: Connection, user_ids: list[int]) -> dict[int, SpendProfile]:
    """Each user's limits, time zone and self-exclusion: three queries for them all."""
    limits: dict[int, list[LimitState]] = {}
    until: dict[int, int] = {}
    zones: dict[int, str] = {}
    e, n = self_exclusions.c, notify_settings.c
    for part in in_parts(user_ids):
        for row in conn.execute(select(spending_limits).where(spending_limits.c.user_id.in_(part))):
            limits.setdefault(int(row.user_id), []).append(_to_state(row._mapping))
        for user_id, ends_at_us in conn.execute(
            select(e.user_id, e.ends_at_us).where(e.user_id.in_(part))
        ):
            until[int(user_id)] = int(ends_at_us)
        for user_id, zone in conn.execute(
            select(n.user_id, n.time_zone).where(n.user_id.in_(part), n.time_zone.is_not(None))
        ):
            if zone:
                zones[int(user_id)] = str(zone)
    return {
        user_id: SpendProfile(
            limits=tuple(limits.get(user_id, ())),
            time_zone=zones.get(user_id, "UTC"),
            excluded_until_us=until.get(user_id),
        )
        for user_id in user_ids
    }


def _paid_between(conn: Connection, user_id: int, from_us: int, to_us: int) -> int:
    """Coins the user paid for gifts (not reversed) and subscription periods in a window."""
    return _paid_between_many(conn, [user_id], from_us, to_us).get(user_id, 0)


def _paid_between_many(
    conn: Connection, user_ids: list[int], from_us: int, to_us: int
) -> dict[int, int]:
    """``_paid_between`` of many users (those with nothing paid are left out)."""
    g, p = gift_sends.c, subscription_periods.c
    paid: dict[int, int] = {}
    for part in in_parts(user_ids):
        gifts = conn.execute(
            select(g.sender_id, func.sum(g.coins))
            .where(
                g.sender_id.in_(part),
                g.created_at_us >= from_us,
                g.created_at_us < to_us,
                g.reversed.is_(False),
            )
            .group_by(g.sender_id)
        )
        subs = conn.execute(
            select(p.subscriber_id, func.sum(p.coins))
            .where(p.subscriber_id.in_(part), p.created_at_us >= from_us, p.created_at_us < to_us)
            .group_by(p.subscriber_id)
        )
        for user_id, coins in [*gifts, *subs]:
            paid[int(user_id)] = paid.get(int(user_id), 0) + int(coins or 0)
    return paid


def _average_months(conn: Connection, user_ids: list[int], before_us: int) -> dict[int, int]:
    """``_average_month`` of many users (those with no history are left out)."""
    g = gift_sends.c
    averages: dict[int, int] = {}
    for part in in_parts(user_ids):
        for user_id, first, total in conn.execute(
            select(g.sender_id, func.min(g.created_at_us), func.coalesce(func.sum(g.coins), 0))
            .where(g.sender_id.in_(part), g.created_at_us < before_us, g.reversed.is_(False))
            .group_by(g.sender_id)
        ):
            months = max(1, -(-(before_us - int(first)) // (30 * 86_400 * 1_000_000)))
            averages[int(user_id)] = int(total) // months
    return averages


def _month_spend(
    conn: Connection, user_id: int, month: PeriodWindow, to_us: int, profile: SpendProfile
) -> MonthSpend:
    """A month's gifts (not reversed) and subscription periods: total, per creator (most
    first), per local day (every day of the month up to ``to_us``, zero included)."""
    g, p, u = gift_sends.c, subscription_periods.c, users.c
    rows = [
        *conn.execute(
            select(g.creator_id, g.coins, g.created_at_us).where(
                g.sender_id == user_id,
                g.created_at_us >= month.starts_at_us,
                g.created_at_us < month.ends_at_us,
                g.reversed.is_(False),
            )
        ),
        *conn.execute(
            select(p.creator_id, p.coins, p.created_at_us).where(
                p.subscriber_id == user_id,
                p.created_at_us >= month.starts_at_us,
                p.created_at_us < month.ends_at_us,
            )
        ),
    ]
    zone = zone_of(profile.time_zone)
    per_creator: dict[int, int] = {}
    per_day: dict[str, int] = {}
    day = datetime.fromtimestamp(month.starts_at_us / 1e6, tz=zone).date()
    last = datetime.fromtimestamp((max(to_us, month.starts_at_us + 1) - 1) / 1e6, tz=zone).date()
    while day <= last and len(per_day) < REPORT_DAYS_MAX:
        per_day[day.isoformat()] = 0
        day += timedelta(days=1)
    for creator_id, coins, at_us in rows:
        per_creator[int(creator_id)] = per_creator.get(int(creator_id), 0) + int(coins)
        key = datetime.fromtimestamp(int(at_us) / 1e6, tz=zone).date().isoformat()
        per_day[key] = per_day.get(key, 0) + int(coins)
    top = sorted(per_creator.items(), key=lambda kv: (-kv[1], kv[0]))[:REPORT_CREATORS_MAX]
    handles: dict[int, str] = {}
    if top:
        found = conn.execute(select(u.id, u.handle).where(u.id.in_([c for c, _ in top])))
        handles = {int(user_id): str(handle) for user_id, handle in found}
    return MonthSpend(
        month=month.key,
        coins=sum(per_creator.values()),
        per_creator=tuple(CreatorSpend(c, str(handles.get(c, "")), coins) for c, coins in top),
        per_day=tuple(sorted(per_day.items())),
    )


def _average_month(conn: Connection, user_id: int, before_us: int) -> int:
    """The viewer's average month before ``before_us``: spend since their first payment
    divided by the months it spans (30-day months; 0 with no history)."""
    return _average_months(conn, [user_id], before_us).get(user_id, 0)
