"""The payout auto-approval policy through the API, on SQLite and PostgreSQL: a payout within
the policy is approved at its request (and paid, through the sandbox provider), anything else
waits for a person naming why; every decision, the policy's and a person's, is one durable row
the console lists and one audit line; a retried request never decides twice. Off by default."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import httpx
import pytest
from economy_client import (
    ADMIN,
    AppFactory,
    Person,
    assert_problem,
    economy_app,
    make_admin,
    register,
)
from sqlalchemy import func, select, update
from test_economy_payouts import ledger_ok
from test_payouts_provider import PROVIDER, earn, onboard, wait_for

from giftwave.analytics.reports import payout_money
from giftwave.api.state import app_services
from giftwave.clock import now_us
from giftwave.db.tables import gift_sends, payout_decisions
from giftwave.db.urls import DatabaseUrl
from giftwave.economy.payout_policy import US_PER_DAY
from giftwave.economy.risk_flags import close_flag, open_flag

__all__ = ["economy_app"]

# $5.00 and under is approved without a person, for creators who first earned a day ago.
ON = {"payout_min_cents": 50, "payout_auto_approve_below_cents": 500}
ASK = {"diamonds": 500, "idempotency_key": "cash"}  # 500 diamonds: 250 cents


LIVE: dict[str, str] = {}  # a creator's stream (by their token), live since their first gift


def db_of(client: httpx.AsyncClient) -> Any:
    return app_services(client.app).db  # type: ignore[attr-defined]


def decision_rows(client: httpx.AsyncClient) -> int:
    with db_of(client).connect() as conn:
        return int(conn.execute(select(func.count()).select_from(payout_decisions)).scalar_one())


def age_earnings(client: httpx.AsyncClient, creator: Person, days: int) -> None:
    """The creator's gifts as if they had come ``days`` ago."""
    with db_of(client).begin() as conn:
        conn.execute(
            update(gift_sends)
            .where(gift_sends.c.creator_id == creator.id)
            .values(created_at_us=now_us() - days * US_PER_DAY)
        )


async def decisions(admin: Person, payout_id: str) -> list[tuple[str, str, list[str]]]:
    r = await admin.get("/v1/admin/payout-decisions", params={"payout_id": payout_id})
    assert r.status_code == 200, r.text
    return [(d["actor"], d["outcome"], d["reasons"]) for d in r.json()]


async def earn_without_provider(client: httpx.AsyncClient, creator: Person) -> str:
    """500 diamonds from a new viewer's gift in the creator's stream; the gift's send id."""
    viewer = await register(client)
    await viewer.buy(700)
    stream = LIVE.get(creator.auth["Authorization"]) or await creator.go_live()
    LIVE[creator.auth["Authorization"]] = stream
    r = await viewer.gift(stream, "money_gun")
    assert r.status_code == 201, r.text
    return str(r.json()["send_id"])


async def test_a_payout_within_the_policy_is_approved_at_its_request_once(
    economy_app: AppFactory, db_url: DatabaseUrl, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with economy_app(**ON, payout_auto_approve_min_history_days=1) as client:
        creator, admin = await register(client, "creator"), await make_admin(client)
        await earn_without_provider(client, creator)
        age_earnings(client, creator, 2)
        r = await creator.post("/v1/payouts", ASK)
        assert r.status_code == 201, r.text
        payout = r.json()
        assert (payout["status"], payout["amount_minor"]) == ("approved", 250)
        assert payout["reviewed_by"] is None
        assert await decisions(admin, payout["id"]) == [("policy", "approve", ["within_policy"])]
        # The same request again: the same payout, no second decision, nothing moved twice.
        again = await creator.post("/v1/payouts", ASK)
        assert (again.status_code, again.json()["id"]) == (201, payout["id"])
        assert again.json()["status"] == "approved"
        assert decision_rows(client) == 1
        assert (await creator.wallet())["diamonds"] == 0
        # Not in the review queue; listed with its decision among the approved.
        queue = (await admin.get("/v1/admin/payouts")).json()
        assert queue == []
        approved = (await admin.get("/v1/admin/payouts", params={"status": "approved"})).json()
        assert approved[0]["decisions"][0]["reasons"] == ["within_policy"]
        # Paid by hand (no provider): what reached the creator, in US cents, without fees.
        with db_of(client).connect() as conn:
            assert [tuple(asdict(m).values()) for m in payout_money(conn)] == [
                ("USD", 1, 250, 0, 250)
            ]
    decided = [r for r in caplog.records if r.getMessage() == "audit.payout_decided"]
    assert len(decided) == 1
    ledger_ok(db_url)


async def test_anything_else_waits_for_a_person_naming_why(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app(**ON, payout_auto_approve_min_history_days=30) as client:
        creator, admin = await register(client, "creator"), await make_admin(client)
        await earn_without_provider(client, creator)
        age_earnings(client, creator, 2)  # two days of history, thirty asked
        with db_of(client).begin() as conn:
            flag = open_flag(conn, creator.id, "chargebacks", "three this week")
        r = await creator.post("/v1/payouts", ASK)
        assert (r.status_code, r.json()["status"]) == (201, "pending")
        payout_id = r.json()["id"]
        assert await decisions(admin, payout_id) == [
            ("policy", "review", ["history_too_short", "open_risk_flag"])
        ]
        # The queue shows why it waits; a person approves, which is recorded beside it.
        queue = (await admin.get("/v1/admin/payouts")).json()
        assert [p["id"] for p in queue] == [payout_id]
        assert queue[0]["decisions"][0]["reasons"] == ["history_too_short", "open_risk_flag"]
        r = await admin.post(f"/v1/admin/payouts/{payout_id}/approve", {"note": "known creator"})
        assert (r.status_code, r.json()["status"]) == (200, "approved")
        r = await admin.post(f"/v1/admin/payouts/{payout_id}/approve")  # a second click
        assert r.status_code == 200, r.text
        r = await admin.get("/v1/admin/payout-decisions", params={"payout_id": payout_id})
        log = r.json()
        assert [(d["actor"], d["outcome"], d["reviewer_id"], d["note"]) for d in log] == [
            ("admin", "approve", admin.id, "known creator"),
            ("policy", "review", None, None),
        ]

        # With the flag closed and the history long enough, the next one is approved at once.
        with db_of(client).begin() as conn:
            assert close_flag(conn, flag)
            assert not close_flag(conn, flag)
        await earn_without_provider(client, creator)
        age_earnings(client, creator, 31)
        r = await creator.post("/v1/payouts", {**ASK, "idempotency_key": "second"})
        assert (r.status_code, r.json()["status"]) == (201, "approved")
    ledger_ok(db_url)


async def test_a_recent_reversal_sends_the_payout_to_review_and_a_rejection_is_recorded(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app(**ON, payout_auto_approve_min_history_days=0) as client:
        creator, admin = await register(client, "creator"), await make_admin(client)
        await earn_without_provider(client, creator)
        reversed_send = await earn_without_provider(client, creator)
        r = await client.post(f"/v1/admin/gift-sends/{reversed_send}/reverse", headers=ADMIN)
        assert r.status_code == 200, r.text
        r = await creator.post("/v1/payouts", ASK)
        assert (r.status_code, r.json()["status"]) == (201, "pending")
        payout_id = r.json()["id"]
        assert await decisions(admin, payout_id) == [("policy", "review", ["recent_reversed_gift"])]
        # The operator's token rejects it: recorded as the operator's.
        r = await client.post(f"/v1/admin/payouts/{payout_id}/reject", headers=ADMIN, json={})
        assert (r.status_code, r.json()["status"]) == (200, "rejected")
        assert (await decisions(admin, payout_id))[0] == (
            "operator",
            "reject",
            ["manual_rejection"],
        )
    ledger_ok(db_url)


async def test_off_by_default_every_payout_waits(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app(payout_min_cents=50) as client:
        creator, admin = await register(client, "creator"), await make_admin(client)
        await earn_without_provider(client, creator)
        r = await creator.post("/v1/payouts", ASK)
        assert (r.status_code, r.json()["status"]) == (201, "pending")
        assert await decisions(admin, r.json()["id"]) == [("policy", "review", ["policy_off"])]
    ledger_ok(db_url)


async def test_auto_approved_through_the_provider_is_paid_and_a_return_counts_after(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    settings = {**PROVIDER, **ON, "payout_auto_approve_min_history_days": 0}
    async with economy_app(**settings) as client:
        creator, admin = await register(client, "creator"), await make_admin(client)
        await earn(client, creator)
        await onboard(client, creator, "approve", bank="fails")
        r = await creator.post("/v1/payouts", ASK)
        assert r.status_code == 201, r.text
        first = await wait_for(creator, r.json()["id"], "returned")
        assert (await creator.wallet())["diamonds"] == 500
        # A payout returned within the quiet window: the next one waits for a person.
        r = await creator.post("/v1/payouts", {**ASK, "idempotency_key": "again"})
        assert (r.status_code, r.json()["status"]) == (201, "pending")
        assert await decisions(admin, r.json()["id"]) == [
            ("policy", "review", ["recent_returned_payout"])
        ]
        assert first["reviewed_by"] is None
    ledger_ok(db_url)


async def test_the_decision_log_is_for_admins_and_refuses_bad_input(
    economy_app: AppFactory,
) -> None:
    async with economy_app(**ON) as client:
        creator = await register(client, "creator")
        r = await client.get("/v1/admin/payout-decisions")
        assert_problem(r, 401, "unauthorized")
        assert_problem(await creator.get("/v1/admin/payout-decisions"), 403, "admin_required")
        for params in ({"payout_id": "x" * 41}, {"limit": 0}, {"limit": 501}, {"payout_id": ""}):
            r = await client.get("/v1/admin/payout-decisions", params=params, headers=ADMIN)
            assert_problem(r, 422, "invalid_request")
        r = await client.get("/v1/admin/payout-decisions", headers=ADMIN)
        assert (r.status_code, r.json()) == (200, [])
