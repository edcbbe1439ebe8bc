"""The admin console's read routes, on SQLite and PostgreSQL: finding users, the gifts an
operator may reverse, top-up orders, the whole catalogue and every coin package, and the
ledger check with the economy's totals. Bad input is problem+json and reads nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from economy_client import ADMIN, AppFactory, assert_problem, economy_app, make_admin, register
from sqlalchemy import update

from giftwave.api.state import app_services
from giftwave.db.tables import accounts

__all__ = ["economy_app"]


async def admin_get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    r = await client.get(path, params=params, headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


async def test_users_are_found_by_handle_email_or_id(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        people = [await register(client) for _ in range(3)]
        creator = await register(client, "creator")
        target = people[1]

        found = await admin_get(client, "/v1/admin/users", q=target.user["handle"])
        assert found[0]["id"] == target.id  # the exact match first
        assert found[0].keys() >= {"handle", "email", "role", "status", "age_verified"}
        by_email = await admin_get(client, "/v1/admin/users", q=target.user["email"].upper())
        assert [u["id"] for u in by_email] == [target.id]
        by_id = await admin_get(client, "/v1/admin/users", q=str(creator.id))
        assert by_id[0]["id"] == creator.id
        viewers = await admin_get(client, "/v1/admin/users", q="view")
        assert {u["id"] for u in viewers} >= {p.id for p in people}
        assert creator.id not in {u["id"] for u in viewers}
        assert len(await admin_get(client, "/v1/admin/users", q="view", limit=2)) == 2
        # '_' and '%' are characters to find, not LIKE patterns.
        assert await admin_get(client, "/v1/admin/users", q="v_ew") == []
        assert await admin_get(client, "/v1/admin/users", q="%") == []

        # A frozen user shows as blocked, and cannot gift.
        r = await client.patch(
            f"/v1/admin/users/{target.id}", json={"status": "blocked"}, headers=ADMIN
        )
        assert r.status_code == 200, r.text
        [row] = await admin_get(client, "/v1/admin/users", q=target.user["email"])
        assert (row["status"], row["can_gift"]) == ("blocked", False)

        for params, code in (
            ({}, "invalid_request"),
            ({"q": ""}, "invalid_request"),
            ({"q": "   "}, "empty_query"),
            ({"q": "x" * 255}, "invalid_request"),
            ({"q": "ab\x00c"}, "invalid_request"),
            ({"q": "a", "limit": 0}, "invalid_request"),
            ({"q": "a", "limit": 101}, "invalid_request"),
            ({"q": "a", "limit": "many"}, "invalid_request"),
        ):
            r = await client.get("/v1/admin/users", params=params, headers=ADMIN)
            assert_problem(r, 422, code)
        # Not an admin: refused, whatever the query.
        assert_problem(await people[0].get("/v1/admin/users?q=view"), 403, "admin_required")


async def test_gift_sends_list_committed_gifts_and_their_reversal(
    economy_app: AppFactory,
) -> None:
    async with economy_app() as client:
        viewer, other = await register(client), await register(client)
        luna, sol = await register(client, "creator"), await register(client, "creator")
        admin = await make_admin(client)
        await viewer.buy(700)
        await other.buy(70)
        luna_stream, sol_stream = await luna.go_live(), await sol.go_live()
        first = (await viewer.gift(luna_stream, "rose", count=3)).json()
        second = (await viewer.gift(sol_stream, "money_gun")).json()
        third = (await other.gift(luna_stream, "rose")).json()
        assert (await other.gift(luna_stream, "money_gun")).status_code == 402  # not committed

        everything = await admin_get(client, "/v1/admin/gift-sends")
        assert [g["send_id"] for g in everything] == [
            third["send_id"],
            second["send_id"],
            first["send_id"],
        ]
        newest = everything[0]
        assert newest == {
            "send_id": third["send_id"],
            "stream_id": luna_stream,
            "sender_id": other.id,
            "sender_handle": other.user["handle"],
            "creator_id": luna.id,
            "creator_handle": luna.user["handle"],
            "gift_id": "rose",
            "gift_version": 1,
            "count": 1,
            "coins": 1,
            "diamonds": 1,
            "reversed": False,
            "created_at_us": newest["created_at_us"],
        }
        on_luna = await admin_get(client, "/v1/admin/gift-sends", stream_id=luna_stream)
        assert [g["send_id"] for g in on_luna] == [third["send_id"], first["send_id"]]
        by_viewer = await admin_get(client, "/v1/admin/gift-sends", user_id=viewer.id)
        assert [g["send_id"] for g in by_viewer] == [second["send_id"], first["send_id"]]
        to_sol = await admin_get(client, "/v1/admin/gift-sends", user_id=sol.id)
        assert [g["send_id"] for g in to_sol] == [second["send_id"]]
        both = await admin_get(
            client, "/v1/admin/gift-sends", stream_id=luna_stream, user_id=viewer.id
        )
        assert [g["send_id"] for g in both] == [first["send_id"]]
        assert len(await admin_get(client, "/v1/admin/gift-sends", limit=1)) == 1

        r = await admin.post(f"/v1/admin/gift-sends/{second['send_id']}/reverse")
        assert r.status_code == 200, r.text
        listed = await admin_get(client, "/v1/admin/gift-sends", user_id=viewer.id)
        assert [g["reversed"] for g in listed] == [True, False]
        assert await viewer.coins() == 700 - 3  # the Money Gun's 500 came back

        for params in (
            {"stream_id": "nope"},
            {"stream_id": "st_" + "x" * 30},
            {"stream_id": "st_a\x00"},
            {"user_id": 0},
            {"user_id": 2**63},
            {"user_id": "ana"},
            {"limit": 0},
            {"limit": 201},
        ):
            r = await client.get("/v1/admin/gift-sends", params=params, headers=ADMIN)
            assert_problem(r, 422, "invalid_request")
        assert_problem(await viewer.get("/v1/admin/gift-sends"), 403, "admin_required")


async def test_topups_catalogue_and_packages_as_the_operator_sees_them(
    economy_app: AppFactory,
) -> None:
    async with economy_app() as client:
        ana, ben = await register(client), await register(client)
        paid = await ana.buy(700)
        r = await ben.post("/v1/topups", {"coins": 100, "idempotency_key": "open-one"})
        assert r.status_code == 201, r.text
        open_order = r.json()

        orders = await admin_get(client, "/v1/admin/topups")
        assert [(o["id"], o["status"], o["user_id"]) for o in orders] == [
            (open_order["id"], "open", ben.id),
            (paid["id"], "paid", ana.id),
        ]
        only_ana = await admin_get(client, "/v1/admin/topups", user_id=ana.id)
        assert [o["id"] for o in only_ana] == [paid["id"]]
        for params in ({"user_id": 0}, {"limit": 0}, {"limit": 201}):
            r = await client.get("/v1/admin/topups", params=params, headers=ADMIN)
            assert_problem(r, 422, "invalid_request")

        # Off sale: gone from the shop's catalogue, still in the operator's, at a new version.
        r = await client.put("/v1/admin/gifts/swan", json={"on_sale": False}, headers=ADMIN)
        assert r.status_code == 200, r.text
        assert "swan" not in {g["gift_id"] for g in (await client.get("/v1/gifts")).json()}
        gifts = {g["gift_id"]: g for g in await admin_get(client, "/v1/admin/gifts")}
        assert (gifts["swan"]["version"], gifts["swan"]["on_sale"]) == (2, False)
        assert gifts["rose"]["sort_order"] < gifts["swan"]["sort_order"]
        assert gifts["rose"]["available_until_us"] is None

        # An inactive package and another currency: listed for the operator.
        for body in (
            {"currency": "USD", "coins": 70, "price_minor": 99, "active": False},
            {"currency": "EUR", "coins": 100, "price_minor": 129},
        ):
            r = await client.put("/v1/admin/coin-packages", json=body, headers=ADMIN)
            assert r.status_code == 200, r.text
        listed = await admin_get(client, "/v1/admin/coin-packages")
        keyed = {(p["currency"], p["coins"]): p for p in listed}
        assert keyed[("USD", 70)]["active"] is False
        assert keyed[("EUR", 100)]["price_minor"] == 129
        assert 70 not in {p["coins"] for p in (await client.get("/v1/coin-packages")).json()}


async def test_ledger_check_and_economy_totals(economy_app: AppFactory) -> None:
    async with economy_app(payout_min_cents=50) as client:
        viewer, creator = await register(client), await register(client, "creator")
        admin = await make_admin(client)
        await viewer.buy(700)
        stream = await creator.go_live()
        assert (await viewer.gift(stream, "money_gun")).status_code == 201
        r = await creator.post("/v1/payouts", {"diamonds": 300, "idempotency_key": "p"})
        assert r.status_code == 201, r.text
        r = await admin.post(f"/v1/admin/payouts/{r.json()['id']}/approve")
        assert r.status_code == 200, r.text

        health = await admin_get(client, "/v1/admin/ledger")
        assert health["last_check"] is None
        assert health["totals"] == {
            "coins_issued": 700,
            "coins_spent": 500,
            "coins_outstanding": 200,
            "diamonds_issued": 500,
            "diamonds_paid_out": 300,
            "diamonds_outstanding": 200,
        }

        r = await admin.post("/v1/admin/ledger/verify")
        assert r.status_code == 200, r.text
        check = r.json()
        assert (check["ok"], check["problems"]) == (True, [])
        assert min(check["transfers"], check["batches"], check["accounts"]) > 0
        assert (await admin_get(client, "/v1/admin/ledger"))["last_check"] == check

        # Someone edits a balance behind the ledger's back: the next check names it.
        db = app_services(client.app).db
        with db.begin() as conn:
            conn.execute(
                update(accounts)
                .where(accounts.c.name == f"user:{viewer.id}:coins")
                .values(credits_posted=accounts.c.credits_posted + 1000)
            )
        again = (await admin.post("/v1/admin/ledger/verify")).json()
        assert again["ok"] is False
        assert any(f"user:{viewer.id}:coins" in p for p in again["problems"]), again
        assert again["started_at_us"] > check["started_at_us"]

        # Concurrent asks share one run at a time, and each answer is a fresh check.
        asks = [admin.post("/v1/admin/ledger/verify") for _ in range(3)]
        answers = [r.json() for r in await asyncio.gather(*asks)]
        assert all(a["ok"] is False for a in answers)
        assert min(a["started_at_us"] for a in answers) > again["started_at_us"]
        assert_problem(await viewer.post("/v1/admin/ledger/verify"), 403, "admin_required")
        assert_problem(await creator.get("/v1/admin/ledger"), 403, "admin_required")


async def test_an_admin_cannot_make_a_minor_a_creator(economy_app: AppFactory) -> None:
    """The creator age holds on every road to the role: signing up, becoming one, and an
    admin's change of role; a refused change writes nothing, not even its other fields."""
    async with economy_app() as client:
        minor = await register(client, birth_date="2012-03-01")
        adult = await register(client)
        r = await client.patch(
            f"/v1/admin/users/{minor.id}",
            json={"role": "creator", "status": "blocked"},
            headers=ADMIN,
        )
        body = assert_problem(r, 403, "creator_too_young")
        assert body["min_age"] == 18
        [row] = await admin_get(client, "/v1/admin/users", q=minor.user["email"])
        assert (row["role"], row["status"]) == ("viewer", "active")  # nothing was written
        r = await client.patch(
            f"/v1/admin/users/{adult.id}", json={"role": "creator"}, headers=ADMIN
        )
        assert r.status_code == 200, r.text
        assert r.json()["role"] == "creator"
