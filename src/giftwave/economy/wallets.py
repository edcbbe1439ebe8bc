"""Which ledger accounts the economy uses, opened on first need and remembered by name.

    user:<id>:coins          COIN     no overdraft   what a viewer can spend
    user:<id>:diamonds       DIAMOND  no overdraft   what a creator has earned
    user:<id>:coin_debt      COIN     may go below   coins clawed back after they were spent
    user:<id>:diamond_debt   DIAMOND  may go below   diamonds clawed back after a payout
    user:<id>:spent:<day>    COIN     debit-normal   the day's gifts net of reversals (the cap)
    user:<id>:spent:week:<yyyy-www>, user:<id>:spent:month:<yyyy-mm>  COIN  the same, per week
                                    and month: only for viewers with limits of their own
    user:<id>:diamond_fraction CDIAMOND no overdraft hundredths of a diamond earned, not yet whole
    platform:coins_issued    COIN     the source of every coin sold
    platform:gifts_spent     COIN     where spent coins go
    platform:diamonds_issued DIAMOND  the source of every diamond earned
    platform:payouts         DIAMOND  diamonds cashed out
    platform:diamond_fractions_issued CDIAMOND  the source of every hundredth of a diamond
    platform:daily_spend     COIN     the other side of every day, week and month account's legs
    platform:sales:<CUR>     fiat     what viewers paid, by currency
    platform:provider:<name>:<CUR>  fiat  what the payment provider holds for us
    platform:payout_fees:<CUR>      fiat  the payout provider's fees: an expense (debited)
    platform:payout_provider:<name>:<CUR>  fiat  our balance at the payout provider, which
                                    pays its fees (credited)

A debt account's balance is minus the debt; the debt is settled from the next top-up.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Final

from sqlalchemy import Engine, or_, select

from giftwave.db.engine import reads
from giftwave.db.tables import accounts as accounts_table
from giftwave.economy.limits import daily_spend_account
from giftwave.ledger.accounts import (
    AccountSpec,
    open_accounts,
    set_account_flags,
    to_account,
)
from giftwave.ledger.model import Account, AccountFlags

COINS_ISSUED: Final = "platform:coins_issued"
GIFTS_SPENT: Final = "platform:gifts_spent"
DIAMONDS_ISSUED: Final = "platform:diamonds_issued"
PAYOUTS: Final = "platform:payouts"
DAILY_SPEND: Final = "platform:daily_spend"
# A creator rate that is not a whole number of diamonds per coin leaves hundredths of a diamond
# over from a gift: they are carried in an asset of their own (economy/diamond_fractions.py).
FRACTION_ASSET: Final = "CDIAMOND"
FRACTIONS_ISSUED: Final = "platform:diamond_fractions_issued"
HUNDREDTHS_PER_DIAMOND: Final = 100
# Day accounts remembered by this process: one per gifting user and UTC day, so the cache is
# bounded apart from the other names (which are a few per user, for good).
DAY_ACCOUNTS_MAX: Final = 100_000
OPEN_PART_MAX: Final = 2_000  # accounts per statement: well under every backend's limits


@dataclass(frozen=True, slots=True)
class EconomyTotals:
    """What the platform accounts say, net of refunds, reversals and clawbacks."""

    coins_issued: int  # sold, granted
    coins_spent: int  # on gifts
    diamonds_issued: int  # earned by creators
    diamonds_paid_out: int

    @property
    def coins_outstanding(self) -> int:
        """Coins users hold (less what they owe): every coin issued and not spent."""
        return self.coins_issued - self.coins_spent

    @property
    def diamonds_outstanding(self) -> int:
        return self.diamonds_issued - self.diamonds_paid_out


@dataclass(frozen=True, slots=True)
class UserAccounts:
    coins: int
    diamonds: int
    coin_debt: int
    diamond_debt: int


@dataclass(frozen=True, slots=True)
class WalletView:
    coins: int
    coins_debt: int
    diamonds: int
    diamonds_reserved: int  # in pending payouts
    diamonds_debt: int


class Wallets:
    """Account ids by name. Opening is idempotent, so two processes may race to open one."""

    def __init__(self, db: Engine) -> None:
        self._db = db
        self._reads = reads(db)  # autocommit reads on PostgreSQL (db/engine.py)
        self._ids: dict[str, int] = {}
        self._days: OrderedDict[tuple[int, date], int] = OrderedDict()
        self._periods: OrderedDict[str, int] = OrderedDict()

    def account_id(
        self, name: str, asset: str, flags: AccountFlags = AccountFlags.NONE, owner: str = ""
    ) -> int:
        account_id = self._ids.get(name)
        if account_id is None:
            (account_id,) = self._open([(name, asset, flags, owner)])
        return account_id

    def _open(self, specs: list[tuple[str, str, AccountFlags, str]]) -> list[int]:
        """The ids of these accounts, opening those that do not exist, in one transaction
        (a user's four accounts took four commits: most of a first top-up's time)."""
        missing = [AccountSpec(*spec) for spec in specs if spec[0] not in self._ids]
        if missing:
            opened = []
            with self._db.begin() as conn:
                for i in range(0, len(missing), OPEN_PART_MAX):
                    opened += open_accounts(conn, missing[i : i + OPEN_PART_MAX])
            # Only once committed: an id of a rolled back transaction names nothing.
            self._ids.update((a.name, a.id) for a in opened)
        return [self._ids[spec[0]] for spec in specs]

    def cached_legs(self, viewer_id: int, creator_id: int) -> tuple[int, int, int, int] | None:
        """The four accounts of a gift, if all are known without the database."""
        ids = self._ids
        legs = (
            ids.get(f"user:{viewer_id}:coins"),
            ids.get(GIFTS_SPENT),
            ids.get(DIAMONDS_ISSUED),
            ids.get(f"user:{creator_id}:diamonds"),
        )
        if None in legs:
            return None
        return legs  # type: ignore[return-value]

    def fraction(self, user_id: int) -> int:
        """The user's account of hundredths of a diamond, opened at their first fraction."""
        return self.account_id(
            fraction_account(user_id),
            FRACTION_ASSET,
            AccountFlags.NO_OVERDRAFT,
            owner=f"user:{user_id}",
        )

    def fraction_issuer(self) -> int:
        return self.platform(FRACTIONS_ISSUED, FRACTION_ASSET)

    def cached_fraction_legs(self, creator_id: int) -> tuple[int, int] | None:
        """The issuer's and the creator's fraction accounts, if both are known here."""
        issuer = self._ids.get(FRACTIONS_ISSUED)
        creator = self._ids.get(fraction_account(creator_id))
        if issuer is None or creator is None:
            return None
        return issuer, creator

    def cached_id(self, name: str) -> int | None:
        """An account's id, if this process knows it without the database."""
        return self._ids.get(name)

    def cached_day_account(self, user_id: int, day: date) -> int | None:
        """The id of the user's account of ``day`` (``limits.daily_spend_account``), if known."""
        return self._days.get((user_id, day))

    def day_account(self, user_id: int, day: date) -> int:
        """The user's account of ``day``, opened at the first gift of the day on any node."""
        account_id = self._days.get((user_id, day))
        if account_id is None:
            name = daily_spend_account(user_id, day)
            with self._db.begin() as conn:
                (opened,) = open_accounts(
                    conn, [AccountSpec(name, "COIN", owner=f"user:{user_id}")]
                )
            account_id = self._days[(user_id, day)] = opened.id
            while len(self._days) > DAY_ACCOUNTS_MAX:
                self._days.popitem(last=False)
        return account_id

    def cached_period_account(self, name: str) -> int | None:
        """The id of a week or month account (``limits.period_spend_account``), if known."""
        return self._periods.get(name)

    def period_account(self, user_id: int, name: str) -> int:
        """A user's week or month account, opened at their first payment of the period."""
        account_id = self._periods.get(name)
        if account_id is None:
            with self._db.begin() as conn:
                (opened,) = open_accounts(
                    conn, [AccountSpec(name, "COIN", owner=f"user:{user_id}")]
                )
            account_id = self._periods[name] = opened.id
            while len(self._periods) > DAY_ACCOUNTS_MAX:
                self._periods.popitem(last=False)
        return account_id

    def user(self, user_id: int) -> UserAccounts:
        coins, diamonds, coin_debt, diamond_debt = self._open(_user_specs(user_id))
        return UserAccounts(coins, diamonds, coin_debt, diamond_debt)

    def open_users(self, user_ids: Iterable[int]) -> None:
        """Open the accounts of many users at once, in one transaction (the simulator's new
        buyers of a day: a transaction each was a quarter of their first top-up)."""
        self._open([spec for user_id in user_ids for spec in _user_specs(user_id)])

    def platform(self, name: str, asset: str) -> int:
        return self.account_id(name, asset, owner="platform")

    def fiat_sales(self, currency: str) -> int:
        return self.platform(f"platform:sales:{currency.lower()}", currency)

    def fiat_provider(self, provider: str, currency: str) -> int:
        return self.platform(f"platform:provider:{provider}:{currency.lower()}", currency)

    def payout_fees(self, currency: str) -> int:
        return self.platform(f"platform:payout_fees:{currency.lower()}", currency)

    def payout_provider(self, provider: str, currency: str) -> int:
        return self.platform(f"platform:payout_provider:{provider}:{currency.lower()}", currency)

    def accounts(self, ids: list[int]) -> list[Account]:
        """The accounts, in the order asked, read in one query."""
        with self._db.connect() as conn:
            rows = conn.execute(select(accounts_table).where(accounts_table.c.id.in_(ids))).all()
        by_id = {a.id: a for a in (to_account(r) for r in rows)}
        assert len(by_id) == len(set(ids)), "economy accounts are never deleted"
        return [by_id[i] for i in ids]

    def available(self, account_ids: list[int]) -> dict[int, int]:
        """What each account can spend now (posted credits minus posted and pending debits)."""
        with self._reads.connect() as conn:
            rows = conn.execute(
                select(
                    accounts_table.c.id,
                    accounts_table.c.credits_posted
                    - accounts_table.c.debits_posted
                    - accounts_table.c.debits_pending,
                ).where(accounts_table.c.id.in_(account_ids))
            ).all()
        return {int(account_id): int(available) for account_id, available in rows}

    def coins_available(self, user_id: int) -> int:
        coins_id = self.user(user_id).coins
        return self.available([coins_id])[coins_id]

    def view(self, user_id: int) -> WalletView:
        return self.view_and_hundredths(user_id)[0]

    def view_and_hundredths(self, user_id: int) -> tuple[WalletView, int]:
        """The user's balances and the hundredths of a diamond they hold, in one query (the
        hundredths account by its name: it is opened at a creator's first fraction)."""
        mine = self.user(user_id)
        ids = [mine.coins, mine.diamonds, mine.coin_debt, mine.diamond_debt]
        with self._db.connect() as conn:
            rows = conn.execute(
                select(accounts_table).where(
                    or_(
                        accounts_table.c.id.in_(ids),
                        accounts_table.c.name == fraction_account(user_id),
                    )
                )
            ).all()
        by_id = {a.id: a for a in (to_account(r) for r in rows)}
        coins, diamonds, coin_debt, diamond_debt = (by_id[i] for i in ids)
        fraction = next((a for a in by_id.values() if a.id not in ids), None)
        view = WalletView(
            coins=coins.available,
            coins_debt=-coin_debt.balance,
            diamonds=diamonds.available,
            diamonds_reserved=diamonds.debits_pending,
            diamonds_debt=-diamond_debt.balance,
        )
        return view, 0 if fraction is None else fraction.available

    def totals(self) -> EconomyTotals:
        """Four platform accounts, read in one query; one never used yet counts zero."""
        names = (COINS_ISSUED, GIFTS_SPENT, DIAMONDS_ISSUED, PAYOUTS)
        with self._db.connect() as conn:
            rows = conn.execute(
                select(accounts_table).where(accounts_table.c.name.in_(names))
            ).all()
        balance = {a.name: a.balance for a in (to_account(r) for r in rows)}
        # A source account (issued) is debited as value leaves it: its balance is negative.
        return EconomyTotals(
            coins_issued=-balance.get(COINS_ISSUED, 0),
            coins_spent=balance.get(GIFTS_SPENT, 0),
            diamonds_issued=-balance.get(DIAMONDS_ISSUED, 0),
            diamonds_paid_out=balance.get(PAYOUTS, 0),
        )

    def set_frozen(self, user_id: int, frozen: bool) -> None:
        """Freeze a blocked user's spending accounts in the ledger too (defence in depth)."""
        mine = self.user(user_id)
        flags = AccountFlags.NO_OVERDRAFT | (AccountFlags.FROZEN if frozen else AccountFlags.NONE)
        with self._db.begin() as conn:
            set_account_flags(conn, mine.coins, flags)
            set_account_flags(conn, mine.diamonds, flags)


def fraction_account(user_id: int) -> str:
    return f"user:{user_id}:diamond_fraction"


def _user_specs(user_id: int) -> list[tuple[str, str, AccountFlags, str]]:
    owner = f"user:{user_id}"
    no_od, none = AccountFlags.NO_OVERDRAFT, AccountFlags.NONE
    return [
        (f"{owner}:coins", "COIN", no_od, owner),
        (f"{owner}:diamonds", "DIAMOND", no_od, owner),
        (f"{owner}:coin_debt", "COIN", none, owner),
        (f"{owner}:diamond_debt", "DIAMOND", none, owner),
    ]
