"""The rollup job: committed transfers past a watermark, added to the analytics tables.

    transfers (seq > watermark, ≤ chunk) ─► classify by code / asset / id ─► sums per bucket
        ─► upserts (x = x + new) and the new watermark, in ONE transaction

``transfers.seq`` is gap-free and in commit order, and the sums and the watermark commit
together (``db/watermarks.py``): nothing is skipped, and running the job again (or twice at
once) never counts a transfer twice. A gift's stream, creator and
sender come from its ``gift_sends`` row, which the ledger writes in the same transaction as
its transfers (docs/economy.md), so it is always there when the transfer is.

What counts as what is written down in docs/analytics.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Connection, Engine, Table, and_, case, delete, func, select
from sqlalchemy.orm import aliased

from giftwave.analytics.metrics import bucket_from
from giftwave.db import watermarks
from giftwave.db.id_lists import in_parts
from giftwave.db.tables import (
    analytics_cohort_weeks,
    analytics_creator_days,
    analytics_creator_gifters,
    analytics_creators,
    analytics_economy_days,
    analytics_gifter_buckets,
    analytics_gifter_weeks,
    analytics_gifters,
    analytics_stream_gifters,
    analytics_stream_minutes,
    analytics_stream_viewers,
    gift_sends,
    transfers,
)
from giftwave.db.upsert import insert_for
from giftwave.economy.payouts import RETURNED_SUFFIX

WATERMARK: Final = "ledger"
CHUNK_MAX_TRANSFERS: Final = 10_000
MINUTE_US: Final = 60_000_000
DAY_US: Final = 86_400_000_000

ECONOMY_COLUMNS: Final = tuple(c.name for c in analytics_economy_days.columns if c.name != "day")


def minute_of(ts_us: int) -> int:
    return ts_us - ts_us % MINUTE_US


def day_number(ts_us: int) -> int:
    """Days since 1970-01-01 (UTC)."""
    return ts_us // DAY_US


# Every week giftwave groups by is an ISO week, Monday to Sunday (UTC), as the weekly
# leaderboard's. Day 0 (1970-01-01) was a Thursday, so ``day // 7`` made weeks start on
# Thursdays; week 0 here starts on Monday 1969-12-29, day -3.
WEEK_START_OFFSET_DAYS: Final = 3


def week_of_day(day: int) -> int:
    """The ISO week (counted from Monday 1969-12-29) that day number ``day`` falls in."""
    return (day + WEEK_START_OFFSET_DAYS) // 7


def week_start_day(week: int) -> int:
    """The day number of the Monday that starts ``week``."""
    return week * 7 - WEEK_START_OFFSET_DAYS


@dataclass(slots=True)
class _Gift:
    stream_id: str
    creator_id: int
    sender_id: int
    count: int
    coins: int
    diamonds: int
    at_us: int


@dataclass(slots=True)
class _Sums:
    """One chunk's additions, keyed like the tables they go to."""

    minutes: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    stream_gifters: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    creator_days: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    creators: dict[int, list[int]] = field(default_factory=dict)
    creator_gifters: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    gifters: dict[int, list[int]] = field(default_factory=dict)
    weeks: set[tuple[int, int]] = field(default_factory=set)
    economy: dict[int, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: dict.fromkeys(ECONOMY_COLUMNS, 0))
    )

    def gift(self, g: _Gift, sign: int) -> None:
        """A gift (sign 1) or its reversal (sign -1) in every gift rollup."""
        day = day_number(g.at_us)
        coins, diamonds = sign * g.coins, sign * g.diamonds
        minute = self.minutes.setdefault((g.stream_id, minute_of(g.at_us)), [0, 0, 0, 0])
        minute[0] += sign
        minute[1] += coins
        minute[2] += diamonds
        if sign > 0:
            minute[3] = max(minute[3], g.count)
        _add(self.stream_gifters, (g.stream_id, g.sender_id), coins, sign)
        _add(self.creator_days, (g.creator_id, day), sign, coins, diamonds)
        _add(self.creators, g.creator_id, sign, coins, diamonds)
        first = day if sign > 0 else 2**31 - 1  # a reversal never makes a day a gifting day
        last = day if sign > 0 else -1
        _span(self.creator_gifters, (g.creator_id, g.sender_id), coins, sign, first, last)
        _span(self.gifters, g.sender_id, coins, sign, first, last)
        if sign > 0:
            self.weeks.add((g.sender_id, week_of_day(day)))


def _add(table: dict[Any, list[int]], key: Any, *values: int) -> None:
    row = table.get(key)
    if row is None:
        table[key] = list(values)
    else:
        for i, v in enumerate(values):
            row[i] += v


def _span(
    table: dict[Any, list[int]], key: Any, coins: int, gifts: int, first: int, last: int
) -> None:
    row = table.get(key)
    if row is None:
        table[key] = [coins, gifts, first, last]
    else:
        row[0] += coins
        row[1] += gifts
        row[2] = min(row[2], first)
        row[3] = max(row[3], last)


class Rollup(watermarks.LedgerFollower):
    """Brings the analytics tables up to the ledger, one bounded chunk per transaction."""

    def __init__(self, db: Engine, chunk_max_transfers: int = CHUNK_MAX_TRANSFERS) -> None:
        super().__init__(db, WATERMARK, chunk_max_transfers)

    def read(self, conn: Connection, last: int, head: int) -> Sequence[Any]:
        return _read_chunk(conn, last, head)

    def apply(self, conn: Connection, rows: Sequence[Any]) -> None:
        _write(conn, _classify(rows))


def _read_chunk(conn: Connection, last: int, head: int) -> Sequence[Any]:
    g = aliased(gift_sends, name="g")
    r = aliased(gift_sends, name="r")
    query = (
        select(
            transfers.c.seq,
            transfers.c.id,
            transfers.c.code,
            transfers.c.kind,
            transfers.c.asset,
            transfers.c.amount,
            transfers.c.created_at_us,
            g.c.stream_id,
            g.c.creator_id,
            g.c.sender_id,
            g.c.count,
            g.c.coins,
            g.c.diamonds,
            g.c.created_at_us.label("g_at"),
            r.c.stream_id.label("r_stream_id"),
            r.c.creator_id.label("r_creator_id"),
            r.c.sender_id.label("r_sender_id"),
            r.c.count.label("r_count"),
            r.c.coins.label("r_coins"),
            r.c.diamonds.label("r_diamonds"),
            r.c.created_at_us.label("r_at"),
        )
        .select_from(
            transfers.outerjoin(g, g.c.transfer_id == transfers.c.id).outerjoin(
                r,
                and_(
                    transfers.c.reverses_id.is_not(None),
                    r.c.transfer_id == transfers.c.reverses_id,
                ),
            )
        )
        .where(transfers.c.seq > last, transfers.c.seq <= head)
        .order_by(transfers.c.seq)
    )
    return conn.execute(query).all()


def _classify(rows: Iterable[Any]) -> _Sums:
    sums = _Sums()
    for t in rows:
        day = day_number(int(t.created_at_us))
        code, asset, tid, amount = t.code, t.asset, t.id, int(t.amount)
        if code == "gift":
            if asset == "COIN" and t.stream_id is not None:
                g = _Gift(
                    t.stream_id,
                    int(t.creator_id),
                    int(t.sender_id),
                    int(t.count),
                    int(t.coins),
                    int(t.diamonds),
                    int(t.g_at),
                )
                sums.gift(g, 1)
                econ = sums.economy[day]
                econ["coins_spent"] += amount
                econ["gifts"] += 1
            elif asset == "DIAMOND":
                sums.economy[day]["diamonds_earned"] += amount
        elif code == "topup":
            if asset == "COIN":
                econ = sums.economy[day]
                econ["coins_sold"] += amount
                econ["topups"] += 1
        elif code in ("refund", "chargeback"):
            _classify_clawback(sums, t, day, code, asset, tid, amount)
        elif code == "adjustment" and asset == "COIN" and tid.startswith("grant:"):
            sums.economy[day]["coins_granted"] += amount  # an admin's grant (api/admin.py)
        elif code == "subscription":
            _classify_subscription(sums.economy[day], asset, tid, amount)
        elif code == "payout" and t.kind == "post_pending":
            econ = sums.economy[day]
            econ["diamonds_paid_out"] += amount
            econ["payouts"] += 1
        elif code == "payout" and tid.endswith(RETURNED_SUFFIX):
            # The provider returned a paid-out payout: its diamonds came back, that day.
            sums.economy[day]["diamonds_paid_out"] -= amount
    return sums


def _classify_subscription(econ: dict[str, int], asset: str, tid: str, amount: int) -> None:
    """A subscription's period: its coins leg (``…:c``) counts one period, paid
    (``sub:<id>:<period>``) or gifted (``gsub:<buyer>:<key>:<i>``); its diamonds leg
    (``…:d``) what the creator earned. The day's spend leg (``…:s``) moves no coins out."""
    if asset == "COIN" and tid.endswith(":c"):
        if tid.startswith("gsub:"):
            econ["gifted_subscription_coins"] += amount
            econ["gifted_subscriptions"] += 1
        else:
            econ["subscription_coins"] += amount
            econ["subscriptions"] += 1
    elif asset == "DIAMOND":
        econ["subscription_diamonds"] += amount


def _classify_clawback(
    sums: _Sums, t: Any, day: int, code: str, asset: str, tid: str, amount: int
) -> None:
    econ = sums.economy[day]
    if tid.endswith(":rev:c") and t.r_stream_id is not None:  # an operator reversed a gift
        g = _Gift(
            t.r_stream_id,
            int(t.r_creator_id),
            int(t.r_sender_id),
            int(t.r_count),
            int(t.r_coins),
            int(t.r_diamonds),
            int(t.r_at),
        )
        sums.gift(g, -1)
        econ["coins_reversed"] += amount
        econ["gift_reversals"] += 1
    elif asset == "DIAMOND":
        econ["diamonds_reversed"] += amount
    elif tid.startswith("topup:"):
        which = "refund" if code == "refund" else "charged_back"
        if asset == "COIN":
            econ["coins_refunded" if which == "refund" else "coins_charged_back"] += amount
        elif ":fiat:" in tid:  # one fiat leg per refund or dispute event: the count
            econ["refunds" if which == "refund" else "chargebacks"] += 1


def _write(conn: Connection, sums: _Sums) -> None:
    _upsert_add(
        conn,
        analytics_stream_minutes,
        [
            {
                "stream_id": s,
                "minute_us": m,
                "gifts": v[0],
                "coins": v[1],
                "diamonds": v[2],
                "max_count": v[3],
            }
            for (s, m), v in sums.minutes.items()
        ],
        ["stream_id", "minute_us"],
        add=("gifts", "coins", "diamonds"),
        greatest=("max_count",),
    )
    _upsert_add(
        conn,
        analytics_stream_gifters,
        [
            {"stream_id": s, "sender_id": u, "coins": v[0], "gifts": v[1]}
            for (s, u), v in sums.stream_gifters.items()
        ],
        ["stream_id", "sender_id"],
        add=("coins", "gifts"),
    )
    _upsert_add(
        conn,
        analytics_creator_days,
        [
            {"creator_id": c, "day": d, "gifts": v[0], "coins": v[1], "diamonds": v[2]}
            for (c, d), v in sums.creator_days.items()
        ],
        ["creator_id", "day"],
        add=("gifts", "coins", "diamonds"),
    )
    _upsert_add(
        conn,
        analytics_creators,
        [
            {"creator_id": c, "gifts": v[0], "coins": v[1], "diamonds": v[2]}
            for c, v in sums.creators.items()
        ],
        ["creator_id"],
        add=("gifts", "coins", "diamonds"),
    )
    _upsert_add(
        conn,
        analytics_creator_gifters,
        [
            {
                "creator_id": c,
                "sender_id": u,
                "coins": v[0],
                "gifts": v[1],
                "first_day": v[2],
                "last_day": v[3],
            }
            for (c, u), v in sums.creator_gifters.items()
        ],
        ["creator_id", "sender_id"],
        add=("coins", "gifts"),
        least=("first_day",),
        greatest=("last_day",),
    )
    stored = _stored_gifters(conn, sorted(sums.gifters))
    _write_cohorts(conn, sums, stored)
    _write_gifter_buckets(conn, sums, stored)
    _upsert_add(
        conn,
        analytics_gifters,
        [
            {"sender_id": u, "coins": v[0], "gifts": v[1], "first_day": v[2], "last_day": v[3]}
            for u, v in sums.gifters.items()
        ],
        ["sender_id"],
        add=("coins", "gifts"),
        least=("first_day",),
        greatest=("last_day",),
    )
    _upsert_add(
        conn,
        analytics_economy_days,
        [{"day": d, **v} for d, v in sums.economy.items()],
        ["day"],
        add=ECONOMY_COLUMNS,
    )


def _stored_gifters(conn: Connection, senders: list[int]) -> dict[int, tuple[int, int]]:
    """Each sender's (coins, first_day) as earlier chunks left them; absent: a new gifter.
    Read before the gifters' upsert."""
    g = analytics_gifters.c
    stored: dict[int, tuple[int, int]] = {}
    for part in in_parts(senders):
        stored.update(
            (int(u), (int(coins), int(first)))
            for u, coins, first in conn.execute(
                select(g.sender_id, g.coins, g.first_day).where(g.sender_id.in_(part))
            )
        )
    return stored


def _write_cohorts(conn: Connection, sums: _Sums, stored: dict[int, tuple[int, int]]) -> None:
    """New (gifter, week) pairs, each counted once in its gifter's first-week cohort."""
    if not sums.weeks:
        return
    senders = sorted({u for u, _ in sums.weeks})
    seen: set[tuple[int, int]] = set()
    for part in in_parts(senders):
        seen.update(
            (int(u), int(w))
            for u, w in conn.execute(
                select(analytics_gifter_weeks.c.sender_id, analytics_gifter_weeks.c.week).where(
                    analytics_gifter_weeks.c.sender_id.in_(part)
                )
            )
        )
    new = sorted(sums.weeks - seen)
    if not new:
        return
    cohorts: dict[tuple[int, int], int] = defaultdict(int)
    for sender, week in new:
        chunk_first = sums.gifters[sender][2]
        cohort = week_of_day(min(stored.get(sender, (0, chunk_first))[1], chunk_first))
        cohorts[(cohort, week)] += 1
    conn.execute(analytics_gifter_weeks.insert(), [{"sender_id": u, "week": w} for u, w in new])
    _upsert_add(
        conn,
        analytics_cohort_weeks,
        [{"cohort_week": c, "week": w, "gifters": n} for (c, w), n in cohorts.items()],
        ["cohort_week", "week"],
        add=("gifters",),
    )


def _write_gifter_buckets(
    conn: Connection, sums: _Sums, stored: dict[int, tuple[int, int]]
) -> None:
    """Move each gifter whose net coins changed from its old bucket to its new one."""
    moves: dict[int, list[int]] = {}
    for sender, (coins, *_) in sums.gifters.items():
        before = stored.get(sender, (0, 0))[0]
        after = before + coins
        if before == after:
            continue
        if before > 0:
            _add(moves, bucket_from(before), -1, -before)
        if after > 0:
            _add(moves, bucket_from(after), 1, after)
    _upsert_add(
        conn,
        analytics_gifter_buckets,
        [{"coins_from": b, "gifters": n, "coins": c} for b, (n, c) in moves.items() if n or c],
        ["coins_from"],
        add=("gifters", "coins"),
    )
    conn.execute(delete(analytics_gifter_buckets).where(analytics_gifter_buckets.c.gifters == 0))


def rebuild_gifter_buckets(conn: Connection) -> None:
    """The buckets from the per-gifter totals, from scratch (a migration, a bulk load)."""
    g = analytics_gifters.c
    buckets: dict[int, list[int]] = {}
    for coins, n in conn.execute(
        select(g.coins, func.count()).where(g.coins > 0).group_by(g.coins)
    ):
        _add(buckets, bucket_from(int(coins)), int(n), int(coins) * int(n))
    conn.execute(delete(analytics_gifter_buckets))
    if buckets:
        conn.execute(
            analytics_gifter_buckets.insert(),
            [{"coins_from": b, "gifters": n, "coins": c} for b, (n, c) in buckets.items()],
        )


def _upsert_add(
    conn: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    keys: list[str],
    *,
    add: Sequence[str],
    least: Sequence[str] = (),
    greatest: Sequence[str] = (),
) -> None:
    """Insert rows; where the key exists, add the ``add`` columns and keep the least/greatest."""
    if not rows:
        return
    ins = insert_for(conn, table)
    ex = ins.excluded
    sets: dict[str, Any] = {c: table.c[c] + ex[c] for c in add}
    for c in least:
        sets[c] = case((table.c[c] < ex[c], table.c[c]), else_=ex[c])
    for c in greatest:
        sets[c] = case((table.c[c] > ex[c], table.c[c]), else_=ex[c])
    conn.execute(ins.on_conflict_do_update(index_elements=keys, set_=sets), rows)


def record_viewers(db: Engine, samples: Sequence[tuple[str, int, int]]) -> None:
    """(stream_id, at_us, viewers) samples: the most viewers seen in each stream's minute."""
    if not samples:
        return
    best: dict[tuple[str, int], int] = {}
    for stream_id, at_us, viewers in samples:
        assert viewers >= 0
        key = (stream_id, minute_of(at_us))
        best[key] = max(best.get(key, 0), viewers)
    with db.begin() as conn:
        ins = insert_for(conn, analytics_stream_viewers)
        conn.execute(
            ins.on_conflict_do_update(
                index_elements=["stream_id", "minute_us"],
                set_={
                    "viewers": case(
                        (
                            analytics_stream_viewers.c.viewers > ins.excluded.viewers,
                            analytics_stream_viewers.c.viewers,
                        ),
                        else_=ins.excluded.viewers,
                    )
                },
            ),
            [{"stream_id": s, "minute_us": m, "viewers": v} for (s, m), v in best.items()],
        )
