"""An operator reverses one gift (moderation): the viewer gets the coins back, the creator
gives the diamonds back — from what they hold, and the rest as a debt if already paid out.
New transfers point at the originals; nothing is edited.

The gift's row is marked reversed in the reversal's own ledger transaction (an annex, see
``ledger.annex.GIFT_REVERSED``). After the commit, ``Reversals`` tells its observers (the live
rooms, the battle referee, the webhooks) before the operator gets the answer; a replay tells
them again with the first receipt (the process that committed may have died before telling),
and each of them takes a reversal once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Final

from sqlalchemy import Connection, Engine, RowMapping, Select, or_, select, update
from sqlalchemy.orm import aliased

from giftwave.db.tables import gift_sends, transfers, users
from giftwave.economy.diamond_fractions import fraction_reversal
from giftwave.economy.wallets import DIAMONDS_ISSUED, GIFTS_SPENT, Wallets
from giftwave.errors import Code, Conflict, NotFound, Unavailable
from giftwave.ledger.annex import GIFT_REVERSED
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.model import Outcome, Transfer, TransferCode
from giftwave.ledger.queries import transfer_amounts
from giftwave.logs import audit

ATTEMPTS = 5
RECENT_MAX_SENDS: Final = 200
# The spend legs a gift may carry (economy/gifting.py): the day's, and the week's and
# month's of a sender with limits of their own (economy/spending.py).
SPEND_LEGS: Final = (":s", ":sw", ":sm")


@dataclass(frozen=True, slots=True)
class SentGift:
    """One committed gift, as an operator reviews it."""

    send_id: str
    stream_id: str
    sender_id: int
    sender_handle: str
    creator_id: int
    creator_handle: str
    gift_id: str
    gift_version: int
    count: int
    coins: int
    diamonds: int
    reversed: bool
    created_at_us: int


@dataclass(frozen=True, slots=True)
class GiftReversed:
    """A committed reversal: its receipt, and the gift it took back."""

    send_id: str
    coins_returned: int
    diamonds_taken: int
    diamonds_debt: int
    gift: SentGift  # as it was sent (coins, diamonds, stream, when it was recorded)
    reversed_at_us: int  # when the ledger committed the reversal


# Told after the reversal commits, before the operator is answered; again on a replay.
ReversalObserver = Callable[[GiftReversed], Awaitable[None]]


class Reversals:
    """Reverses gifts and tells every observer, in the order they were added."""

    def __init__(self, db: Engine, engine: PostingEngine, wallets: Wallets) -> None:
        self._db = db
        self._engine = engine
        self._wallets = wallets
        self._observers: list[ReversalObserver] = []

    def add_observer(self, observer: ReversalObserver) -> None:
        """``observer`` must not raise for a committed reversal and must take each ``send_id``
        once: a replay tells it again."""
        self._observers.append(observer)

    async def reverse(self, send_id: str) -> GiftReversed:
        done = await reverse_gift(self._db, self._engine, self._wallets, send_id)
        for observer in self._observers:
            await observer(done)
        return done


def _sends() -> Select[tuple[object, ...]]:
    """Committed gifts with their sender's and creator's handles."""
    sender, creator = aliased(users), aliased(users)
    return select(
        gift_sends, sender.c.handle.label("sender_handle"), creator.c.handle.label("ch")
    ).select_from(
        # Joined to its coins transfer, as every economy query: only what the ledger holds.
        gift_sends.join(transfers, transfers.c.id == gift_sends.c.transfer_id)
        .join(sender, sender.c.id == gift_sends.c.sender_id)
        .join(creator, creator.c.id == gift_sends.c.creator_id)
    )


def _sent_gift(m: RowMapping) -> SentGift:
    return SentGift(
        send_id=str(m["transfer_id"]).removesuffix(":c"),
        stream_id=m["stream_id"],
        sender_id=int(m["sender_id"]),
        sender_handle=m["sender_handle"],
        creator_id=int(m["creator_id"]),
        creator_handle=m["ch"],
        gift_id=m["gift_id"],
        gift_version=int(m["gift_version"]),
        count=int(m["count"]),
        coins=int(m["coins"]),
        diamonds=int(m["diamonds"]),
        reversed=bool(m["reversed"]),
        created_at_us=int(m["created_at_us"]),
    )


def recent_sends(
    conn: Connection, *, stream_id: str | None, user_id: int | None, limit: int
) -> list[SentGift]:
    """Committed gifts, newest first: on one stream, and/or sent or received by one user."""
    assert 0 < limit <= RECENT_MAX_SENDS
    query = (
        _sends().order_by(gift_sends.c.created_at_us.desc(), gift_sends.c.id.desc()).limit(limit)
    )
    if stream_id is not None:
        query = query.where(gift_sends.c.stream_id == stream_id)
    if user_id is not None:
        query = query.where(
            or_(gift_sends.c.sender_id == user_id, gift_sends.c.creator_id == user_id)
        )
    return [_sent_gift(r._mapping) for r in conn.execute(query)]


async def reverse_gift(
    db: Engine, engine: PostingEngine, wallets: Wallets, send_id: str
) -> GiftReversed:
    for _ in range(ATTEMPTS):
        chain, gift, receipt = await asyncio.to_thread(_plan, db, wallets, send_id)
        if chain:
            # The gift's row turns reversed in the same transaction (ledger.annex).
            marked = (GIFT_REVERSED.name, (send_id + ":c",))
            outcomes = await engine.submit(chain, annex=marked)
            if not all(o.succeeded for o in outcomes):
                # Short of diamonds: the creator's balance moved since the plan. An id taken
                # with other amounts: a concurrent reversal of the same gift won; the next plan
                # reads its receipt. Either way, plan again.
                refused = {Outcome.INSUFFICIENT_FUNDS, Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS}
                if not refused & {*outcomes}:
                    raise Conflict(
                        Code.REVERSAL_REFUSED, f"the ledger refused: {outcomes[0].value}"
                    )
                continue
            _audit_reversal(send_id, gift, chain)
        else:
            # A replay: a row an older version left unmarked (it marked after the commit, in a
            # transaction of its own) is marked now.
            await asyncio.to_thread(_mark, db, send_id)
        reversed_at_us = await asyncio.to_thread(_reversed_at_us, db, send_id)
        return GiftReversed(
            send_id, *receipt, gift=replace(gift, reversed=True), reversed_at_us=reversed_at_us
        )
    raise Unavailable(Code.LEDGER_BUSY, "the creator's balance kept changing; retry")


@dataclass(frozen=True, slots=True)
class ReversalAccounts:
    """The accounts a reversal moves value between, and what two of them hold now."""

    sender_coins: int
    gifts_spent: int
    diamonds_issued: int
    creator_diamonds: int
    creator_diamond_debt: int
    diamonds_available: int  # the creator's diamonds not reserved by a payout
    # The issuer's and the creator's fraction accounts, and what the creator's holds; read
    # only for a gift with hundredths of a diamond (a creator rate below 100).
    fraction_issuer: int = 0
    creator_fraction: int = 0
    fraction_available: int = 0


def plan_reversal(
    send_id: str,
    done: Mapping[str, int],
    accounts: ReversalAccounts,
    spends: Mapping[str, tuple[int, int, int]] | None,
) -> tuple[list[Transfer], tuple[int, int, int]]:
    """The reversal's linked chain and its receipt (coins returned, diamonds taken, diamonds
    left as a debt), from the gift's committed legs (``done``: id → amount) and balances.

    Pure, like the ledger's planner: every rule of a reversal is here, testable without a
    database (tests/unit/test_exact_rate.py)."""
    coins_leg, diamonds_leg, fraction_leg = send_id + ":c", send_id + ":d", send_id + ":f"
    a = accounts
    code = TransferCode.REFUND
    # The gift's hundredths of a diamond (a rate below 100): from the fraction account, or,
    # once settled into a diamond, one more diamond taken and its change given back.
    hundredths = done.get(fraction_leg, 0)
    extra, move = fraction_reversal(hundredths, a.fraction_available)
    diamonds = done.get(diamonds_leg, 0) + extra
    take = min(diamonds, max(0, a.diamonds_available))
    debt = diamonds - take
    # A 1-coin gift at a rate below 100 has no diamonds leg: a borrowed diamond points at the
    # gift's hundredths instead.
    diamonds_reversed = diamonds_leg if diamonds_leg in done else fraction_leg
    coins = done[coins_leg]
    chain = [
        Transfer(
            send_id + ":rev:c", a.gifts_spent, a.sender_coins, coins, code, reverses_id=coins_leg
        )
    ]
    if take > 0:
        chain.append(
            Transfer(
                send_id + ":rev:d",
                a.creator_diamonds,
                a.diamonds_issued,
                take,
                code,
                reverses_id=diamonds_reversed,
            )
        )
    if debt > 0:
        chain.append(
            Transfer(
                send_id + ":rev:dd",
                a.creator_diamond_debt,
                a.diamonds_issued,
                debt,
                code,
                reverses_id=diamonds_reversed,
            )
        )
    if move:
        debit, credit = (
            (a.creator_fraction, a.fraction_issuer)
            if move < 0
            else (a.fraction_issuer, a.creator_fraction)
        )
        chain.append(
            Transfer(send_id + ":rev:f", debit, credit, abs(move), code, reverses_id=fraction_leg)
        )
    for suffix, (period_spent, other_side, spent) in sorted((spends or {}).items()):
        # The gift counted towards its sender's daily cap, and their own week's or month's
        # limit (economy/gifting.py, economy/spending.py): the same period's account is
        # credited back, so a limit counts spend net of reversals. A gift sent without such
        # a leg gives nothing back.
        chain.append(
            Transfer(
                send_id + ":rev" + suffix,
                other_side,
                period_spent,
                spent,
                code,
                reverses_id=send_id + suffix,
            )
        )
    linked = [t._replace(linked=i < len(chain) - 1) for i, t in enumerate(chain)]
    return linked, (coins, take, debt)


def _plan(
    db: Engine, wallets: Wallets, send_id: str
) -> tuple[list[Transfer], SentGift, tuple[int, int, int]]:
    """The reversal's chain (empty when it is committed already), the gift, and the receipt
    (coins returned, diamonds taken, diamonds left as a debt)."""
    coins_leg, diamonds_leg, fraction_leg = send_id + ":c", send_id + ":d", send_id + ":f"
    rev_c, rev_d, rev_dd = send_id + ":rev:c", send_id + ":rev:d", send_id + ":rev:dd"
    with db.connect() as conn:
        row = conn.execute(_sends().where(gift_sends.c.transfer_id == coins_leg)).first()
        done = transfer_amounts(conn, [coins_leg, diamonds_leg, fraction_leg, rev_c, rev_d, rev_dd])
        spend_ids = [send_id + suffix for suffix in SPEND_LEGS]
        spends = {
            str(leg_id)[len(send_id) :]: (int(debit), int(credit), int(amount))
            for leg_id, debit, credit, amount in conn.execute(
                select(
                    transfers.c.id,
                    transfers.c.debit_account_id,
                    transfers.c.credit_account_id,
                    transfers.c.amount,
                ).where(transfers.c.id.in_(spend_ids))
            )
        }
    if row is None or coins_leg not in done:
        raise NotFound(Code.GIFT_SEND_NOT_FOUND, f"no committed gift {send_id!r}")
    gift = _sent_gift(row._mapping)
    if rev_c in done:
        # Reversed before: answer that reversal's receipt, read back from its own transfers
        # (what the creator held then was taken, the rest became a debt), never a new plan
        # from today's balances, which would call the whole amount taken.
        return [], gift, (done[rev_c], done.get(rev_d, 0), done.get(rev_dd, 0))
    sender, creator = wallets.user(gift.sender_id), wallets.user(gift.creator_id)
    (creator_diamonds,) = wallets.accounts([creator.diamonds])
    accounts = ReversalAccounts(
        sender_coins=sender.coins,
        gifts_spent=wallets.platform(GIFTS_SPENT, "COIN"),
        diamonds_issued=wallets.platform(DIAMONDS_ISSUED, "DIAMOND"),
        creator_diamonds=creator.diamonds,
        creator_diamond_debt=creator.diamond_debt,
        diamonds_available=creator_diamonds.available,
    )
    if done.get(fraction_leg):
        fraction_id = wallets.fraction(gift.creator_id)
        (fraction,) = wallets.accounts([fraction_id])
        accounts = replace(
            accounts,
            fraction_issuer=wallets.fraction_issuer(),
            creator_fraction=fraction_id,
            fraction_available=fraction.available,
        )
    chain, receipt = plan_reversal(send_id, done, accounts, spends)
    return chain, gift, receipt


def _reversed_at_us(db: Engine, send_id: str) -> int:
    """When the ledger committed the reversal: the same answer on every replay."""
    with db.connect() as conn:
        at = conn.execute(
            select(transfers.c.created_at_us).where(transfers.c.id == send_id + ":rev:c")
        ).scalar_one()
    return int(at)


def _mark(db: Engine, send_id: str) -> None:
    with db.begin() as conn:
        conn.execute(
            update(gift_sends)
            .where(gift_sends.c.transfer_id == send_id + ":c")
            .values(reversed=True)
        )


def _audit_reversal(send_id: str, gift: SentGift, chain: list[Transfer]) -> None:
    """The audit lines of a committed reversal (not of its replays), and the debt it left."""
    amounts = {t.id: t.amount for t in chain}
    debt_diamonds = amounts.get(send_id + ":rev:dd", 0)
    audit(
        "audit.gift_reversed",
        send_id=send_id,
        sender_id=gift.sender_id,
        creator_id=gift.creator_id,
        stream_id=gift.stream_id,
        coins_returned=amounts.get(send_id + ":rev:c", 0),
        diamonds_taken=amounts.get(send_id + ":rev:d", 0),
        diamonds_debt=debt_diamonds,
        transfer_id=send_id + ":rev:c",
    )
    if debt_diamonds > 0:
        audit(
            "audit.debt_created",
            user_id=gift.creator_id,
            asset="DIAMOND",
            diamonds=debt_diamonds,
            cause="gift_reversed",
            transfer_id=send_id + ":rev:dd",
        )
