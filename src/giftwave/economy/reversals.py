"""An operator reverses one gift (moderation): the viewer gets the coins back, the creator
gives the diamonds back — from what they hold, and the rest as a debt if already paid out.
New transfers point at the originals; nothing is edited."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Engine, or_, select, update
from sqlalchemy.orm import aliased

from giftwave.db.tables import gift_sends, transfers, users
from giftwave.economy.wallets import DIAMONDS_ISSUED, GIFTS_SPENT, Wallets
from giftwave.errors import Conflict, NotFound, Unavailable
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.model import Outcome, Transfer, TransferCode
from giftwave.ledger.queries import transfer_amounts

ATTEMPTS = 5
RECENT_MAX_SENDS: Final = 200


@dataclass(frozen=True, slots=True)
class GiftReversed:
    send_id: str
    coins_returned: int
    diamonds_taken: int
    diamonds_debt: int


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


def recent_sends(
    conn: Connection, *, stream_id: str | None, user_id: int | None, limit: int
) -> list[SentGift]:
    """Committed gifts, newest first: on one stream, and/or sent or received by one user."""
    assert 0 < limit <= RECENT_MAX_SENDS
    sender, creator = aliased(users), aliased(users)
    query = (
        select(gift_sends, sender.c.handle.label("sender_handle"), creator.c.handle.label("ch"))
        # Joined to its coins transfer, as every economy query: only what the ledger holds.
        .select_from(
            gift_sends.join(transfers, transfers.c.id == gift_sends.c.transfer_id)
            .join(sender, sender.c.id == gift_sends.c.sender_id)
            .join(creator, creator.c.id == gift_sends.c.creator_id)
        )
        .order_by(gift_sends.c.created_at_us.desc(), gift_sends.c.id.desc())
        .limit(limit)
    )
    if stream_id is not None:
        query = query.where(gift_sends.c.stream_id == stream_id)
    if user_id is not None:
        query = query.where(
            or_(gift_sends.c.sender_id == user_id, gift_sends.c.creator_id == user_id)
        )
    return [
        SentGift(
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
        for m in (r._mapping for r in conn.execute(query))
    ]


async def reverse_gift(
    db: Engine, engine: PostingEngine, wallets: Wallets, send_id: str
) -> GiftReversed:
    for _ in range(ATTEMPTS):
        plan = await asyncio.to_thread(_plan, db, wallets, send_id)
        chain, result = plan
        if not chain:
            await asyncio.to_thread(_mark, db, send_id)
            return result
        outcomes = await engine.submit(chain)
        if all(o.succeeded for o in outcomes):
            await asyncio.to_thread(_mark, db, send_id)
            return result
        # Short of diamonds: the creator's balance moved since the plan. An id taken with
        # other amounts: a concurrent reversal of the same gift won; the next plan reads its
        # receipt. Either way, plan again.
        if not {Outcome.INSUFFICIENT_FUNDS, Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS} & {*outcomes}:
            raise Conflict("reversal_refused", f"the ledger refused: {outcomes[0].value}")
    raise Unavailable("ledger_busy", "the creator's balance kept changing; retry")


def _plan(db: Engine, wallets: Wallets, send_id: str) -> tuple[list[Transfer], GiftReversed]:
    coins_leg, diamonds_leg = send_id + ":c", send_id + ":d"
    rev_c, rev_d, rev_dd = send_id + ":rev:c", send_id + ":rev:d", send_id + ":rev:dd"
    with db.connect() as conn:
        row = conn.execute(select(gift_sends).where(gift_sends.c.transfer_id == coins_leg)).first()
        done = transfer_amounts(conn, [coins_leg, diamonds_leg, rev_c, rev_d, rev_dd])
    if row is None or coins_leg not in done:
        raise NotFound("gift_send_not_found", f"no committed gift {send_id!r}")
    if rev_c in done:
        # Reversed before: answer that reversal's receipt, read back from its own transfers
        # (what the creator held then was taken, the rest became a debt), never a new plan
        # from today's balances, which would call the whole amount taken.
        return [], GiftReversed(send_id, done[rev_c], done.get(rev_d, 0), done.get(rev_dd, 0))
    sender, creator = wallets.user(int(row.sender_id)), wallets.user(int(row.creator_id))
    coins, diamonds = int(row.coins), int(row.diamonds)
    (creator_diamonds,) = wallets.accounts([creator.diamonds])
    take = min(diamonds, max(0, creator_diamonds.available))
    spent = wallets.platform(GIFTS_SPENT, "COIN")
    issued = wallets.platform(DIAMONDS_ISSUED, "DIAMOND")
    code = TransferCode.REFUND
    chain = [Transfer(rev_c, spent, sender.coins, coins, code, reverses_id=coins_leg)]
    if diamonds_leg in done and take > 0:
        chain.append(
            Transfer(rev_d, creator.diamonds, issued, take, code, reverses_id=diamonds_leg)
        )
    debt = diamonds - take if diamonds_leg in done else 0
    if debt > 0:
        chain.append(
            Transfer(
                rev_dd,
                creator.diamond_debt,
                issued,
                debt,
                code,
                reverses_id=diamonds_leg,
            )
        )
    linked = [t._replace(linked=i < len(chain) - 1) for i, t in enumerate(chain)]
    return linked, GiftReversed(send_id, coins, take, debt)


def _mark(db: Engine, send_id: str) -> None:
    with db.begin() as conn:
        conn.execute(
            update(gift_sends)
            .where(gift_sends.c.transfer_id == send_id + ":c")
            .values(reversed=True)
        )
