"""The demo seed: a believable first evening played through the real API, balanced, and safe
to run twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from giftwave.api.app import create_app
from giftwave.config import Settings
from giftwave.db.engine import make_engine
from giftwave.db.urls import parse_database_url
from giftwave.demo import DEMO_GIFTS, DEMO_TOPUP_COINS, DEMO_VIEWERS, seed_demo, with_admin_token
from giftwave.ledger.accounts import get_account
from giftwave.ledger.verify import verify_ledger

PRICES = {"rose": 1, "finger_heart": 5, "hand_hearts": 100, "disco_ball": 1000}


def test_demo_seed_is_balanced_and_idempotent(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/demo.db", password_time_cost=1)
    first = seed_demo(settings)
    again = seed_demo(settings)  # `make demo` twice must not double anyone's coins
    assert again == first
    engine = make_engine(parse_database_url(settings.database_url))
    gifted = sum(PRICES[gift] * count for _, gift, count in DEMO_GIFTS)
    with engine.connect() as conn:
        assert get_account(conn, f"user:{first.creator_id}:diamonds").balance == gifted
        issued = get_account(conn, "platform:coins_issued").balance
        assert issued == -DEMO_TOPUP_COINS * len(DEMO_VIEWERS)
        ana = get_account(conn, f"user:{first.viewer_ids['ana']}:coins")
        assert ana.balance == DEMO_TOPUP_COINS - 57
        report = verify_ledger(conn)
    engine.dispose()
    assert report.ok, report.problems


async def test_demo_serves_the_live_stream_and_the_statement(tmp_path: Path) -> None:
    settings = with_admin_token(
        Settings(database_url=f"sqlite:///{tmp_path}/demo.db", password_time_cost=1)
    )
    seed = await asyncio.to_thread(seed_demo, settings)  # it runs its own event loop
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://demo") as client,
    ):
        live = (await client.get("/v1/streams")).json()
        login = await client.post(
            "/v1/auth/login", json={"login": "luna", "password": "giftwave-demo"}
        )
        token = login.json()["token"]
        statement = await client.get(
            "/v1/creators/me/statement", headers={"Authorization": f"Bearer {token}"}
        )
        # The demo's operator login opens the admin console's API.
        ops = await client.post(
            "/v1/auth/login", json={"login": "ops", "password": "giftwave-demo"}
        )
        ops_auth = {"Authorization": f"Bearer {ops.json()['token']}"}
        found = await client.get("/v1/admin/users?q=luna", headers=ops_auth)
    assert [s["id"] for s in live] == [seed.stream_id]
    assert statement.status_code == 200, statement.text
    gifted = sum(PRICES[gift] * count for _, gift, count in DEMO_GIFTS)
    assert statement.json()["totals"]["diamonds"] == gifted
    assert ops.json()["user"]["role"] == "admin"
    assert found.status_code == 200, found.text
    assert [u["id"] for u in found.json()] == [seed.creator_id]
