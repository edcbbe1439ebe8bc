"""kill -9 of a real `giftwave serve` in the middle of a renewal sweep, then a restart: every
subscription due is charged exactly once for its period, the creators receive exactly the
rate, and `giftwave ledger verify` is clean (docs/economy.md, "Subscriptions").

A real process's clock cannot be moved, so the periods are ended in the database instead:
after the first periods are paid, every subscription's ``paid_until_us`` is set to a moment
past, as if the month had gone by while the servers were down.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from liveclient import person
from serverproc import (
    ADMIN_TOKEN,
    ServerProcess,
    assert_ledger_verify_clean,
    giftwave_env,
    migrate,
)
from sqlalchemy import func, select, update

from giftwave.clock import now_us
from giftwave.db.engine import make_engine
from giftwave.db.tables import accounts, subscription_periods, subscriptions, transfers
from giftwave.db.urls import DatabaseUrl

CREATORS: Final = 8
VIEWERS: Final = 40
PRICE: Final = 300
GRANT: Final = 10 * CREATORS * PRICE
WAIT_S: Final = 90.0
SCENE_AT_ONCE: Final = 8


def _env(db: DatabaseUrl, sweep_interval_s: float) -> dict[str, str]:
    env = giftwave_env(db)
    env["GIFTWAVE_PASSWORD_TIME_COST"] = "1"
    env["GIFTWAVE_PASSWORD_MEMORY_KIB"] = "8"
    env["GIFTWAVE_SUBSCRIPTION_SWEEP_INTERVAL_S"] = str(sweep_interval_s)
    env["GIFTWAVE_CREATOR_DIAMONDS_PER_100_COINS"] = "70"  # whole diamonds and hundredths
    return env


async def _scene(base_url: str) -> tuple[list[int], list[int]]:
    """Creators with a price, viewers with coins, every viewer subscribed to every creator: a
    few hundred calls, sent SCENE_AT_ONCE at a time (one by one they took most of the test)."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    at_once = asyncio.Semaphore(SCENE_AT_ONCE)
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=30.0) as client:

        async def register(role: str) -> tuple[int, dict[str, str]]:
            async with at_once:
                user_id, token = await person(client, role)
            return user_id, {"Authorization": f"Bearer {token}"}

        async def call(method: str, path: str, headers: dict[str, str], **kw: Any) -> int:
            async with at_once:
                r = await client.request(method, path, headers=headers, **kw)
            assert r.status_code in (200, 201), r.text
            return r.status_code

        async def creator() -> int:
            creator_id, auth = await register("creator")
            await call("PUT", "/v1/me/subscription-price", auth, json={"price_coins": PRICE})
            return creator_id

        creators = list(await asyncio.gather(*(creator() for _ in range(CREATORS))))

        async def viewer() -> int:
            viewer_id, auth = await register("viewer")
            grant = {"coins": GRANT, "idempotency_key": f"grant-{viewer_id}"}
            await call("POST", f"/v1/admin/users/{viewer_id}/coins", admin, json=grant)
            for creator_id in creators:
                subscribed = await call("POST", f"/v1/creators/{creator_id}/subscription", auth)
                assert subscribed == 201
            return viewer_id

        viewers = list(await asyncio.gather(*(viewer() for _ in range(VIEWERS))))
        return creators, viewers


def _charged(db: DatabaseUrl, period: int) -> int:
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(transfers)
                    .where(transfers.c.id.like(f"sub:%:{period}:c"))
                ).scalar_one()
            )
    finally:
        engine.dispose()


# The SQLite run is the long campaign's (`make test-long`); `make test` kills on PostgreSQL, where
# two nodes share the database.
@pytest.mark.parametrize(
    "bare_db_url", ["postgresql", pytest.param("sqlite", marks=pytest.mark.long)], indirect=True
)
def test_each_due_period_charged_once_across_a_sigkill(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    due = CREATORS * VIEWERS
    env = _env(bare_db_url, sweep_interval_s=3600)
    migrate(env)
    log = tmp_path / "servers.log"
    first = ServerProcess("first", env, log)
    first.start()
    try:
        creators, viewers = asyncio.run(_scene(first.base_url))
    finally:
        first.stop()
    assert _charged(bare_db_url, 1) == due

    engine = make_engine(bare_db_url)
    try:
        with engine.begin() as conn:  # the month went by
            past = now_us() - 1
            conn.execute(update(subscriptions).values(paid_until_us=past, next_attempt_us=past))

        sweeping = ServerProcess("sweeping", _env(bare_db_url, sweep_interval_s=0.2), log)
        sweeping.spawn()
        deadline = time.monotonic() + WAIT_S
        while _charged(bare_db_url, 2) == 0:
            assert time.monotonic() < deadline, sweeping.log_tail()
            time.sleep(0.005)
        sweeping.kill()
        at_kill = _charged(bare_db_url, 2)
        print(f"renewals charged when the sweep was killed: {at_kill} of {due}")
        assert 0 < at_kill < due, "the kill landed in the middle of the renewals"
        assert_ledger_verify_clean(env)

        again = ServerProcess("again", _env(bare_db_url, sweep_interval_s=0.2), log)
        again.start()
        try:
            deadline = time.monotonic() + WAIT_S
            while True:
                with engine.connect() as conn:
                    behind = conn.execute(
                        select(func.count())
                        .select_from(subscriptions)
                        .where(subscriptions.c.period != 2)
                    ).scalar_one()
                if behind == 0:
                    break
                assert time.monotonic() < deadline, f"{behind} not renewed"
                time.sleep(0.1)
        finally:
            again.stop()

        assert _charged(bare_db_url, 1) == due
        assert _charged(bare_db_url, 2) == due
        assert _charged(bare_db_url, 3) == 0
        with engine.connect() as conn:
            periods = conn.execute(
                select(func.count()).select_from(subscription_periods)
            ).scalar_one()
            assert periods == 2 * due
            statuses = set(conn.execute(select(subscriptions.c.status)).scalars())
            assert statuses == {"active"}
            balances = dict(
                conn.execute(
                    select(accounts.c.name, accounts.c.credits_posted - accounts.c.debits_posted)
                ).all()
            )
        for viewer_id in viewers:
            assert balances[f"user:{viewer_id}:coins"] == GRANT - 2 * CREATORS * PRICE
        # 70 per 100 coins: 300 coins earn exactly 210 diamonds a period, per subscriber.
        for creator_id in creators:
            assert balances[f"user:{creator_id}:diamonds"] == 2 * VIEWERS * 210
        assert_ledger_verify_clean(env)
    finally:
        engine.dispose()
