"""A creator earns exactly the published rate through the real gift path (issue 22), on
SQLite and PostgreSQL: at 80 diamonds per 100 coins a 1-coin Rose earned 0 diamonds (80 x 1
// 100); its 80 hundredths are now carried and settled into whole diamonds.
"""

from __future__ import annotations

from typing import Any

import httpx
from economy_client import ADMIN, AppFactory, Person, economy_app, grant, register
from sqlalchemy import select

from giftwave.api.state import app_services
from giftwave.db.engine import make_engine
from giftwave.db.tables import transfers
from giftwave.db.urls import DatabaseUrl
from giftwave.ledger.verify import verify_ledger

__all__ = ["economy_app"]


async def _statement(creator: Person) -> dict[str, Any]:
    r = await creator.get("/v1/creators/me/statement")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _verify(db_url: DatabaseUrl) -> None:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        report = verify_ledger(conn)
    engine.dispose()
    assert report.ok, report


async def creator_live_and_fan(client: httpx.AsyncClient) -> tuple[Person, str, Person]:
    """A creator live in a stream and a viewer holding 100 coins."""
    creator = await register(client, "creator")
    stream = await creator.go_live()
    viewer = await register(client)
    await grant(client, viewer, 100)
    return creator, stream, viewer


async def test_five_roses_at_80_earn_four_diamonds_and_a_reversal_takes_back_exactly_one(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app(creator_diamonds_per_100_coins=80) as client:
        creator, stream, viewer = await creator_live_and_fan(client)
        sends = []
        for _ in range(5):
            r = await viewer.gift(stream, "rose")
            assert r.status_code == 201, r.text
            assert r.json()["diamonds"] == 0  # whole diamonds: the rest is carried
            sends.append(r.json()["send_id"])

        economy: Any = app_services(client.app).economy  # type: ignore[attr-defined]
        assert economy.fractions.pending_hundredths(creator.id) == 400
        assert await economy.fractions.settle_due() == 4  # what every process's loop runs
        assert await economy.fractions.settle(creator.id) == 0  # nothing left to settle
        assert (await creator.wallet())["diamonds"] == 4
        statement = await _statement(creator)
        assert statement["totals"]["coins"] == 5
        assert statement["earned_hundredths"] == 400  # 5 x 0.80, where the floor gave 0
        assert statement["diamonds_per_100_coins"] == 80.0
        assert statement["fraction_pending_hundredths"] == 0
        # 0.8 diamond per coin: the configured share, 28.0-28.3 %, not 0 %.
        assert (statement["share_percent_low"], statement["share_percent_high"]) == (28.0, 28.3)

        # The Rose's 80 hundredths were settled into a diamond: the reversal takes a whole
        # diamond and gives 20 hundredths back, so 4 Roses leave exactly 3.20 diamonds.
        r = await client.post(f"/v1/admin/gift-sends/{sends[0]}/reverse", headers=ADMIN)
        assert r.status_code == 200, r.text
        assert (r.json()["diamonds_taken"], r.json()["diamonds_debt"]) == (1, 0)
        assert (await creator.wallet())["diamonds"] == 3
        statement = await _statement(creator)
        assert statement["fraction_pending_hundredths"] == 20
        assert statement["earned_hundredths"] == 320
        assert statement["diamonds_per_100_coins"] == 80.0
    _verify(db_url)


async def test_a_payout_request_settles_the_hundredths_first(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app(creator_diamonds_per_100_coins=80, payout_min_cents=1) as client:
        creator = await register(client, "creator")
        stream = await creator.go_live()
        viewer = await register(client)
        await grant(client, viewer, 100)
        r = await viewer.gift(stream, "rose", 5)  # one gift of 5 coins: 4 whole diamonds
        assert r.status_code == 201, r.text
        for _ in range(5):  # five of 1 coin: 400 hundredths, not yet whole
            assert (await viewer.gift(stream, "rose")).status_code == 201
        r = await creator.post("/v1/payouts", {"diamonds": 8, "idempotency_key": "all-of-it"})
        assert r.status_code == 201, r.text
        assert r.json()["diamonds"] == 8
    _verify(db_url)


async def test_the_wallet_and_statement_do_not_lag_the_settlement_loop(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app(creator_diamonds_per_100_coins=80) as client:
        creator, stream, viewer = await creator_live_and_fan(client)
        for _ in range(6):  # six Roses of 1 coin: 480 hundredths, none settled by the loop
            assert (await viewer.gift(stream, "rose")).status_code == 201
        economy: Any = app_services(client.app).economy  # type: ignore[attr-defined]
        assert economy.fractions.pending_hundredths(creator.id) == 480
        # The wallet carries the 4 whole diamonds out first; 80 hundredths stay.
        assert (await creator.wallet())["diamonds"] == 4
        assert economy.fractions.pending_hundredths(creator.id) == 80
        assert await economy.fractions.settle_due() == 0  # nothing left for the loop
        assert (await viewer.gift(stream, "rose")).status_code == 201  # 160 hundredths
        statement = await _statement(creator)
        assert (statement["balance_diamonds"], statement["fraction_pending_hundredths"]) == (5, 60)
        # Reading again settles nothing twice.
        assert (await creator.wallet())["diamonds"] == 5
        assert (await _statement(creator))["balance_diamonds"] == 5
    _verify(db_url)


async def test_the_default_rate_posts_no_fraction(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app() as client:
        creator = await register(client, "creator")
        stream = await creator.go_live()
        viewer = await register(client)
        await grant(client, viewer, 100)
        for gift in ("rose", "finger_heart"):
            assert (await viewer.gift(stream, gift)).status_code == 201
        statement = await _statement(creator)
        assert (statement["earned_hundredths"], statement["diamonds_per_100_coins"]) == (600, 100)
        economy: Any = app_services(client.app).economy  # type: ignore[attr-defined]
        assert await economy.fractions.settle_due() == 0
    engine = make_engine(db_url)
    with engine.connect() as conn:
        ids = conn.execute(select(transfers.c.id).where(transfers.c.code == "gift")).scalars()
        # coins, diamonds and the daily cap's leg: no ":f" at a whole rate
        assert sorted(i.rsplit(":", 1)[1] for i in ids) == ["c", "c", "d", "d", "s", "s"]
    engine.dispose()
    _verify(db_url)
