"""Payout figures agree with the ledger (issue #17, items 3 and 4), on SQLite and PostgreSQL.

- An expired payout: the ledger's void marks the row in the same transaction, whichever
  process sweeps (here another engine on the same database, with no payout service at all),
  so the statement shows nothing pending and the daily cap has room again, without anyone
  listing payouts.
- Cents: a payout reserves exactly the diamonds its cents are worth; the half-cent a request
  of an odd number of diamonds holds stays in the creator's balance, never lost.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from alembic import command
from economy_client import AppFactory, Person, economy_app, grant, payout_quickly_reviewed, register
from sqlalchemy import select, update

from giftwave.api.state import app_services
from giftwave.db.engine import _alembic_config, make_engine, migrate
from giftwave.db.tables import payouts
from giftwave.db.urls import DatabaseUrl
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.stores import open_store

__all__ = ["economy_app"]

VALUE_MICROS = 5_000  # the default: a diamond is half a cent


async def earn(client: Any, creator: Person, gifts: list[tuple[str, int]]) -> None:
    """A viewer gives ``creator`` these (gift, count): one diamond per coin."""
    viewer = await register(client)
    await grant(client, viewer, 1_000_000)
    stream = await creator.go_live()
    for gift_id, count in gifts:
        r = await viewer.gift(stream, gift_id, count=count)
        assert r.status_code == 201, r.text


async def payout(creator: Person, diamonds: int, key: str) -> dict[str, Any]:
    r = await creator.post("/v1/payouts", {"diamonds": diamonds, "idempotency_key": key})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def reserved_becomes(creator: Person, diamonds: int, timeout_s: float = 10) -> None:
    """Wait until the creator's reserved diamonds (read from the ledger) are ``diamonds``."""
    deadline = time.monotonic() + timeout_s
    while True:
        reserved = (await creator.wallet())["diamonds_reserved"]
        if reserved == diamonds or time.monotonic() > deadline:
            assert reserved == diamonds
            return
        await asyncio.sleep(0.05)


async def test_an_expired_payout_leaves_pending_and_the_cap_at_once(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    # This app never sweeps expired reservations itself (once an hour): another node does.
    async with economy_app(
        payout_min_cents=100, payout_daily_cap_cents=600, ledger_expiry_interval_s=3600
    ) as client:
        creator = await register(client, "creator")
        await earn(client, creator, [("galaxy", 2)])  # 2,000 diamonds, $10
        economy: Any = app_services(client.app).economy
        # Settings allow a review timeout of 60 s at least; the same service with 1 s. The
        # whole $6 cap:
        pending = await payout_quickly_reviewed(economy, creator.id, 1_200, "slow-review")
        assert (pending.status.value, pending.amount_minor) == ("pending", 600)
        statement = (await creator.get("/v1/creators/me/statement")).json()
        assert statement["payouts"]["pending_diamonds"] == 1_200
        assert statement["reserved_diamonds"] == 1_200

        async with PostingEngine(open_store(db_url), expiry_interval_s=0.05):
            await reserved_becomes(creator, 0)
        wallet = await creator.wallet()
        assert (wallet["diamonds"], wallet["diamonds_reserved"]) == (2_000, 0)

        # Nobody listed payouts: the statement already agrees with the ledger ...
        statement = (await creator.get("/v1/creators/me/statement")).json()
        assert statement["reserved_diamonds"] == 0
        assert statement["payouts"].get("pending_diamonds", 0) == 0, statement["payouts"]
        assert statement["payouts"].get("pending_cents", 0) == 0, statement["payouts"]
        assert statement["payouts"]["expired_diamonds"] == 1_200
        assert statement["payouts"]["expired_cents"] == 600
        # ... and a new payout up to the day's cap is accepted.
        again = await payout(creator, 1_200, "after-expiry")
        assert (again["status"], again["amount_minor"]) == ("pending", 600)
        assert (await creator.get(f"/v1/payouts/{pending.id}")).json()["status"] == "expired"


async def test_the_upgrade_marks_payouts_that_expired_before_it(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    """Before, a row changed only when someone listed payouts: migration 0015 marks those
    an older version left pending after the ledger voided their reservation."""
    async with economy_app(payout_min_cents=100) as client:
        creator = await register(client, "creator")
        await earn(client, creator, [("galaxy", 1)])
        economy: Any = app_services(client.app).economy
        old = await payout_quickly_reviewed(economy, creator.id, 400, "before-upgrade")
        live = await payout(creator, 200, "under-review")  # the 14-day review timeout
        await reserved_becomes(creator, 200)
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:  # what the version before left: expired, still pending
            conn.execute(update(payouts).where(payouts.c.id == old.id).values(status="pending"))
        config = _alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0014")
        migrate(engine)
        with engine.connect() as conn:
            status = dict(conn.execute(select(payouts.c.id, payouts.c.status)).all())
    finally:
        engine.dispose()
    assert status[old.id] == "expired"
    assert status[live["id"]] == "pending"  # its reservation is still there


async def test_a_payout_reserves_exactly_what_its_cents_are_worth(
    economy_app: AppFactory,
) -> None:
    async with economy_app(payout_min_cents=100, payout_daily_cap_cents=10_000_000) as client:
        creator = await register(client, "creator")
        earned = 190_002
        await earn(client, creator, [("galaxy", 190), ("rose", 2)])
        assert (await creator.wallet())["diamonds"] == earned

        # 10,001 diamonds are worth 5,000.5 cents: 10,000 are reserved for 5,000 cents and
        # the odd one stays (before: all 10,001 reserved, the half-cent lost).
        first = await payout(creator, 10_001, "odd")
        assert (first["diamonds"], first["amount_minor"]) == (10_000, 5_000)
        # Three requests that add up to 180,001 diamonds (90,000.5 cents): before, each was
        # floored and all reserved, 89,999 cents for 180,001 diamonds (1.5 cents lost).
        series = [
            await payout(creator, d, f"part-{i}") for i, d in enumerate((60_001, 60_001, 59_999))
        ]
        assert [p["amount_minor"] for p in series] == [30_000, 30_000, 29_999]
        assert [p["diamonds"] for p in series] == [60_000, 60_000, 59_998]
        payouts = [first, *series]
        for p in payouts:  # each reservation is worth its cents, exactly
            assert p["diamonds"] * VALUE_MICROS == p["amount_minor"] * 10_000, p
        wallet = await creator.wallet()
        reserved = sum(p["diamonds"] for p in payouts)
        assert wallet["diamonds_reserved"] == reserved
        assert wallet["diamonds"] == earned - reserved == 4  # the fractions, still the creator's
        # What was requested and what stays add up to the value earned: nothing lost.
        paid_cents = sum(p["amount_minor"] for p in payouts)
        assert paid_cents * 10_000 + wallet["diamonds"] * VALUE_MICROS == earned * VALUE_MICROS

        # One request for all of 180,001 diamonds: 90,000 cents for 180,000 of them.
        other = await register(client, "creator")
        await earn(client, other, [("galaxy", 180), ("rose", 1)])
        whole = await payout(other, 180_001, "all")
        assert (whole["diamonds"], whole["amount_minor"]) == (180_000, 90_000)
        wallet = await other.wallet()
        assert (wallet["diamonds"], wallet["diamonds_reserved"]) == (1, 180_000)
        # A replay of the request answers the same payout.
        assert (await payout(other, 180_001, "all"))["id"] == whole["id"]
        statement = (await other.get("/v1/creators/me/statement")).json()
        assert statement["payouts"]["pending_cents"] == 90_000
        assert statement["payouts"]["pending_diamonds"] == 180_000
