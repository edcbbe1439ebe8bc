"""kill -9 between a payout's approval and its transfer, then a fresh server: the sweeper
finishes it exactly once, or returns it when the payee was disabled meanwhile.

1. real servers (below);
2. in one process, on both databases: the state a crash leaves one step earlier, after the
   ledger committed the approval and before the row said ``processing`` (nothing holds a
   process there to be killed, so the test writes the approval's ledger post itself): the
   sweeper finishes the approval and the payout is paid once.

A real `giftwave serve` with the sandbox payout provider; the creator's test bank ``hangs``
(payments/sandbox_payouts.py), so the approval's transfer call is held at the provider with
nothing made, after the ledger posted the payout and the row says ``processing``. While it is
held, the creator picks a bank that pays (or the provider rejects the account), and the server
is killed with SIGKILL. A second server on the same database must, with no one's help, pay the
payout once (one transfer at the sandbox, the diamonds gone once) or return it (no transfer,
the diamonds back once); `giftwave ledger verify` is clean. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from economy_client import ADMIN_TOKEN, FAST, AppFactory, Person, economy_app, make_admin, register
from serverproc import (
    ServerGroup,
    ServerProcess,
    assert_ledger_verify_clean,
    giftwave_env,
    migrate,
    wait_dead,
)
from sqlalchemy import func, select
from test_economy_payouts import ledger_ok
from test_payouts_provider import PROVIDER, earn, onboard

from giftwave.api.state import app_services
from giftwave.db.engine import make_engine
from giftwave.db.tables import payouts, sandbox_payout_transfers, transfers
from giftwave.db.urls import DatabaseUrl
from giftwave.economy.payout_transfers import return_id
from giftwave.economy.payouts import INTERRUPTED_NOTE, POSTED_SUFFIX, pending_id
from giftwave.ledger.model import Transfer, TransferCode, TransferKind

__all__ = ["economy_app"]

HELD_WAIT_S: Final = 30.0
SETTINGS: Final = {
    "GIFTWAVE_ADMIN_TOKEN": ADMIN_TOKEN,
    "GIFTWAVE_PASSWORD_TIME_COST": "1",
    "GIFTWAVE_PASSWORD_MEMORY_KIB": "8",
    "GIFTWAVE_PAYOUT_PROVIDER": "sandbox",
    "GIFTWAVE_PAYOUT_MIN_CENTS": "50",
    "GIFTWAVE_SANDBOX_WEBHOOK_SECRET": str(FAST["sandbox_webhook_secret"]),
    # The fresh server's sweeper looks often, and at a payout as soon as a second has passed.
    "GIFTWAVE_PAYOUT_SWEEP_INTERVAL_S": "0.2",
    "GIFTWAVE_PAYOUT_TRANSFER_RETRY_AFTER_S": "1",
}


@asynccontextmanager
async def talking_to(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    # trust_env=False: no proxy from the environment ever sees this local traffic.
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10, trust_env=False) as c:
        yield c


def row(db_url: DatabaseUrl, payout_id: str) -> dict[str, Any]:
    """The payout's row, the sandbox's transfers for it, and the ledger's return of it."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            found = dict(
                conn.execute(select(payouts).where(payouts.c.id == payout_id)).one()._mapping
            )
            found["sandbox_transfers"] = conn.execute(
                select(func.count())
                .select_from(sandbox_payout_transfers)
                .where(sandbox_payout_transfers.c.idempotency_key == payout_id)
            ).scalar_one()
            found["returns"] = conn.execute(
                select(func.count())
                .select_from(transfers)
                .where(transfers.c.id == return_id(payout_id))
            ).scalar_one()
    finally:
        engine.dispose()
    return found


async def ended_as(creator: Person, payout_id: str, status: str) -> dict[str, Any]:
    """Until the payout is ``status`` (bounded: the fresh server starts its sweeper first)."""
    deadline = time.monotonic() + HELD_WAIT_S
    while True:
        r = await creator.get(f"/v1/payouts/{payout_id}")
        assert r.status_code == 200, r.text
        if r.json()["status"] == status:
            return dict(r.json())
        assert time.monotonic() < deadline, f"payout {payout_id} is {r.json()['status']}"
        await asyncio.sleep(0.05)


async def held(server: ServerProcess, payout_id: str) -> None:
    """Until the server's transfer call for the payout is held at the sandbox (bounded)."""
    deadline = time.monotonic() + HELD_WAIT_S
    while f"the transfer of payout {payout_id} is held" not in server.log_text():
        assert time.monotonic() < deadline, server.log_tail()
        await asyncio.sleep(0.05)


# The disabled case (the payee switched off while the server was down) is the long campaign's
# (`make test-long`); `make test` kills a real server mid-payout in the paid case on both databases.
@pytest.mark.parametrize(
    "disabled", [False, pytest.param(True, marks=pytest.mark.long)], ids=["paid", "disabled"]
)
async def test_a_kill_between_approval_and_transfer_is_finished_once_by_the_sweeper(
    db_url: DatabaseUrl, tmp_path: Path, disabled: bool
) -> None:
    env = giftwave_env(db_url) | SETTINGS
    migrate(env)
    with ServerGroup(tmp_path, env) as servers:
        [first] = servers.start("first")
        async with talking_to(first) as client:
            creator = await register(client, "creator")
            await onboard(client, creator, "approve", bank="hangs")
            await earn(client, creator)
            admin = await make_admin(client)
            r = await creator.post("/v1/payouts", {"diamonds": 500, "idempotency_key": "cash"})
            assert r.status_code == 201, r.text
            payout_id: str = r.json()["id"]
            approving = asyncio.create_task(admin.post(f"/v1/admin/payouts/{payout_id}/approve"))
            await held(first, payout_id)
            # While the call is held: the outage ends (another test bank), or the provider
            # closes the account, which giftwave hears of by webhook.
            action = "reject" if disabled else "approve"
            await onboard(client, creator, action, bank="pays")
            assert (await creator.wallet())["diamonds"] == 0
            first.kill()
            wait_dead(first.pid)
            with pytest.raises(httpx.TransportError):
                await approving  # never answered: the server died holding it

        crashed = row(db_url, payout_id)
        assert (crashed["status"], crashed["provider_transfer_id"]) == ("processing", None)
        assert (crashed["transfer_attempts"], crashed["sandbox_transfers"]) == (1, 0)

        [fresh] = servers.start("fresh")
        async with talking_to(fresh) as client:
            again = Person(client, creator.user, creator.auth["Authorization"].split()[1])
            if disabled:
                payout = await ended_as(again, payout_id, "returned")
                assert payout["provider_reason"] == "payee_not_ready:disabled"
                assert (await again.wallet())["diamonds"] == 500
            else:
                payout = await ended_as(again, payout_id, "paid")
                assert payout["provider_transfer_id"]
                assert (await again.wallet())["diamonds"] == 0
            # An admin's second click, and more sweeps, change nothing.
            boss = Person(client, admin.user, admin.auth["Authorization"].split()[1])
            r = await boss.post(f"/v1/admin/payouts/{payout_id}/approve")
            assert r.status_code in (200, 409), r.text
            await asyncio.sleep(1.0)
            assert (await again.wallet())["diamonds"] == (500 if disabled else 0)

        ended = row(db_url, payout_id)
        assert ended["status"] == ("returned" if disabled else "paid")
        assert ended["sandbox_transfers"] == (0 if disabled else 1)
        assert ended["returns"] == (1 if disabled else 0)
        fresh.stop()
    assert_ledger_verify_clean(env)


async def test_an_approval_the_ledger_took_but_the_row_never_heard_of_is_paid_once(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    sweep = {"payout_sweep_interval_s": 0.05, "payout_transfer_retry_after_s": 1}
    async with economy_app(**PROVIDER, **sweep) as client:
        creator = await register(client, "creator")
        await onboard(client, creator, "approve")
        await earn(client, creator)
        r = await creator.post("/v1/payouts", {"diamonds": 500, "idempotency_key": "cash"})
        assert r.status_code == 201, r.text
        payout_id: str = r.json()["id"]
        assert r.json()["status"] == "pending"
        # The approval's ledger post, as Payouts._approve submits it; the process "dies"
        # before it records the row.
        reservation = pending_id(payout_id)
        post = Transfer(
            reservation + POSTED_SUFFIX,
            0,
            0,
            500,
            TransferCode.PAYOUT,
            kind=TransferKind.POST_PENDING,
            pending_id=reservation,
        )
        (outcome,) = await app_services(client.app).engine.submit([post])  # type: ignore[attr-defined]
        assert outcome.succeeded

        payout = await ended_as(creator, payout_id, "paid")
        assert (payout["amount_minor"], payout["provider"]) == (250, "sandbox")
        assert (await creator.wallet())["diamonds"] == 0
        await asyncio.sleep(0.3)  # more sweeps change nothing
    ended = row(db_url, payout_id)
    assert (ended["status"], ended["note"], ended["reviewed_by"]) == (
        "paid",
        INTERRUPTED_NOTE,
        None,
    )
    assert (ended["sandbox_transfers"], ended["transfer_attempts"], ended["returns"]) == (1, 1, 0)
    ledger_ok(db_url)
