"""The fraud and abuse rules through the real app, on SQLite and PostgreSQL: each rule raises
one flag with its evidence however often the engine runs (and on however many followers), a
flagged creator's payout waits for a person, card testing blocks top-ups with a
``topups_blocked`` problem and its Retry-After, a flagged viewer is held to the lower
top-up cap. The engine runs by hand here (``risk_interval_s=0``) so each step is exact."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from economy_client import (
    AppFactory,
    Person,
    assert_problem,
    economy_app,
    make_admin,
    register,
    sandbox,
)
from sqlalchemy import select
from test_economy_security import anonymous

from giftwave.api.state import app_services
from giftwave.db.tables import risk_flags
from giftwave.economy.risk_follower import CardTestingScan, RiskFollower
from giftwave.economy.services import risk_rules_of

__all__ = ["economy_app"]

OFF = {"risk_interval_s": 0}
_keys = itertools.count(1)
POLICY_ON = {
    **OFF,
    "payout_min_cents": 50,
    "payout_auto_approve_below_cents": 100_000,
    "payout_auto_approve_min_history_days": 0,
    "payout_auto_approve_quiet_days": 0,
}


def services(client: httpx.AsyncClient) -> Any:
    return app_services(client.app)  # type: ignore[attr-defined]


def run_rules(client: httpx.AsyncClient, followers: int = 1) -> int:
    """The engine's round, on ``followers`` instances at once (as on that many nodes)."""
    economy = services(client)
    rules = risk_rules_of(economy.settings)
    raised = 0
    for _ in range(followers):
        follower = RiskFollower(economy.db, rules)
        follower.catch_up()
        raised += follower.flags_raised + CardTestingScan(economy.db, rules).run_once()
    return raised


def flags(client: httpx.AsyncClient, rule: str) -> list[Any]:
    with services(client).db.connect() as conn:
        return list(
            conn.execute(
                select(risk_flags).where(risk_flags.c.rule == rule).order_by(risk_flags.c.id)
            )
        )


async def ring(client: httpx.AsyncClient, creator: Person, accounts: int = 5) -> list[Person]:
    """Fresh accounts that buy coins and give them all to one creator at once."""
    stream = await creator.go_live()
    members = []
    for _ in range(accounts):
        member = await register(client)
        await member.buy(700)
        assert (await member.gift(stream, "money_gun")).status_code == 201
        members.append(member)
    return members


async def order(person: Person, coins: int = 70) -> dict[str, Any]:
    """A new order for a package; its body, with the HTTP status as ``http``."""
    packages = (await person.client.get("/v1/coin-packages")).json()
    package = next(p for p in packages if p["coins"] == coins)
    r = await person.post(
        "/v1/topups", {"package_id": package["id"], "idempotency_key": f"o{next(_keys)}"}
    )
    return {**r.json(), "http": r.status_code}


async def test_a_laundering_funnel_is_one_flag_and_its_payout_waits(
    economy_app: AppFactory,
) -> None:
    async with economy_app(**POLICY_ON) as client:
        creator = await register(client, "creator")
        members = await ring(client, creator)
        # Two followers, as on two nodes, each run twice: one flag, and each flag raised
        # (the ring's shared sandbox card raises its own) counted once.
        raised = run_rules(client, followers=2)
        assert run_rules(client) == 0
        with services(client).db.connect() as conn:
            assert raised == len(conn.execute(select(risk_flags.c.id)).all()) > 1
        (flag,) = flags(client, "funnel")
        assert (flag.user_id, flag.state) == (creator.id, "open")
        evidence = orjson.loads(flag.evidence)
        assert sorted(evidence["users"]) == sorted(m.id for m in members)
        assert evidence["accounts"] == 5
        assert len(evidence["gifts"]) == 5
        assert (flag.severity, evidence["payouts"]) == ("medium", [])
        # The policy would approve this payout at once; the flag sends it to a person.
        r = await creator.post("/v1/payouts", {"diamonds": 500, "idempotency_key": "cash"})
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "pending"
        run_rules(client, followers=2)
        # The cash-out step: the same flag turns high and names the payout.
        (cashed,) = flags(client, "funnel")
        assert (cashed.id, cashed.severity) == (flag.id, "high")
        assert orjson.loads(cashed.evidence)["payouts"] == [r.json()["id"]]
        # The payout came at once after the gifts: a fast cycle, flagged by its payout.
        (cycle,) = flags(client, "fast_cycle")
        assert cycle.user_id == creator.id


async def test_honest_fans_are_not_a_funnel(economy_app: AppFactory) -> None:
    async with economy_app(**POLICY_ON) as client:
        creator = await register(client, "creator")
        await ring(client, creator, accounts=4)  # under the threshold of 5
        run_rules(client)
        assert flags(client, "funnel") == []
        r = await creator.post("/v1/payouts", {"diamonds": 500, "idempotency_key": "cash"})
        assert r.json()["status"] == "approved", r.text


async def test_card_testing_blocks_top_ups_with_a_retry_after(economy_app: AppFactory) -> None:
    async with economy_app(**OFF, risk_card_testing_failures=3) as client:
        tester = await register(client)
        for _ in range(3):
            placed = await order(tester)
            assert placed["http"] == 201
            await sandbox(client, placed, "decline", card="4000000000000002")
        run_rules(client)
        (flag,) = flags(client, "card_testing")
        assert flag.user_id == tester.id
        run_rules(client)
        assert len(flags(client, "card_testing")) == 1
        r = await tester.post("/v1/topups", {"coins": 700, "idempotency_key": "again"})
        body = assert_problem(r, 429, "topups_blocked")
        assert 0 < int(r.headers["Retry-After"]) <= 6 * 3600, body
        # The tester's new account, from the same address, is blocked at its first order.
        newcomer = await register(client)
        r = await newcomer.post("/v1/topups", {"coins": 700, "idempotency_key": "fresh"})
        assert_problem(r, 429, "topups_blocked")
        # Someone else, from another address, buys as before.
        async with elsewhere(client) as other_client:
            other = await register(other_client)
            await other.buy(70)


@asynccontextmanager
async def elsewhere(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """The same app, reached from another network address (a documentation one: nothing is
    sent anywhere, the address only rides in the ASGI scope)."""
    app = client.app  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 40_000))
    async with httpx.AsyncClient(transport=transport, base_url=client.base_url) as other:
        other.app = app  # type: ignore[attr-defined]
        yield other


async def test_one_card_on_many_accounts_and_the_flagged_cap(economy_app: AppFactory) -> None:
    async with economy_app(**OFF, risk_flagged_topup_coins_per_day=800) as client:
        buyers = [await register(client) for _ in range(3)]
        for buyer in buyers:
            placed = await order(buyer, 700)
            await sandbox(client, placed, "pay", card="5555555555554444")
        run_rules(client)
        assert sorted(f.user_id for f in flags(client, "shared_card")) == sorted(
            b.id for b in buyers
        )
        # Flagged: 700 coins today already, 800 a day at most.
        r = await buyers[0].post("/v1/topups", {"coins": 700, "idempotency_key": "more"})
        assert_problem(r, 403, "topup_limit_reached")
        assert (await order(buyers[0], 70))["http"] == 201  # 770: still under


async def test_the_admin_queue_shows_evidence_and_decides_audited(
    economy_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with economy_app(**OFF, payout_min_cents=50, cookie_secure=False) as client:
        creator, admin = await register(client, "creator"), await make_admin(client)
        members = await ring(client, creator)
        run_rules(client)
        r = await creator.post("/v1/payouts", {"diamonds": 500, "idempotency_key": "cash"})
        payout = r.json()
        queue = (await admin.get("/v1/admin/risk")).json()
        funnel_view = next(v for v in queue if v["flag"]["rule"] == "funnel")
        flag_id = funnel_view["flag"]["id"]
        assert funnel_view["user"]["id"] == creator.id
        assert sorted(u["id"] for u in funnel_view["users"]) == sorted(m.id for m in members)
        assert len(funnel_view["gifts"]) == 5
        assert [p["id"] for p in funnel_view["payouts"]] == [payout["id"]]
        assert (await admin.get(f"/v1/admin/risk/{flag_id}")).json() == funnel_view

        # Who may look and decide: nobody else.
        viewer = members[0]
        async with anonymous(client) as stranger:
            assert_problem(await stranger.get("/v1/admin/risk"), 401, "unauthorized")
            r = await stranger.post(f"/v1/admin/risk/{flag_id}/decision", json={"decision": "hold"})
            assert_problem(r, 401, "unauthorized")
        assert_problem(await viewer.get("/v1/admin/risk"), 403, "admin_required")
        r = await creator.post(f"/v1/admin/risk/{flag_id}/decision", json={"decision": "clear"})
        assert_problem(r, 403, "admin_required")
        # An admin's own browser session still needs the CSRF header, as every admin POST.
        async with anonymous(client) as browser:
            r = await browser.post(
                "/v1/auth/login",
                json={"login": admin.user["handle"], "password": "correct horse battery"},
            )
            csrf = r.json()["csrf_token"]
            r = await browser.post(f"/v1/admin/risk/{flag_id}/decision", json={"decision": "hold"})
            assert_problem(r, 403, "csrf_failed")
            r = await browser.post(
                f"/v1/admin/risk/{flag_id}/decision",
                json={"decision": "hold"},
                headers={"X-CSRF-Token": csrf},
            )
            assert r.status_code == 200, r.text
            assert r.json()["flag"]["state"] == "held"
        # Bad input, unknown ids.
        for body in (
            {"decision": "approve"},
            {"decision": "hold", "note": "x" * 501},
            {"decision": "hold", "extra": 1},
            {},
        ):
            r = await admin.post(f"/v1/admin/risk/{flag_id}/decision", body)
            assert_problem(r, 422, "invalid_request")
        for bad in ("999999", "0", "-1", "abc", str(2**63)):
            r = await admin.post(f"/v1/admin/risk/{bad}/decision", {"decision": "hold"})
            assert r.status_code in (404, 422), r.text
        assert_problem(await admin.get("/v1/admin/risk/999999"), 404, "risk_flag_not_found")
        assert_problem(await admin.get("/v1/admin/risk?limit=100000"), 422, "invalid_request")

        # Held: the payout still waits. Freeze: the creator can neither gift nor buy.
        assert (await creator.get(f"/v1/payouts/{payout['id']}")).json()["status"] == "pending"
        r = await admin.post(f"/v1/admin/risk/{flag_id}/decision", {"decision": "freeze"})
        assert r.json()["flag"]["state"] == "frozen"
        r = await creator.post("/v1/topups", {"coins": 700, "idempotency_key": "frozen"})
        assert_problem(r, 403, "account_frozen")
        # Clear: closed, unfrozen, and a cleared flag takes no further decision.
        r = await admin.post(f"/v1/admin/risk/{flag_id}/decision", {"decision": "clear"})
        assert r.json()["flag"]["state"] == "cleared"
        r = await admin.post(f"/v1/admin/risk/{flag_id}/decision", {"decision": "hold"})
        assert_problem(r, 409, "risk_flag_closed")
        r = await creator.post("/v1/topups", {"coins": 700, "idempotency_key": "thawed"})
        assert r.status_code == 201, r.text
        cleared = (await admin.get("/v1/admin/risk", params={"state": "cleared"})).json()
        assert flag_id in [v["flag"]["id"] for v in cleared]
    decided = [r for r in caplog.records if r.getMessage() == "audit.risk_decided"]
    assert [r.audit["decision"] for r in decided] == ["hold", "freeze", "clear"]  # type: ignore[attr-defined]


async def refund_after_gifting(client: httpx.AsyncClient) -> Person:
    """A viewer who buys coins, gifts them, and has the payment refunded the same hour."""
    creator = await register(client, "creator")
    stream = await creator.go_live()
    viewer = await register(client)
    placed = await viewer.buy(700)
    assert (await viewer.gift(stream, "money_gun")).status_code == 201
    await sandbox(client, placed, "refund")
    return viewer


async def test_a_refund_after_gifting_is_evidence_only_by_default(
    economy_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with economy_app(**OFF) as client:
        viewer = await refund_after_gifting(client)
        run_rules(client)
        run_rules(client)
        assert flags(client, "refund_after_gift") == []
    seen = [r for r in caplog.records if r.getMessage() == "audit.risk_evidence"]
    assert [(r.audit["rule"], r.audit["user_id"]) for r in seen] == [  # type: ignore[attr-defined]
        ("refund_after_gift", viewer.id)
    ]


async def test_the_refund_rule_follows_the_refunded_coins_and_counts_disputes(
    economy_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A regular gifter refunds a top-up whose coins are still on the balance (the gift after
    it was paid with the one before): nothing gifted is clawed back, no evidence. A viewer who
    disputes a top-up after gifting its coins is the same pattern as a refund: evidence."""
    caplog.set_level(logging.INFO)
    async with economy_app(**OFF) as client:
        creator = await register(client, "creator")
        stream = await creator.go_live()
        regular = await register(client)
        await regular.buy(700)
        unspent = await regular.buy(700)
        assert (await regular.gift(stream, "money_gun")).status_code == 201  # 900 left
        await sandbox(client, unspent, "refund")
        disputer = await register(client)
        disputed = await disputer.buy(700)
        assert (await disputer.gift(stream, "money_gun")).status_code == 201
        await sandbox(client, disputed, "dispute")
        run_rules(client)
        assert flags(client, "refund_after_gift") == []
    seen = [r for r in caplog.records if r.getMessage() == "audit.risk_evidence"]
    assert [
        (r.audit["user_id"], r.audit["cause"], r.audit["gifted_coins"], r.audit["unpaid_coins"])
        for r in seen
    ] == [  # type: ignore[attr-defined]
        (disputer.id, "chargeback", 500, 500)
    ]


async def test_a_refund_after_gifting_flags_when_the_operator_asks(
    economy_app: AppFactory,
) -> None:
    async with economy_app(**OFF, risk_refund_after_gift_flags=True) as client:
        viewer = await refund_after_gifting(client)
        run_rules(client)
        (flag,) = flags(client, "refund_after_gift")
        assert (flag.user_id, flag.severity) == (viewer.id, "low")
