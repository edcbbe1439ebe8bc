"""A crash between a payout's request and its reservation mark, in one process, on SQLite and
PostgreSQL: a crash point injected into the request (a ``BaseException`` nothing catches, as a
kill leaves it) stops it after the row and the policy's decision were written, either before
the ledger made the reservation or after, before the row said ``pending``. The sweeper of
processing payouts (economy/payouts.py ``finish_requests``) finishes it exactly once: the
diamonds reserved once, the row ``pending`` once, one ``audit.payout_requested``; or undoes it
(``failed``) when the diamonds were spent meanwhile. A retry of the request then answers the
same payout and reserves nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import pytest
from economy_client import AppFactory, Person, economy_app, register
from sqlalchemy import func, select
from test_economy_payouts import ledger_ok
from test_payouts_provider import PROVIDER, earn, onboard

from giftwave.api.identity import today
from giftwave.api.state import app_services
from giftwave.db.tables import payouts, transfers
from giftwave.db.urls import DatabaseUrl
from giftwave.economy.payouts import PayoutStatus, pending_id
from giftwave.identity.users import find_user

__all__ = ["economy_app"]

SWEEP = {"payout_sweep_interval_s": 0.05, "payout_transfer_retry_after_s": 1}
ASK = {"diamonds": 500, "idempotency_key": "cash"}


class Crash(BaseException):
    """The process dies here: nothing after runs, nothing catches it."""


def economy(client: httpx.AsyncClient) -> Any:
    return app_services(client.app).economy  # type: ignore[attr-defined]


async def crashed_request(
    client: httpx.AsyncClient,
    creator: Person,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> str:
    """The creator's payout request, crashed at ``where``: "before" the ledger's reservation,
    or "after" it, before the row is marked. The payout's id."""
    payouts_service = economy(client).payouts
    if where == "before":
        real = payouts_service._reserve

        async def dies(*args: Any) -> Any:
            raise Crash

        monkeypatch.setattr(payouts_service, "_reserve", dies)
    else:
        real = payouts_service._set

        def dies(payout_id: str, status: PayoutStatus, *args: Any) -> Any:
            if status is PayoutStatus.PENDING:
                raise Crash
            return real(payout_id, status, *args)

        monkeypatch.setattr(payouts_service, "_set", dies)
    with economy(client).db.connect() as conn:
        user = find_user(conn, creator.id)
    with pytest.raises(Crash):
        await payouts_service.request(user, ASK["diamonds"], ASK["idempotency_key"], today())
    monkeypatch.setattr(payouts_service, "_reserve" if where == "before" else "_set", real)
    with economy(client).db.connect() as conn:
        (payout_id, status) = conn.execute(
            select(payouts.c.id, payouts.c.status).where(payouts.c.creator_id == creator.id)
        ).one()
    assert status == "requested"
    return str(payout_id)


def reservations(client: httpx.AsyncClient, payout_id: str) -> int:
    with economy(client).db.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(transfers)
                .where(transfers.c.id == pending_id(payout_id))
            ).scalar_one()
        )


async def settled(creator: Person, payout_id: str) -> dict[str, Any]:
    """The payout once the sweeper moved it on from ``requested`` (bounded)."""
    deadline = time.monotonic() + 10
    while True:
        r = await creator.get(f"/v1/payouts/{payout_id}")
        assert r.status_code == 200, r.text
        if r.json()["status"] != "requested" or time.monotonic() > deadline:
            await asyncio.sleep(0.3)  # more sweeps: nothing changes again
            return dict((await creator.get(f"/v1/payouts/{payout_id}")).json())
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("where", ["before", "after"])
async def test_a_crash_between_request_and_mark_is_finished_once(
    economy_app: AppFactory,
    db_url: DatabaseUrl,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    caplog.set_level(logging.INFO)
    async with economy_app(**PROVIDER, **SWEEP) as client:
        creator = await register(client, "creator")
        await onboard(client, creator, "approve")
        await earn(client, creator)
        payout_id = await crashed_request(client, creator, monkeypatch, where)
        assert reservations(client, payout_id) == (1 if where == "after" else 0)

        payout = await settled(creator, payout_id)
        assert (payout["status"], payout["diamonds"]) == ("pending", 500)
        assert reservations(client, payout_id) == 1
        wallet = await creator.wallet()
        assert (wallet["diamonds"], wallet["diamonds_reserved"]) == (0, 500)
        # The creator's retry: the same payout, nothing reserved twice.
        r = await creator.post("/v1/payouts", ASK)
        assert (r.status_code, r.json()["id"], r.json()["status"]) == (201, payout_id, "pending")
        assert reservations(client, payout_id) == 1
        assert (await creator.wallet())["diamonds_reserved"] == 500
    requested = [r for r in caplog.records if r.getMessage() == "audit.payout_requested"]
    assert len(requested) == 1
    ledger_ok(db_url)


async def test_a_request_whose_diamonds_were_spent_meanwhile_is_undone_once(
    economy_app: AppFactory, db_url: DatabaseUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with economy_app(**PROVIDER, **SWEEP) as client:
        creator = await register(client, "creator")
        await onboard(client, creator, "approve")
        await earn(client, creator)
        stuck = await crashed_request(client, creator, monkeypatch, "before")
        # Meanwhile the creator asks again under another key: those diamonds are reserved.
        r = await creator.post("/v1/payouts", {"diamonds": 500, "idempotency_key": "again"})
        assert (r.status_code, r.json()["status"]) == (201, "pending"), r.text

        payout = await settled(creator, stuck)
        assert (payout["status"], payout["note"]) == ("failed", "insufficient_funds")
        assert reservations(client, stuck) == 0
        wallet = await creator.wallet()
        assert (wallet["diamonds"], wallet["diamonds_reserved"]) == (0, 500)
    ledger_ok(db_url)
