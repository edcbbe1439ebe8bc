"""The health figures, read from the rollups (never from the transfers themselves).

    economy_report(conn, ...)    operator: coins and diamonds, concentration, creator income,
                                 refund and chargeback rates, cohort retention
    creator_report(conn, id)     a creator: earnings per day and week, gifter concentration,
                                 returning vs new gifters, average gift
    stream_report(conn, id)      one stream: viewers and gifts per minute, gifters, conversion,
                                 shares, the minutes gifts spiked and what was happening

Each answers a frozen dataclass; ``tables()`` gives the same figures as named tables (header,
rows) for CSV and for the charts' text alternatives. Definitions: docs/analytics.md.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, and_, case, func, or_, select

from giftwave.analytics.metrics import (
    gini_of_buckets,
    lorenz_of_buckets,
    percentile_rank,
    rate,
    top_count,
)
from giftwave.analytics.rollup import (
    MINUTE_US,
    WEEK_START_OFFSET_DAYS,
    week_of_day,
    week_start_day,
)
from giftwave.db.tables import (
    accounts,
    analytics_cohort_weeks,
    analytics_creator_days,
    analytics_creator_gifters,
    analytics_creators,
    analytics_economy_days,
    analytics_gifter_buckets,
    analytics_gifters,
    analytics_stream_gifters,
    analytics_stream_minutes,
    analytics_stream_viewers,
    battles,
    follows,
    gift_sends,
    payouts,
    share_links,
    share_visits,
    stream_goals,
    streams,
    transfers,
)

LORENZ_POINTS: Final = 20
DAYS_MAX: Final = 366
COHORTS_SHOWN: Final = 8
SPIKES_MAX: Final = 5
SPIKE_SENDS_READ_MAX: Final = 5_000
COMBO_MIN_SENDS: Final = 10
MICROS_PER_CENT: Final = 10_000
# Creator income bands, in US cents earned in total (the last is open-ended).
INCOME_BANDS_CENTS: Final = (0, 100, 1_000, 5_000, 10_000, 100_000)
Table = tuple[list[str], list[list[Any]]]


def _summary(figures: dict[str, Any]) -> Table:
    """A report's single figures, one row each (its lists are tables of their own)."""
    rows = [
        [k, v] for k, v in figures.items() if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    return ["figure", "value"], rows


def day_label(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, tz=UTC).date().isoformat()


def minute_label(minute_us: int) -> str:
    return datetime.fromtimestamp(minute_us / 1_000_000, tz=UTC).strftime("%Y-%m-%d %H:%M")


# --- economy-wide --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EconomyDay:
    """One UTC day. Like the headline, every gift figure is net of the reversals booked that
    day (a reversal counts on the day the ledger made it, so a day that reversed older gifts
    can be negative); the rows of every day add up to the headline."""

    day: str
    coins_sold: int
    coins_spent: int  # net of reversals
    diamonds_earned: int  # net of reversals
    diamonds_paid_out: int
    topups: int
    gifts: int  # net of reversed gifts
    coins_reversed: int  # what the reversals gave back, already taken off coins_spent


@dataclass(frozen=True, slots=True)
class Cohort:
    week_start: str
    gifters: int
    retained: list[float]  # share still gifting 1, 2, … weeks later (up to the last week)


@dataclass(frozen=True, slots=True)
class PayoutMoney:
    """Money out in one currency, in its minor unit (docs/economy.md, "Fees"): what reached
    creators (net: payouts paid, or approved where the operator pays by hand), the payout
    provider's fees (the ledger's fees account: a reversed payout's fee stays), and the
    platform's outlay, gross = net + fees."""

    currency: str
    payouts: int
    gross_minor: int
    fees_minor: int
    net_minor: int


@dataclass(frozen=True, slots=True)
class EconomyReport:
    coins_sold: int
    coins_granted: int
    coins_spent: int
    coins_refunded: int
    coins_charged_back: int
    coins_reversed: int
    coins_outstanding: int  # the liability: coins users hold, net of clawbacks and debts
    diamonds_earned: int
    diamonds_paid_out: int
    diamonds_outstanding: int
    topups: int
    refunds: int
    chargebacks: int
    refund_rate: float  # refund events per top-up
    chargeback_rate: float
    refunded_coin_share: float  # coins clawed back by refunds / coins sold
    gifters: int
    gifted_coins: int
    top1pct_gifters: int
    top1pct_share: float
    gini: float
    lorenz: list[tuple[float, float]]
    creators: int
    creator_median_diamonds: int
    creator_p90_diamonds: int
    payout_min_diamonds: int
    creators_above_payout_min: int
    creators_above_payout_min_share: float
    income_bands: list[tuple[str, int]]
    cohorts: list[Cohort]
    days: list[EconomyDay] = field(default_factory=list)
    payouts: list[PayoutMoney] = field(default_factory=list)  # by currency
    # Subscriptions' periods (docs/analytics.md): coins of every period, paid and gifted, and
    # the gifted ones alone; the creators' diamonds from them.
    subscription_coins: int = 0
    subscriptions: int = 0
    gifted_subscription_coins: int = 0
    gifted_subscriptions: int = 0
    subscription_diamonds: int = 0

    @property
    def empty(self) -> bool:
        return self.coins_sold == 0 and self.coins_granted == 0 and self.gifters == 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def tables(self) -> dict[str, Table]:
        return {
            "days": (
                [
                    "day",
                    "coins_sold",
                    "coins_spent",
                    "diamonds_earned",
                    "diamonds_paid_out",
                    "topups",
                    "gifts",
                    "coins_reversed",
                ],
                [
                    [
                        d.day,
                        d.coins_sold,
                        d.coins_spent,
                        d.diamonds_earned,
                        d.diamonds_paid_out,
                        d.topups,
                        d.gifts,
                        d.coins_reversed,
                    ]
                    for d in self.days
                ],
            ),
            "lorenz": (
                ["share_of_gifters", "share_of_coins"],
                [[round(x, 4), round(y, 4)] for x, y in self.lorenz],
            ),
            "income_bands": (["band_usd", "creators"], [list(b) for b in self.income_bands]),
            "payouts": (
                ["currency", "payouts", "gross_minor", "fees_minor", "net_minor"],
                [
                    [p.currency, p.payouts, p.gross_minor, p.fees_minor, p.net_minor]
                    for p in self.payouts
                ],
            ),
            "cohorts": (
                ["week_start", "gifters", *[f"week_{i + 1}" for i in range(COHORTS_SHOWN - 1)]],
                [
                    [c.week_start, c.gifters, *[round(r, 4) for r in c.retained]]
                    for c in self.cohorts
                ],
            ),
            "summary": _summary(self.as_dict()),
        }


def economy_report(
    conn: Connection, *, payout_min_cents: int, diamond_value_usd_micros: int, days: int = 90
) -> EconomyReport:
    assert 1 <= days <= DAYS_MAX
    e = analytics_economy_days.c
    sums = conn.execute(
        select(
            *[
                func.coalesce(func.sum(c), 0)
                for c in analytics_economy_days.columns
                if c.name != "day"
            ]
        )
    ).one()
    t = dict(
        zip(
            [c.name for c in analytics_economy_days.columns if c.name != "day"],
            (int(v) for v in sums),
            strict=True,
        )
    )
    last_day = conn.execute(select(func.max(e.day))).scalar()
    day_rows: Sequence[Any] = []
    if last_day is not None:
        day_rows = conn.execute(
            select(
                e.day,
                e.coins_sold,
                e.coins_spent,
                e.diamonds_earned,
                e.diamonds_paid_out,
                e.topups,
                e.gifts,
                e.coins_reversed,
                e.diamonds_reversed,
                e.gift_reversals,
            )
            .where(e.day > int(last_day) - days)
            .order_by(e.day)
        ).all()
    n, total, top1_n, top1_share, g, lorenz = _concentration(conn)
    min_diamonds = math.ceil(payout_min_cents * MICROS_PER_CENT / diamond_value_usd_micros)
    creators, median, p90, above = _creator_spread(conn, min_diamonds)
    coins_spent_net = t["coins_spent"] - t["coins_reversed"]
    subscription_coins = t["subscription_coins"] + t["gifted_subscription_coins"]
    coins_issued_net = (
        t["coins_sold"] + t["coins_granted"] - t["coins_refunded"] - t["coins_charged_back"]
    )
    diamonds_net = t["diamonds_earned"] - t["diamonds_reversed"]
    return EconomyReport(
        coins_sold=t["coins_sold"],
        coins_granted=t["coins_granted"],
        coins_spent=coins_spent_net,
        coins_refunded=t["coins_refunded"],
        coins_charged_back=t["coins_charged_back"],
        coins_reversed=t["coins_reversed"],
        # Subscriptions spend coins and earn diamonds as gifts do: what users and creators
        # still hold is net of them too.
        coins_outstanding=coins_issued_net - coins_spent_net - subscription_coins,
        diamonds_earned=diamonds_net,
        diamonds_paid_out=t["diamonds_paid_out"],
        diamonds_outstanding=(diamonds_net + t["subscription_diamonds"] - t["diamonds_paid_out"]),
        topups=t["topups"],
        refunds=t["refunds"],
        chargebacks=t["chargebacks"],
        refund_rate=rate(t["refunds"], t["topups"]),
        chargeback_rate=rate(t["chargebacks"], t["topups"]),
        refunded_coin_share=rate(t["coins_refunded"], t["coins_sold"]),
        gifters=n,
        gifted_coins=total,
        top1pct_gifters=top1_n,
        top1pct_share=top1_share,
        gini=g,
        lorenz=lorenz,
        creators=creators,
        creator_median_diamonds=median,
        creator_p90_diamonds=p90,
        payout_min_diamonds=min_diamonds,
        creators_above_payout_min=above,
        creators_above_payout_min_share=rate(above, creators),
        income_bands=_income_bands(conn, diamond_value_usd_micros),
        cohorts=_cohorts(conn),
        days=[_economy_day(r) for r in day_rows],
        payouts=payout_money(conn),
        subscription_coins=subscription_coins,
        subscriptions=t["subscriptions"] + t["gifted_subscriptions"],
        gifted_subscription_coins=t["gifted_subscription_coins"],
        gifted_subscriptions=t["gifted_subscriptions"],
        subscription_diamonds=t["subscription_diamonds"],
    )


FEES_ACCOUNT_PREFIX: Final = "platform:payout_fees:"
# What reached a creator: paid through a provider, or approved where the operator pays by hand.
PAID_STATUSES: Final = ("paid", "approved")


def payout_money(conn: Connection) -> list[PayoutMoney]:
    """Gross, fees and net of payouts per currency (the payee's, US dollars by hand)."""
    currency = func.coalesce(payouts.c.payout_currency, payouts.c.currency)
    sent = conn.execute(
        select(
            currency,
            func.count(),
            func.sum(func.coalesce(payouts.c.payout_amount_minor, payouts.c.amount_minor)),
        )
        .where(payouts.c.status.in_(PAID_STATUSES))
        .group_by(currency)
    ).all()
    # The fees account is debited with every fee (economy/payout_transfers.py).
    fees = conn.execute(
        select(accounts.c.asset, accounts.c.debits_posted - accounts.c.credits_posted).where(
            accounts.c.name.like(FEES_ACCOUNT_PREFIX + "%")
        )
    ).all()
    count_by = {str(c): (int(n), int(total)) for c, n, total in sent}
    fee_by = {str(c): int(f) for c, f in fees}
    return [
        PayoutMoney(
            currency=c,
            payouts=count_by.get(c, (0, 0))[0],
            gross_minor=count_by.get(c, (0, 0))[1] + fee_by.get(c, 0),
            fees_minor=fee_by.get(c, 0),
            net_minor=count_by.get(c, (0, 0))[1],
        )
        for c in sorted(count_by.keys() | fee_by.keys())
    ]


def _economy_day(r: Any) -> EconomyDay:
    """A day's row net of its reversals, as the headline is (it counted them before, while the
    headline did not: 254,010 coins spent beside a headline of 8,517)."""
    return EconomyDay(
        day=day_label(int(r.day)),
        coins_sold=int(r.coins_sold),
        coins_spent=int(r.coins_spent) - int(r.coins_reversed),
        diamonds_earned=int(r.diamonds_earned) - int(r.diamonds_reversed),
        diamonds_paid_out=int(r.diamonds_paid_out),
        topups=int(r.topups),
        gifts=int(r.gifts) - int(r.gift_reversals),
        coins_reversed=int(r.coins_reversed),
    )


def _concentration(
    conn: Connection,
) -> tuple[int, int, int, float, float, list[tuple[float, float]]]:
    """Gifters with coins, their coins, the top 1% (count, share), Gini and the Lorenz curve.
    Gini and Lorenz come from the gifter buckets (metrics: within 1/512), the top 1% from the
    largest totals themselves (an index read of 1% of the gifters)."""
    gb = analytics_gifter_buckets.c
    buckets = [
        (int(n), int(coins))
        for n, coins in conn.execute(
            select(gb.gifters, gb.coins).where(gb.gifters > 0).order_by(gb.coins_from)
        )
    ]
    n = sum(b[0] for b in buckets)
    total = sum(b[1] for b in buckets)
    if n == 0:
        return 0, 0, 0, 0.0, 0.0, []
    k = top_count(n, 0.01)
    top_k = _top(analytics_gifters.c.coins, k)
    top = conn.execute(select(func.coalesce(func.sum(top_k.c.coins), 0))).scalar_one()
    return (
        n,
        total,
        k,
        rate(int(top), total),
        gini_of_buckets(buckets),
        lorenz_of_buckets(buckets, LORENZ_POINTS),
    )


def _top(column: Any, k: int) -> Any:
    return select(column).where(column > 0).order_by(column.desc()).limit(k).subquery()


def _creator_spread(conn: Connection, min_diamonds: int) -> tuple[int, int, int, int]:
    c = analytics_creators.c
    n = int(conn.execute(select(func.count()).where(c.diamonds > 0)).scalar_one())
    if n == 0:
        return 0, 0, 0, 0

    def at(q: float) -> int:
        value = conn.execute(
            select(c.diamonds)
            .where(c.diamonds > 0)
            .order_by(c.diamonds)
            .offset(percentile_rank(n, q))
            .limit(1)
        ).scalar_one()
        return int(value)

    above = int(conn.execute(select(func.count()).where(c.diamonds >= min_diamonds)).scalar_one())
    return n, at(50), at(90), above


def _income_bands(conn: Connection, micros: int) -> list[tuple[str, int]]:
    c = analytics_creators.c
    cents = c.diamonds * micros / MICROS_PER_CENT
    bounds = INCOME_BANDS_CENTS
    band = case(
        *[(cents < bounds[i + 1], i) for i in range(len(bounds) - 1)], else_=len(bounds) - 1
    )
    counts: dict[int, int] = dict(
        conn.execute(
            select(band.label("band"), func.count()).where(c.diamonds > 0).group_by("band")
        ).all()
    )
    labels = [
        f"${bounds[i] // 100:,}-{bounds[i + 1] // 100:,}"
        if i + 1 < len(bounds)
        else f"≥ ${bounds[i] // 100:,}"
        for i in range(len(bounds))
    ]
    labels[0] = f"< ${bounds[1] // 100:,}"
    return [(labels[i], int(counts.get(i, 0))) for i in range(len(bounds))]


def _cohorts(conn: Connection) -> list[Cohort]:
    cw = analytics_cohort_weeks.c
    last = conn.execute(select(func.max(cw.week))).scalar()
    if last is None:
        return []
    rows = conn.execute(
        select(cw.cohort_week, cw.week, cw.gifters).where(
            cw.cohort_week > int(last) - COHORTS_SHOWN
        )
    ).all()
    grid: dict[int, dict[int, int]] = {}
    for cohort, week, n in rows:
        grid.setdefault(int(cohort), {})[int(week)] = int(n)
    out = []
    for cohort in sorted(grid):
        size = grid[cohort].get(cohort, 0)
        later = [
            rate(grid[cohort].get(cohort + i, 0), size)
            for i in range(1, min(COHORTS_SHOWN, int(last) - cohort + 1))
        ]
        out.append(Cohort(day_label(week_start_day(cohort)), size, later))
    return out


# --- one creator ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreatorDay:
    day: str
    gifts: int
    coins: int
    diamonds: int


@dataclass(frozen=True, slots=True)
class CreatorWeek:
    week_start: str
    diamonds: int
    new_gifters: int


@dataclass(frozen=True, slots=True)
class CreatorReport:
    creator_id: int
    gifts: int
    coins: int
    diamonds: int
    average_gift_coins: float
    gifters: int
    returning_gifters: int  # gifted on two or more UTC days
    one_day_gifters: int
    top1_share: float
    top10_share: float
    days: list[CreatorDay]
    weeks: list[CreatorWeek]

    @property
    def empty(self) -> bool:
        return self.gifts == 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def tables(self) -> dict[str, Table]:
        return {
            "days": (
                ["day", "gifts", "coins", "diamonds"],
                [[d.day, d.gifts, d.coins, d.diamonds] for d in self.days],
            ),
            "weeks": (
                ["week_start", "diamonds", "new_gifters"],
                [[w.week_start, w.diamonds, w.new_gifters] for w in self.weeks],
            ),
            "summary": _summary(self.as_dict()),
        }


def creator_report(conn: Connection, creator_id: int, *, days: int = 90) -> CreatorReport:
    assert 1 <= days <= DAYS_MAX
    c = analytics_creators.c
    totals = conn.execute(
        select(c.gifts, c.coins, c.diamonds).where(c.creator_id == creator_id)
    ).first()
    gifts, coins, diamonds = (int(v) for v in totals) if totals else (0, 0, 0)
    cg = analytics_creator_gifters.c
    mine = cg.creator_id == creator_id
    gifters, returning = (
        int(v or 0)
        for v in conn.execute(
            select(func.count(), func.sum(case((cg.last_day > cg.first_day, 1), else_=0))).where(
                mine, cg.coins > 0
            )
        ).one()
    )
    top10 = [
        int(v)
        for v in conn.execute(
            select(cg.coins).where(mine, cg.coins > 0).order_by(cg.coins.desc()).limit(10)
        ).scalars()
    ]
    cd = analytics_creator_days.c
    last = conn.execute(select(func.max(cd.day)).where(cd.creator_id == creator_id)).scalar()
    day_rows: Sequence[Any] = []
    if last is not None:
        day_rows = conn.execute(
            select(cd.day, cd.gifts, cd.coins, cd.diamonds)
            .where(cd.creator_id == creator_id, cd.day > int(last) - days)
            .order_by(cd.day)
        ).all()
    weekly: dict[int, list[int]] = {}
    for day, _, _, d in day_rows:
        weekly.setdefault(week_of_day(int(day)), [0, 0])[0] += int(d)
    if weekly:
        week_no = ((cg.first_day + WEEK_START_OFFSET_DAYS) // 7).label("w")
        for week, n in conn.execute(
            select(week_no, func.count())
            .where(mine, cg.coins > 0, cg.first_day >= week_start_day(min(weekly)))
            .group_by(week_no)
        ).all():
            weekly.setdefault(int(week), [0, 0])[1] += int(n)
    return CreatorReport(
        creator_id=creator_id,
        gifts=gifts,
        coins=coins,
        diamonds=diamonds,
        average_gift_coins=round(rate(coins, gifts), 2),
        gifters=gifters,
        returning_gifters=returning,
        one_day_gifters=gifters - returning,
        top1_share=rate(sum(top10[:1]), coins),
        top10_share=rate(sum(top10), coins),
        days=[CreatorDay(day_label(int(r[0])), *(int(v) for v in r[1:])) for r in day_rows],
        weeks=[
            CreatorWeek(day_label(week_start_day(w)), v[0], v[1]) for w, v in sorted(weekly.items())
        ],
    )


# --- one stream ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamMinute:
    minute: str
    viewers: int
    gifts: int
    coins: int
    diamonds: int


@dataclass(frozen=True, slots=True)
class Spike:
    minute: str
    gifts: int
    coins: int
    times_typical: float  # coins in the minute / the median gifting minute
    causes: list[str]  # "battle", "goal", "goal_reached", "combo"


@dataclass(frozen=True, slots=True)
class StreamReport:
    stream_id: str
    creator_id: int
    title: str
    started: str
    ended: str | None
    minutes_live: int
    gifts: int
    coins: int
    diamonds: int
    gifts_per_minute: float
    unique_gifters: int
    peak_viewers: int
    present: int  # people known present: the most of peak viewers and of people who gifted
    conversion: float  # unique gifters / present: never above 1 (docs/analytics.md)
    top1_share: float
    top3_share: float
    shares: int  # share links made or shared again during the stream
    share_visits: int  # visits through them during the stream
    new_followers: int  # began following the creator during the stream, and still do
    minutes: list[StreamMinute]
    spikes: list[Spike]

    @property
    def empty(self) -> bool:
        return self.gifts == 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def tables(self) -> dict[str, Table]:
        return {
            "minutes": (
                ["minute", "viewers", "gifts", "coins", "diamonds"],
                [[m.minute, m.viewers, m.gifts, m.coins, m.diamonds] for m in self.minutes],
            ),
            "spikes": (
                ["minute", "gifts", "coins", "times_typical", "causes"],
                [
                    [s.minute, s.gifts, s.coins, s.times_typical, " ".join(s.causes)]
                    for s in self.spikes
                ],
            ),
            "summary": _summary(self.as_dict()),
        }


def stream_report(conn: Connection, stream_id: str, *, now_us: int) -> StreamReport | None:
    """None when there is no such stream."""
    stream = conn.execute(select(streams).where(streams.c.id == stream_id)).first()
    if stream is None:
        return None
    start, end = int(stream.started_at_us), stream.ended_at_us
    until = int(end) if end is not None else now_us
    sm = analytics_stream_minutes.c
    minute_rows = conn.execute(
        select(sm.minute_us, sm.gifts, sm.coins, sm.diamonds, sm.max_count)
        .where(sm.stream_id == stream_id)
        .order_by(sm.minute_us)
    ).all()
    sv = analytics_stream_viewers.c
    viewers = dict(
        conn.execute(select(sv.minute_us, sv.viewers).where(sv.stream_id == stream_id)).all()
    )
    by_minute = {int(r[0]): r for r in minute_rows}
    keys = sorted(set(by_minute) | {int(k) for k in viewers})
    minutes = [
        StreamMinute(
            minute_label(k),
            int(viewers.get(k, 0)),
            *(
                (int(by_minute[k][1]), int(by_minute[k][2]), int(by_minute[k][3]))
                if k in by_minute
                else (0, 0, 0)
            ),
        )
        for k in keys
    ]
    gifts = sum(m.gifts for m in minutes)
    coins = sum(m.coins for m in minutes)
    sg = analytics_stream_gifters.c
    every_gifter = [
        int(v)
        for v in conn.execute(
            select(sg.coins).where(sg.stream_id == stream_id).order_by(sg.coins.desc())
        ).scalars()
    ]
    # Someone whose gifts were all reversed is no gifter any more, but was there.
    gifter_coins = [c for c in every_gifter if c > 0]
    n_gifters = len(gifter_coins)
    peak = max(viewers.values(), default=0)
    # Viewer identities are not recorded, and a gift through the REST API needs no socket:
    # the peak alone can be below the gifters (conversion over 100%). Everyone who gifted was
    # present, as were the peak's viewers: the larger of the two is a floor on the people
    # present by any channel, so conversion never exceeds 1 (an upper bound on the true one).
    present = max(int(peak), len(every_gifter))
    shares, visits = _shares_during(conn, stream_id, start, until)
    minutes_live = max(1, math.ceil((until - start) / MINUTE_US))
    return StreamReport(
        stream_id=stream_id,
        creator_id=int(stream.creator_id),
        title=str(stream.title),
        started=minute_label(start),
        ended=None if end is None else minute_label(int(end)),
        minutes_live=minutes_live,
        gifts=gifts,
        coins=coins,
        diamonds=sum(m.diamonds for m in minutes),
        gifts_per_minute=round(gifts / minutes_live, 2),
        unique_gifters=n_gifters,
        peak_viewers=int(peak),
        present=present,
        conversion=rate(n_gifters, present),
        top1_share=rate(sum(gifter_coins[:1]), coins),
        top3_share=rate(sum(gifter_coins[:3]), coins),
        shares=shares,
        share_visits=visits,
        new_followers=_new_followers(conn, int(stream.creator_id), start, until),
        minutes=minutes,
        spikes=_spikes(conn, stream_id, [tuple(int(v) for v in r) for r in minute_rows]),
    )


def _new_followers(conn: Connection, creator_id: int, start: int, until: int) -> int:
    """Follows of the creator made during the stream that still stand (an unfollow deletes
    the row: the figure is who the stream won and kept)."""
    f = follows.c
    return int(
        conn.execute(
            select(func.count()).where(
                f.followee_id == creator_id, f.created_at_us.between(start, until)
            )
        ).scalar_one()
    )


def _shares_during(conn: Connection, stream_id: str, start: int, until: int) -> tuple[int, int]:
    sl = share_links.c
    links = and_(sl.target_kind == "stream", sl.target_id == stream_id)
    shares = conn.execute(
        select(func.count()).where(links, sl.last_shared_at_us.between(start, until))
    ).scalar_one()
    sv = share_visits.c
    visits = conn.execute(
        select(func.count())
        .select_from(share_visits.join(share_links, sl.id == sv.share_id))
        .where(links, sv.visited_at_us.between(start, until))
    ).scalar_one()
    return int(shares), int(visits)


def _spikes(conn: Connection, stream_id: str, rows: list[tuple[int, ...]]) -> list[Spike]:
    """Minutes with at least three times the coins of the median gifting minute (and two
    standard deviations above the mean), the largest first, each with what was happening."""
    if len(rows) < 3:
        return []
    coins = [r[2] for r in rows if r[2] > 0]
    if len(coins) < 3:
        return []
    median = statistics.median(coins)
    bar = max(3 * median, statistics.mean(coins) + 2 * statistics.pstdev(coins))
    found = sorted((r for r in rows if r[2] >= bar and r[2] > 0), key=lambda r: -r[2])
    cumulative: dict[int, int] = {}
    running = 0
    for r in rows:
        running += r[2]
        cumulative[r[0]] = running
    return [
        Spike(
            minute_label(r[0]),
            r[1],
            r[2],
            round(r[2] / median, 1),
            _causes(conn, stream_id, r[0], cumulative),
        )
        for r in found[:SPIKES_MAX]
    ]


def _causes(
    conn: Connection, stream_id: str, minute_us: int, cumulative: dict[int, int]
) -> list[str]:
    end = minute_us + MINUTE_US
    causes = []
    b = battles.c
    battle = conn.execute(
        select(b.id)
        .where(
            or_(b.stream_a == stream_id, b.stream_b == stream_id),
            b.started_at_us < end,
            func.coalesce(b.ended_at_us, b.ends_at_us) >= minute_us,
        )
        .limit(1)
    ).first()
    if battle is not None:
        causes.append("battle")
    g = stream_goals.c
    goal = conn.execute(
        select(g.kind, g.target, g.created_at_us)
        .where(
            g.stream_id == stream_id,
            g.created_at_us < end,
            or_(g.cleared_at_us.is_(None), g.cleared_at_us >= minute_us),
        )
        .order_by(g.created_at_us.desc())
        .limit(1)
    ).first()
    if goal is not None:
        causes.append("goal")
        if goal.kind == "coins":
            # Coins since the goal's minute, before and after this one: did it cross?
            base_minute = int(goal.created_at_us) - int(goal.created_at_us) % MINUTE_US
            before_goal = max((v for k, v in cumulative.items() if k < base_minute), default=0)
            before = max((v for k, v in cumulative.items() if k < minute_us), default=0)
            after = cumulative.get(minute_us, before)
            target = int(goal.target)
            if before - before_goal < target <= after - before_goal:
                causes.append("goal_reached")
    if _had_combo(conn, stream_id, minute_us, end):
        causes.append("combo")
    return causes


def _had_combo(conn: Connection, stream_id: str, start: int, end: int) -> bool:
    """A sender sent one gift ten times or more in the minute (a combo, docs/protocol.md),
    or one send carried a count of ten or more. Bounded read of that minute's sends."""
    gs = gift_sends.c
    sends = (
        select(gs.sender_id, gs.gift_id, gs.count)
        .select_from(gift_sends.join(transfers, transfers.c.id == gs.transfer_id))
        .where(gs.stream_id == stream_id, gs.created_at_us >= start, gs.created_at_us < end)
        .limit(SPIKE_SENDS_READ_MAX)
        .subquery()
    )
    total = func.sum(sends.c.count)
    most = conn.execute(
        select(total).group_by(sends.c.sender_id, sends.c.gift_id).order_by(total.desc()).limit(1)
    ).scalar()
    return most is not None and int(most) >= COMBO_MIN_SENDS
