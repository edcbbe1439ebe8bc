"""A creator's statement: what they earned, per stream and per day, and what it is worth.

Counted from gift sends whose coins transfer is in the ledger (the ledger decides what was
paid), minus reversed gifts. The effective share compares the diamonds' cash value with what
viewers paid for those coins, at the dearest and the cheapest package per coin; it counts the
hundredths of a diamond a creator rate below 100 per 100 coins leaves over from each gift
(their ``:f`` transfers, economy/diamond_fractions.py), so it is the rate the creator got,
exactly.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from typing import Final, TypeVar

from sqlalchemy import Connection, Engine, func, select

from giftwave.clock import day_start_us
from giftwave.config import Settings
from giftwave.db.tables import gift_sends, payouts, streams, transfers
from giftwave.economy.packages import list_packages
from giftwave.economy.payouts import (
    MICROS_PER_CENT,
    POSTED_SUFFIX,
    RETURNED_SUFFIX,
    Payout,
    payout_totals,
    payouts_requested_between,
)
from giftwave.economy.rounding import apportion_cents, floor_cents
from giftwave.economy.wallets import fraction_account
from giftwave.errors import Code, Invalid
from giftwave.ledger.accounts import find_account
from giftwave.ledger.annex import PAYOUT_PENDING_PREFIX

US_PER_DAY: Final = 86_400_000_000
MAX_DAYS: Final = 366


@dataclass(frozen=True, slots=True)
class Line:
    gifts: int
    coins: int
    diamonds: int
    cash_cents: int


@dataclass(frozen=True, slots=True)
class DayLine:
    day: date
    stream_id: str
    stream_title: str
    gifts: int
    coins: int
    diamonds: int
    cash_cents: int


_Row = TypeVar("_Row", Line, DayLine)


@dataclass(frozen=True, slots=True)
class Statement:
    creator_id: int
    from_day: date
    to_day: date  # inclusive
    diamond_value_usd_micros: int
    totals: Line
    by_day: list[tuple[date, Line]]
    by_stream: list[tuple[str, str, Line]]
    lines: list[DayLine]
    share_percent_low: float | None  # cash value / what viewers paid, dearest package per coin
    share_percent_high: float | None  # the same at the cheapest package per coin
    payouts: dict[str, int]
    # What the ledger paid out (all time): an approval that settled a diamond debt from the
    # reservation paid less than its payout's diamonds, which stay what was reserved.
    paid_out_diamonds: int = 0
    # What the period's gifts earned, exactly, in hundredths of a diamond: their whole
    # diamonds (totals.diamonds) and the hundredths carried beside them.
    earned_hundredths: int = 0
    # Hundredths of a diamond the creator holds now, not yet settled into a whole diamond.
    fraction_pending_hundredths: int = 0
    # Each payout requested in the period, newest first: its state, the provider's reference,
    # what the payee was sent in their currency and at which rate.
    payout_list: list[Payout] = field(default_factory=list)

    @property
    def diamonds_per_100_coins(self) -> float | None:
        """The rate the period's gifts earned: diamonds per 100 coins, to the hundredth."""
        if not self.totals.coins:
            return None
        return round(self.earned_hundredths / self.totals.coins, 2)


def build_statement(
    conn: Connection,
    creator_id: int,
    from_day: date,
    to_day: date,
    *,
    diamond_value_usd_micros: int,
    diamonds_per_100_coins: int,
    currency: str = "USD",
) -> Statement:
    if to_day < from_day or (to_day - from_day).days >= MAX_DAYS:
        raise Invalid(Code.INVALID_PERIOD, f"a statement covers 1..{MAX_DAYS} days, from <= to")
    start, end = day_start_us(from_day), day_start_us(to_day) + US_PER_DAY
    day_no = (gift_sends.c.created_at_us // US_PER_DAY).label("day_no")
    # A gift's hundredths of a diamond are its ":f" transfer, beside its ":c" (the row's).
    fraction = transfers.alias("fraction")
    fraction_id = func.substr(
        gift_sends.c.transfer_id, 1, func.length(gift_sends.c.transfer_id) - 1
    ).concat("f")
    rows = conn.execute(
        select(
            day_no,
            gift_sends.c.stream_id,
            func.coalesce(func.max(streams.c.title), ""),
            func.count(),
            func.sum(gift_sends.c.coins),
            func.sum(gift_sends.c.diamonds),
            func.coalesce(func.sum(fraction.c.amount), 0),
        )
        .select_from(
            gift_sends.join(transfers, transfers.c.id == gift_sends.c.transfer_id)
            .outerjoin(streams, streams.c.id == gift_sends.c.stream_id)
            .outerjoin(fraction, fraction.c.id == fraction_id)
        )
        .where(
            gift_sends.c.creator_id == creator_id,
            gift_sends.c.created_at_us >= start,
            gift_sends.c.created_at_us < end,
            gift_sends.c.reversed.is_(False),
        )
        .group_by(day_no, gift_sends.c.stream_id)
        .order_by(day_no, gift_sends.c.stream_id)
    ).all()

    def cash(diamonds: int) -> int:
        return floor_cents(diamonds, diamond_value_usd_micros)

    lines = [
        DayLine(
            date(1970, 1, 1) + timedelta(days=int(d)),
            sid,
            title,
            int(n),
            int(c),
            int(dm),
            cash(int(dm)),
        )
        for d, sid, title, n, c, dm, _h in rows
    ]
    earned_hundredths = sum(100 * int(dm) + int(h) for *_, dm, h in rows)
    by_day: dict[date, Line] = {}
    by_stream: dict[str, tuple[str, Line]] = {}
    for line in lines:
        by_day[line.day] = _add(by_day.get(line.day), line, cash)
        title, prior = by_stream.get(line.stream_id, (line.stream_title, None))
        by_stream[line.stream_id] = (title, _add(prior, line, cash))
    totals = Line(
        sum(x.gifts for x in lines),
        sum(x.coins for x in lines),
        sum(x.diamonds for x in lines),
        cash(sum(x.diamonds for x in lines)),
    )
    # Each list of rows shares out the total's cents by largest remainder: a floor per row
    # made rows that did not add up to the total (1 + 0 + 0 cents beside 2).
    lines = _apportioned(lines, diamond_value_usd_micros)
    days = sorted(by_day.items())
    day_lines = _apportioned([line for _, line in days], diamond_value_usd_micros)
    per_stream = list(by_stream.items())
    stream_lines = _apportioned([line for _, (_, line) in per_stream], diamond_value_usd_micros)
    assert sum(x.cash_cents for x in lines) == totals.cash_cents
    low, high = _share_range(
        conn, currency, diamond_value_usd_micros, diamonds_per_100_coins, totals, earned_hundredths
    )
    return Statement(
        creator_id=creator_id,
        from_day=from_day,
        to_day=to_day,
        diamond_value_usd_micros=diamond_value_usd_micros,
        totals=totals,
        by_day=[(day, line) for (day, _), line in zip(days, day_lines, strict=True)],
        by_stream=[
            (sid, title, line)
            for (sid, (title, _)), line in zip(per_stream, stream_lines, strict=True)
        ],
        lines=lines,
        share_percent_low=low,
        share_percent_high=high,
        payouts=payout_totals(conn, creator_id),
        paid_out_diamonds=_paid_out_diamonds(conn, creator_id),
        earned_hundredths=earned_hundredths,
        fraction_pending_hundredths=_fraction_pending(conn, creator_id),
        payout_list=payouts_requested_between(conn, creator_id, start, end),
    )


def _fraction_pending(conn: Connection, creator_id: int) -> int:
    account = find_account(conn, fraction_account(creator_id))
    return 0 if account is None else account.available


def _paid_out_diamonds(conn: Connection, creator_id: int) -> int:
    """The diamonds the ledger posted from the creator's approved payouts: each approval's
    post, read from the transfer itself (a payout row keeps the diamonds it reserved)."""
    post_id = PAYOUT_PENDING_PREFIX + payouts.c.id + POSTED_SUFFIX
    paid = conn.execute(
        select(func.coalesce(func.sum(transfers.c.amount), 0))
        .select_from(payouts.join(transfers, transfers.c.id == post_id))
        .where(payouts.c.creator_id == creator_id)
    ).scalar_one()
    # A payout the provider returned gave its diamonds back (economy/payout_transfers.py).
    returned = conn.execute(
        select(func.coalesce(func.sum(transfers.c.amount), 0))
        .select_from(payouts.join(transfers, transfers.c.id == post_id + RETURNED_SUFFIX))
        .where(payouts.c.creator_id == creator_id)
    ).scalar_one()
    return int(paid) - int(returned)


def _apportioned(rows: list[_Row], value_micros: int) -> list[_Row]:
    """The rows with their cents shared out of their total (economy/rounding.py)."""
    cents = apportion_cents([row.diamonds for row in rows], value_micros)
    return [replace(row, cash_cents=c) for row, c in zip(rows, cents, strict=True)]


def _add(prior: Line | None, line: DayLine, cash: object) -> Line:
    base = prior or Line(0, 0, 0, 0)
    diamonds = base.diamonds + line.diamonds
    return Line(
        base.gifts + line.gifts,
        base.coins + line.coins,
        diamonds,
        cash(diamonds),  # type: ignore[operator]
    )


def _share_range(
    conn: Connection,
    currency: str,
    value_micros: int,
    diamonds_per_100_coins: int,
    totals: Line,
    earned_hundredths: int,
) -> tuple[float | None, float | None]:
    """What share of the viewers' money reached the creator, per coin, both ends of the list.

    Over a period with gifts, the diamonds they earned per coin (the rate each gift was sent
    at); over one without, the configured rate: what the next gift would earn."""
    packages = list_packages(conn, currency)
    if not packages:
        return None, None
    per_coin = [p.price_minor / p.coins for p in packages]  # minor units per coin, display only
    diamonds_per_coin = (
        earned_hundredths / 100 / totals.coins if totals.coins else diamonds_per_100_coins / 100
    )
    creator_cents_per_coin = diamonds_per_coin * value_micros / MICROS_PER_CENT
    return (
        round(100 * creator_cents_per_coin / max(per_coin), 1),
        round(100 * creator_cents_per_coin / min(per_coin), 1),
    )


def statement_csv(statement: Statement) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["day", "stream_id", "stream_title", "gifts", "coins", "diamonds", "cash_value_usd"]
    )
    for line in statement.lines:
        row = asdict(line)
        writer.writerow(
            [
                line.day.isoformat(),
                line.stream_id,
                _csv_safe(line.stream_title),
                row["gifts"],
                row["coins"],
                row["diamonds"],
                f"{line.cash_cents / 100:.2f}",
            ]
        )
    # The statement's totals, as the JSON has them; the lines above add up to them exactly.
    t = statement.totals
    writer.writerow(["total", "", "", t.gifts, t.coins, t.diamonds, f"{t.cash_cents / 100:.2f}"])
    return out.getvalue()


def _csv_safe(text: str) -> str:
    # A title starting with = + - @ would run as a formula when the CSV opens in a spreadsheet.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def load_statement(
    db: Engine, settings: Settings, creator_id: int, start: date, end: date
) -> Statement:
    """A creator's statement from ``start`` to ``end`` (UTC days, inclusive), at the
    platform's rates; one read (blocking)."""
    with db.connect() as conn:
        return build_statement(
            conn,
            creator_id,
            start,
            end,
            diamond_value_usd_micros=settings.diamond_value_usd_micros,
            diamonds_per_100_coins=settings.creator_diamonds_per_100_coins,
            currency=settings.default_currency,
        )
