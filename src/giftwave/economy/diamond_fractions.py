"""Hundredths of a diamond: what a creator rate that is not whole diamonds per coin leaves over.

A gift of C coins at R diamonds per 100 coins earns exactly CxR/100 diamonds. Its chain
(economy/gifting.py) credits the whole diamonds (``:d``, as always) and, when CxR mod 100 is
not zero, that remainder in hundredths of a diamond to the creator's fraction account
(``:f``: ``user:<id>:diamond_fraction``, asset CDIAMOND, from
``platform:diamond_fractions_issued``). A settlement carries whole diamonds out of it:

    [fraction → fraction issuer: kx100 hundredths] + [diamonds_issued → creator diamonds: k]

one linked chain, k = the fraction account's balance // 100. Its ids derive from the fraction
account's posted debits (the hundredths settled or taken back so far): every node that plans
from the same state names the same transfers, so one commits and the others are replays or
are refused, and the account has no overdraft, so a plan from a stale balance can never pay
twice. Whole diamonds + fraction / 100 is always the exact rate, never rounded either way.

Settled off the gift path: by a loop in every serving process (``DiamondFractions.start``),
and before a payout request reserves diamonds (economy/payouts.py). A reversal takes the
gift's fraction back (economy/reversals.py, ``fraction_reversal``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from sqlalchemy import Engine, Select, bindparam, select

from giftwave.db.tables import accounts
from giftwave.economy.wallets import (
    DIAMONDS_ISSUED,
    FRACTION_ASSET,
    FRACTIONS_ISSUED,
    HUNDREDTHS_PER_DIAMOND,
    Wallets,
    fraction_account,
)
from giftwave.ledger.accounts import find_account
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.model import Account, Outcome, Transfer, TransferCode
from giftwave.periodic import PeriodicTask, Schedule

log = logging.getLogger(__name__)

# How often each process settles every creator with a whole diamond in hundredths: often
# enough that a balance is whole diamonds within a minute, rarely enough to cost nothing.
SETTLE_INTERVAL_S: Final = 30.0
SETTLE_BATCH_MAX: Final = 500  # fraction accounts settled per round: a bounded round
SETTLE_AT_ONCE: Final = 50  # settlements submitted together (the ledger batches them)
ATTEMPTS: Final = 3  # plans of one settlement when the account moved under it


def split_diamonds(coins: int, diamonds_per_100_coins: int) -> tuple[int, int]:
    """What a gift of ``coins`` earns: whole diamonds, and the hundredths of one left over."""
    assert coins >= 0
    assert 1 <= diamonds_per_100_coins <= 100
    whole, hundredths = divmod(coins * diamonds_per_100_coins, HUNDREDTHS_PER_DIAMOND)
    return whole, hundredths


def settlement_id(creator_id: int, fraction: Account) -> str:
    """The settlement planned from this state of the fraction account: posted debits only
    grow, so a later state never names the same transfers."""
    return f"dfrac:{creator_id}:{fraction.debits_posted}"


def plan_settlement(
    creator_id: int,
    fraction: Account,
    *,
    fraction_issuer: int,
    diamonds_issued: int,
    creator_diamonds: int,
) -> list[Transfer]:
    """The linked pair that carries the whole diamonds out of ``fraction``; [] if none."""
    whole = fraction.available // HUNDREDTHS_PER_DIAMOND
    if whole <= 0:
        return []
    base = settlement_id(creator_id, fraction)
    return [
        Transfer(
            base + ":f",
            fraction.id,
            fraction_issuer,
            whole * HUNDREDTHS_PER_DIAMOND,
            TransferCode.GIFT,
            linked=True,
        ),
        Transfer(base + ":d", diamonds_issued, creator_diamonds, whole, TransferCode.GIFT),
    ]


def fraction_reversal(hundredths: int, available: int) -> tuple[int, int]:
    """How a reversal takes back a gift's ``hundredths``: (whole diamonds to take besides
    the gift's own, hundredths to move into the fraction account, negative to take out).

    From the fraction account when it holds them; else they were settled into a diamond
    already, so one more diamond is taken and its change, 100 - hundredths, given back.
    Either way the creator ends exactly where the gift had not been."""
    assert 0 <= hundredths < HUNDREDTHS_PER_DIAMOND
    if hundredths == 0:
        return 0, 0
    if available >= hundredths:
        return 0, -hundredths
    return 1, HUNDREDTHS_PER_DIAMOND - hundredths


def due_query() -> Select[Any]:
    """The owners of hundredths accounts holding a whole diamond, by id (ix_accounts_asset).

    Its constants are written into the statement, not bound: PostgreSQL plans a statement
    prepared by the driver (every sixth run on one connection) generically, and for
    ``asset = $1`` it guessed a quarter of all accounts and scanned the table, 250 ms a round
    at a million accounts where the index takes 5 ms (docs/benchmarks.md)."""
    held = accounts.c.credits_posted - accounts.c.debits_posted - accounts.c.debits_pending
    return (
        select(accounts.c.owner)
        .where(
            accounts.c.asset == bindparam("asset", FRACTION_ASSET, literal_execute=True),
            accounts.c.name.like(
                bindparam("pattern", "user:%:diamond_fraction", literal_execute=True)
            ),
            held >= bindparam("whole", HUNDREDTHS_PER_DIAMOND, literal_execute=True),
        )
        .order_by(accounts.c.id)
        .limit(bindparam("batch", SETTLE_BATCH_MAX, literal_execute=True))
    )


class DiamondFractions:
    """Settles creators' hundredths into whole diamonds: on demand, and in a loop."""

    def __init__(self, db: Engine, engine: PostingEngine, wallets: Wallets) -> None:
        self._db = db
        self._engine = engine
        self._wallets = wallets
        self._loop = PeriodicTask(
            "diamond-fractions", self._settle_round, Schedule(SETTLE_INTERVAL_S)
        )

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _settle_round(self) -> None:
        await self.settle_due()

    async def settle(self, creator_id: int) -> int:
        """Carry the creator's whole diamonds out of their hundredths; the diamonds this call
        committed (0: none were due, or another process settled them first)."""
        for _ in range(ATTEMPTS):
            chain = await asyncio.to_thread(self._plan, creator_id)
            if not chain:
                return 0
            outcomes = await self._engine.submit(chain)
            if all(o is Outcome.OK for o in outcomes):
                return chain[-1].amount
            if all(o.succeeded for o in outcomes):
                return 0  # the same settlement, committed by another process
            if not {Outcome.INSUFFICIENT_FUNDS, Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS} & {
                *outcomes
            }:
                # A frozen diamonds account (a blocked creator) waits until it is unfrozen.
                log.warning("diamond fractions of %s refused: %s", creator_id, outcomes)
                return 0
            # The account moved since the plan (another settlement, a reversal): plan again.
        return 0

    async def settle_due(self) -> int:
        """Settle every creator holding a whole diamond in hundredths (at most
        ``SETTLE_BATCH_MAX`` per call); the diamonds committed."""
        creator_ids = await asyncio.to_thread(self._due)
        settled = 0
        for i in range(0, len(creator_ids), SETTLE_AT_ONCE):
            part = creator_ids[i : i + SETTLE_AT_ONCE]
            settled += sum(await asyncio.gather(*(self.settle(c) for c in part)))
        return settled

    def pending_hundredths(self, creator_id: int) -> int:
        """Hundredths of a diamond the creator holds, not yet settled into a whole one."""
        with self._db.connect() as conn:
            account = find_account(conn, fraction_account(creator_id))
        return 0 if account is None else account.available

    def _due(self) -> list[int]:
        with self._db.connect() as conn:
            # The issuer is debited every hundredth creators hold: while it is even (always at
            # the default rate), there is nothing to settle and the accounts are not scanned.
            issuer = find_account(conn, FRACTIONS_ISSUED)
            if issuer is None or -issuer.balance < HUNDREDTHS_PER_DIAMOND:
                return []
            owners = conn.execute(due_query()).scalars()
            return [int(owner.removeprefix("user:")) for owner in owners]

    def _plan(self, creator_id: int) -> list[Transfer]:
        with self._db.connect() as conn:
            fraction = find_account(conn, fraction_account(creator_id))
        if fraction is None or fraction.available < HUNDREDTHS_PER_DIAMOND:
            return []
        return plan_settlement(
            creator_id,
            fraction,
            fraction_issuer=self._wallets.fraction_issuer(),
            diamonds_issued=self._wallets.platform(DIAMONDS_ISSUED, "DIAMOND"),
            creator_diamonds=self._wallets.user(creator_id).diamonds,
        )
