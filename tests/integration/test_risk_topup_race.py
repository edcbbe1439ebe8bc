"""The flagged buyer's top-up cap holds across nodes, on SQLite and PostgreSQL: two orders of
one flagged buyer, each on its own engine and thread (as on two nodes), both pass the early
read at the same instant (a barrier in the provider's checkout holds each until the other has
read); only one may be written when the two together pass the cap."""

from __future__ import annotations

import asyncio
import threading
from datetime import date

from sqlalchemy import Engine, func, select

from giftwave.config import Settings
from giftwave.db.engine import make_engine
from giftwave.db.tables import payment_orders
from giftwave.db.urls import DatabaseUrl
from giftwave.economy.packages import seed_default_packages
from giftwave.economy.risk_flags import open_flag
from giftwave.economy.spending import Spending, SpendingPolicy
from giftwave.economy.topups import TopUpRisk, TopUps
from giftwave.economy.wallets import Wallets
from giftwave.errors import Code, Forbidden
from giftwave.identity.users import AgeRule, Role, User, create_user
from giftwave.ledger.engine import PostingEngine
from giftwave.payments.base import CheckoutRequest, CheckoutSession

TODAY = date(2026, 12, 6)
AGE = AgeRule(min_age=18, by_country={})
CAP = 5_000
COINS = 3_000  # one order passes the cap, two together do not


class MeetingProvider:
    """A provider whose checkout waits until both racing orders have reached it, that is until
    both have read the buyer's coins of the day."""

    name = "sandbox"

    def __init__(self, barrier: threading.Barrier) -> None:
        self._barrier = barrier

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        await asyncio.to_thread(self._barrier.wait, 10)
        return CheckoutSession(f"cs_{request.order_id}", f"{request.site_url}/pay")


def flagged_buyer(db: Engine) -> User:
    with db.begin() as conn:
        seed_default_packages(conn)
        user = create_user(
            conn,
            handle="racer",
            role=Role.VIEWER,
            birth_date=date(1990, 1, 1),
            country="US",
            today=TODAY,
            age_rule=AGE,
        )
        open_flag(conn, user.id, "manual", note="under review")
    return user


def place(
    db_url: DatabaseUrl, posting: PostingEngine, barrier: threading.Barrier, user: User, key: str
) -> str:
    """One node's order: its own engine, its own event loop; what came of it."""
    db = make_engine(db_url)
    wallets = Wallets(db)
    topups = TopUps(
        db,
        posting,
        wallets,
        MeetingProvider(barrier),  # type: ignore[arg-type]
        AGE,
        Spending(db, wallets, SpendingPolicy.configured(Settings())),
        TopUpRisk(flagged_coins_per_day=CAP),
    )
    try:
        asyncio.run(
            topups.create_order(
                user,
                package_id=None,
                coins=COINS,
                currency="USD",
                idempotency_key=key,
                site_url="http://giftwave.test",
                return_url="http://giftwave.test/shop",
                today=TODAY,
            )
        )
        return "placed"
    except Forbidden as exc:
        return exc.code.value
    finally:
        db.dispose()


async def test_two_nodes_racing_hold_the_flagged_cap(
    db_url: DatabaseUrl, sa_engine: Engine, posting: PostingEngine
) -> None:
    user = flagged_buyer(sa_engine)
    barrier = threading.Barrier(2)
    out = await asyncio.gather(
        *(asyncio.to_thread(place, db_url, posting, barrier, user, f"k{i}") for i in range(2))
    )
    assert sorted(out) == ["placed", Code.TOPUP_LIMIT_REACHED.value]
    with sa_engine.connect() as conn:
        written = conn.execute(
            select(func.count()).where(payment_orders.c.user_id == user.id)
        ).scalar_one()
    assert written == 1
