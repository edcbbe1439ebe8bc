"""The demo seed: a believable first evening played through the real API, balanced, and safe
to run twice."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import orjson
import pytest
import websockets
from liveclient import Client
from serverproc import ADMIN_TOKEN, ServerGroup, assert_ledger_verify_clean, giftwave_env
from sqlalchemy import select

from giftwave.api.app import create_app
from giftwave.config import Settings
from giftwave.db.engine import make_engine
from giftwave.db.tables import risk_flags
from giftwave.db.urls import DatabaseUrl, parse_database_url
from giftwave.demo import (
    DEMO_GIFTS,
    DEMO_PASSWORD,
    DEMO_TOPUP_COINS,
    DEMO_VIEWERS,
    demo_settings,
    seed_demo,
    with_admin_token,
)
from giftwave.demo_audience import run_audience
from giftwave.economy.risk_follower import CardTestingScan, RiskFollower
from giftwave.economy.services import risk_rules_of
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
        Settings(
            database_url=f"sqlite:///{tmp_path}/demo.db",
            password_time_cost=1,
            allowed_hosts=["demo"],  # the client's base URL below
        )
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


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_the_simulated_audience_gifts_likes_and_chats_through_a_real_server(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    """The demo's audience acts through the room like people do, buys coins when it runs low,
    and every page of a demo says it is simulated."""
    env = giftwave_env(bare_db_url)
    env.update(GIFTWAVE_PASSWORD_TIME_COST="1", GIFTWAVE_PASSWORD_MEMORY_KIB="8")
    settings = demo_settings(
        Settings(database_url=bare_db_url.url, password_time_cost=1, admin_token=ADMIN_TOKEN)
    )
    seed = await asyncio.to_thread(seed_demo, settings)
    env["GIFTWAVE_DEMO_AUDIENCE"] = orjson.dumps(settings.demo_audience).decode()
    with ServerGroup(tmp_path, env) as servers:
        [server] = servers.start("a")
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            before = await _creator_diamonds(http)
            audience = asyncio.create_task(
                run_audience(
                    server.base_url,
                    seed.stream_id,
                    ("ana", "bodhi"),
                    DEMO_PASSWORD,
                    mean_pause_s=0.05,
                    seed=7,
                )
            )
            ws_url = server.base_url.replace("http", "ws", 1) + f"/v1/streams/{seed.stream_id}/ws"
            async with websockets.connect(ws_url) as ws:
                room = Client(ws)
                await room.until(lambda e: e["type"] == "chat", wait_s=30)
                await room.until(lambda e: e["type"] == "like", wait_s=30)
                await room.until(lambda e: e["type"] == "gift" and e["sender"] == "bodhi", 30)
            audience.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await audience
            assert await _creator_diamonds(http) > before
            page = await http.get(f"/live/{seed.stream_id}")
            assert "ana, bodhi, chen, dara, eli are a simulated audience" in page.text
    assert_ledger_verify_clean(env)


async def _creator_diamonds(http: httpx.AsyncClient) -> int:
    login = await http.post("/v1/auth/login", json={"login": "luna", "password": DEMO_PASSWORD})
    wallet = await http.get(
        "/v1/me/wallet", headers={"Authorization": f"Bearer {login.json()['token']}"}
    )
    return int(wallet.json()["diamonds"])


def test_the_demo_pays_creators_through_the_sandbox_payout_provider() -> None:
    settings = demo_settings(Settings(database_url="sqlite:///demo.db", admin_token=ADMIN_TOKEN))
    assert settings.payout_provider == "sandbox"


def test_the_demo_turns_the_payout_policy_on_unless_the_operator_set_one() -> None:
    settings = demo_settings(Settings(database_url="sqlite:///demo.db", admin_token=ADMIN_TOKEN))
    assert settings.payout_auto_approve_below_cents == 20_000
    assert settings.payout_auto_approve_min_history_days == 0
    own = Settings(
        database_url="sqlite:///demo.db",
        admin_token=ADMIN_TOKEN,
        payout_auto_approve_below_cents=1_000,
    )
    assert demo_settings(own).payout_auto_approve_below_cents == 1_000
    assert demo_settings(own).payout_auto_approve_min_history_days == 30


def test_the_demo_sandbox_charges_payout_fees() -> None:
    settings = demo_settings(Settings(database_url="sqlite:///demo.db", admin_token=ADMIN_TOKEN))
    assert (settings.payout_sandbox_fee_fixed_minor, settings.payout_sandbox_fee_bps) == (25, 25)


def test_the_demo_evening_raises_no_risk_flag(tmp_path: Path) -> None:
    """The fraud rules run in the demo; its own cast (accounts made minutes ago, all gifting
    luna, buying coins at the sandbox) is no laundering funnel and shares no card."""
    settings = demo_settings(
        Settings(database_url=f"sqlite:///{tmp_path}/demo.db", password_time_cost=1)
    )
    assert settings.risk_interval_s > 0  # the engine is on
    seed_demo(settings)
    engine = make_engine(parse_database_url(settings.database_url))
    rules = risk_rules_of(settings)
    RiskFollower(engine, rules).catch_up()
    CardTestingScan(engine, rules).run_once()
    with engine.connect() as conn:
        raised = conn.execute(select(risk_flags.c.rule, risk_flags.c.user_id)).all()
    engine.dispose()
    assert raised == []


def test_the_demo_keeps_the_operators_own_risk_thresholds() -> None:
    settings = demo_settings(Settings(risk_funnel_accounts=7, risk_fast_cycle_s=600))
    assert (settings.risk_funnel_accounts, settings.risk_fast_cycle_s) == (7, 600)
    moved = demo_settings(Settings())
    assert moved.risk_funnel_accounts > len(DEMO_VIEWERS)
    assert moved.risk_fast_cycle_s == 60
