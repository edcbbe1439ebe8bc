"""What a creator is shown as paid out equals what the ledger paid (issue 17, found by the
evening's cross-check), on SQLite and PostgreSQL.

An approval that settles a diamond debt from the reservation pays less than the payout's
diamonds (which stay what was reserved, docs/economy.md). The studio's "Paid out" summed those
reserved diamonds beside the cents actually paid: 1,800 diamonds for $5.00, at half a cent a
diamond, when the ledger had paid 1,000 and 800 had settled the debt.
"""

from __future__ import annotations

import re

from economy_client import ADMIN, AppFactory, economy_app, grant, register
from sqlalchemy import Engine, select

from giftwave.db.tables import transfers

__all__ = ["economy_app"]


async def test_paid_out_is_what_the_ledger_paid_after_a_debt_settled(
    economy_app: AppFactory, sa_engine: Engine
) -> None:
    async with economy_app(payout_min_cents=100) as client:
        viewer, creator = await register(client), await register(client, "creator")
        await grant(client, viewer, 2_000)
        stream = await creator.go_live()
        sends = []
        for _ in range(2):
            r = await viewer.gift(stream, "galaxy")  # 1,000 diamonds each
            assert r.status_code == 201, r.text
            sends.append(r.json()["send_id"])
        r = await creator.post("/v1/payouts", {"diamonds": 1_800, "idempotency_key": "cash"})
        assert r.status_code == 201, r.text
        payout = r.json()
        # 200 diamonds are not reserved: the reversal takes them and leaves a debt of 800,
        # which the approval settles from the reservation before paying the rest.
        r = await client.post(f"/v1/admin/gift-sends/{sends[0]}/reverse", headers=ADMIN)
        assert (r.status_code, r.json()["diamonds_debt"]) == (200, 800), r.text
        r = await client.post(f"/v1/admin/payouts/{payout['id']}/approve", headers=ADMIN)
        assert r.status_code == 200, r.text

        with sa_engine.connect() as conn:
            paid = conn.execute(
                select(transfers.c.amount).where(transfers.c.id == f"payout:{payout['id']}:post")
            ).scalar_one()
        assert paid == 1_000
        statement = (await creator.get("/v1/creators/me/statement")).json()
        assert statement["payouts"]["approved_diamonds"] == 1_800  # what was reserved
        assert statement["payouts"]["approved_cents"] == 500
        assert statement["paid_out_diamonds"] == paid

        client.cookies.clear()  # a page: the creator's session cookie, never a bearer token
        token = creator.auth["Authorization"].removeprefix("Bearer ")
        r = await client.get("/studio/earnings", headers={"Cookie": f"gw_session={token}"})
        assert r.status_code == 200, r.text
        shown = dict(re.findall(r'<bdi id="(paid-diamonds|paid-cash)">([^<]*)</bdi>', r.text))
        assert shown == {"paid-diamonds": "1,000", "paid-cash": "$5.00"}
