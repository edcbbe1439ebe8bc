"""The whole economy through the API alone, on SQLite and PostgreSQL: register a viewer and a
creator, buy coins in the sandbox, gift during a stream, see the earnings, get a payout
approved, dispute the top-up."""

from __future__ import annotations

import asyncio
import csv
import io

from economy_client import (
    ADMIN,
    AppFactory,
    assert_problem,
    economy_app,
    make_admin,
    register,
    sandbox,
)

from giftwave.db.engine import make_engine
from giftwave.db.urls import DatabaseUrl
from giftwave.ledger.verify import verify_ledger

__all__ = ["economy_app"]


async def test_newcomer_journey(economy_app: AppFactory, db_url: DatabaseUrl) -> None:
    async with economy_app() as client:
        viewer = await register(client)
        creator = await register(client, "creator")
        admin = await make_admin(client)

        order = await viewer.buy(7000)
        assert await viewer.coins() == 7000
        r = await viewer.get(f"/v1/topups/{order['id']}")
        assert r.json()["status"] == "paid"

        stream = await creator.go_live()
        for _ in range(57):
            assert (await viewer.gift(stream, "rose")).status_code == 201
        r = await viewer.gift(stream, "lion", key="the-lion")
        assert_problem(r, 402, "insufficient_coins")  # 29,999 > 6,943
        r = await viewer.gift(stream, "disco_ball", count=2, key="disco")
        assert r.status_code == 201, r.text
        assert r.json()["balance_coins"] == 7000 - 57 - 2000
        assert r.json()["diamonds"] == 2000

        statement = (await creator.get("/v1/creators/me/statement")).json()
        assert statement["totals"]["diamonds"] == 2057
        assert statement["totals"]["gifts"] == 58
        assert statement["by_stream"][0]["stream_id"] == stream
        assert statement["totals"]["cash_value_cents"] == 2057 * 5000 // 10_000
        assert 0 < statement["share_percent_low"] <= statement["share_percent_high"] < 100

        r = await creator.get("/v1/creators/me/statement", params={"format": "csv"})
        assert r.headers["content-type"].startswith("text/csv")
        *lines, total = csv.DictReader(io.StringIO(r.text))
        assert [int(row["diamonds"]) for row in lines] == [2057]
        assert (total["day"], int(total["diamonds"])) == ("total", 2057)

        # Payout: 2,057 diamonds = $10.28, under the $50 minimum; lower it for this creator.
        r = await creator.post("/v1/payouts", {"diamonds": 2000, "idempotency_key": "p1"})
        assert_problem(r, 422, "payout_below_minimum")

    async with economy_app(payout_min_cents=500) as client:
        creator.client = client
        admin.client = client
        viewer.client = client
        r = await creator.post("/v1/payouts", {"diamonds": 2000, "idempotency_key": "p1"})
        assert r.status_code == 201, r.text
        payout = r.json()
        assert payout["status"] == "pending"
        assert payout["amount_minor"] == 1000
        wallet = await creator.wallet()
        assert (wallet["diamonds"], wallet["diamonds_reserved"]) == (57, 2000)
        # The creator cannot approve it; an admin can.
        r = await creator.post(f"/v1/admin/payouts/{payout['id']}/approve")
        assert_problem(r, 403, "admin_required")
        r = await admin.post(f"/v1/admin/payouts/{payout['id']}/approve")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "approved"
        assert (await creator.wallet())["diamonds_reserved"] == 0

        # The viewer disputes the top-up: the 4,943 coins left are clawed back and the 2,057
        # already spent become a debt; gifting stops until it is settled.
        await sandbox(client, order, "dispute")
        wallet = await viewer.wallet()
        assert (wallet["coins"], wallet["coins_debt"]) == (0, 2057)
        stream2 = (await client.get("/v1/streams")).json()[0]["id"]
        assert_problem(await viewer.gift(stream2, "rose"), 403, "account_in_debt")
        # The next purchase settles the debt first.
        await viewer.buy(7000)
        wallet = await viewer.wallet()
        assert (wallet["coins"], wallet["coins_debt"]) == (7000 - 2057, 0)
        assert (await viewer.gift(stream2, "rose")).status_code == 201

    engine = make_engine(db_url)
    with engine.connect() as conn:
        report = verify_ledger(conn)
    engine.dispose()
    assert report.ok, report


async def test_same_key_never_charges_twice(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        viewer, creator = await register(client), await register(client, "creator")
        await viewer.buy(700)
        stream = await creator.go_live()
        first = await viewer.gift(stream, "finger_heart", count=3, key="tap-1")
        again = await viewer.gift(stream, "finger_heart", count=3, key="tap-1")
        concurrent = await asyncio.gather(
            *(viewer.gift(stream, "panda", count=2, key="tap-2") for _ in range(20))
        )
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert {r.status_code for r in concurrent} == {201}
        assert len({r.json()["send_id"] for r in concurrent}) == 1
        assert await viewer.coins() == 700 - 15 - 10
        other = await viewer.gift(stream, "panda", count=3, key="tap-2")
        assert_problem(other, 409, "idempotency_key_reused")


async def test_webhook_redelivery_and_order_do_not_matter(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        viewer = await register(client)
        order = await viewer.buy(350)
        # The sandbox refuses to pay twice, so replay the stored event as a provider would.
        await sandbox(client, order, "refund", amount_minor=100)  # partial: 100 of 499 cents
        wallet = await viewer.wallet()
        assert wallet["coins"] == 350 - 350 * 100 // 499
        await sandbox(client, order, "refund")  # the rest
        assert (await viewer.wallet())["coins"] == 0
        r = await viewer.get(f"/v1/topups/{order['id']}")
        assert r.json()["status"] == "refunded"
        r = await client.get("/v1/admin/payouts", headers=ADMIN)
        assert r.status_code == 200
