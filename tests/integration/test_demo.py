"""The demo seed: believable, balanced, and safe to run twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

from giftwave.config import Settings
from giftwave.db.engine import make_engine
from giftwave.db.urls import parse_database_url
from giftwave.demo import DEMO_GIFTS, DEMO_VIEWERS, seed_demo
from giftwave.ledger.accounts import get_account
from giftwave.ledger.verify import verify_ledger


def test_demo_seed_is_balanced_and_idempotent(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/demo.db")
    seed_demo(settings)
    seed_demo(settings)  # `make demo` twice must not double anyone's coins
    engine = make_engine(parse_database_url(settings.database_url))
    gifted = sum(price * count for _, price, count in DEMO_GIFTS)
    with engine.connect() as conn:
        assert get_account(conn, "creator:luna:diamonds").balance == gifted
        assert get_account(conn, "platform:coins_issued").balance == -7000 * len(DEMO_VIEWERS)
        assert get_account(conn, "viewer:ana:coins").balance == 7000 - 57
        report = verify_ledger(conn)
    engine.dispose()
    assert report.ok, report.problems


async def test_demo_serves_the_seeded_ledger_with_its_token(tmp_path: Path) -> None:
    import httpx

    from giftwave.api.app import create_app
    from giftwave.demo import with_admin_token

    settings = with_admin_token(Settings(database_url=f"sqlite:///{tmp_path}/demo.db"))
    assert settings.admin_token is not None
    await asyncio.to_thread(seed_demo, settings)  # it runs its own event loop
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://demo") as client,
    ):
        answer = await client.get("/v1/ledger/accounts/creator:luna:diamonds", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["balance"] == sum(price * count for _, price, count in DEMO_GIFTS)
