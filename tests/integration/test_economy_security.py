"""Attackers against the economy API, on SQLite and PostgreSQL: reading or moving what is not
theirs, administering without the role, forged credentials, cross-site requests, API keys out
of their scope or integration. Each refusal is problem+json with a stable code, and nothing is
written."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from economy_client import (
    ADMIN,
    AppFactory,
    Person,
    assert_problem,
    economy_app,
    make_admin,
    register,
)
from sqlalchemy import event, func, select, update

from giftwave.api.state import app_services
from giftwave.clock import now_us
from giftwave.db.tables import gift_sends, payment_orders, payouts, sessions, streams, transfers

__all__ = ["economy_app"]

ALL_SCOPES = ["users:write", "wallet:read", "gifts:send", "topups:create", "streams:write"]


def counts(client: httpx.AsyncClient) -> dict[str, int]:
    """Rows in every table an economy action writes to."""
    db = app_services(client.app).db
    with db.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (transfers, gift_sends, payment_orders, payouts, streams)
        }


def anonymous(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A second browser on the same app: no cookies, no token."""
    transport = httpx.ASGITransport(app=client.app, raise_app_exceptions=False)  # type: ignore[attr-defined]
    return httpx.AsyncClient(transport=transport, base_url="http://giftwave.test")


async def api_key(client: httpx.AsyncClient, integration: str, scopes: list[str]) -> dict[str, Any]:
    r = await client.post(
        "/v1/admin/api-keys", json={"integration": integration, "scopes": scopes}, headers=ADMIN
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    assert body["key"].startswith("gwk_")
    assert sorted(scopes) == body["scopes"]
    return body


async def creator_with_payout(client: httpx.AsyncClient) -> tuple[Person, Person, dict[str, Any]]:
    """A viewer who gifted 1,000 diamonds, and their creator with a pending 600-diamond payout."""
    viewer, creator = await register(client), await register(client, "creator")
    await viewer.buy(1400)
    stream = await creator.go_live()
    r = await viewer.gift(stream, "hand_hearts", count=10)
    assert r.status_code == 201, r.text
    r = await creator.post("/v1/payouts", {"diamonds": 600, "idempotency_key": "cash-1"})
    assert r.status_code == 201, r.text
    return viewer, creator, r.json()


async def test_nobody_reads_another_users_order_payout_or_wallet(economy_app: AppFactory) -> None:
    async with economy_app(payout_min_cents=100) as client:
        viewer, creator, payout = await creator_with_payout(client)
        order = (await viewer.get("/v1/topups")).json()[0]
        mallory = await register(client, "creator")
        other_viewer = await register(client)

        for thief in (mallory, other_viewer):
            r = await thief.get(f"/v1/topups/{order['id']}")
            assert_problem(r, 404, "order_not_found")  # not yours: not there
            assert (await thief.get("/v1/topups")).json() == []
            r = await thief.get(f"/v1/payouts/{payout['id']}")
            assert_problem(r, 404, "payout_not_found")
            assert (await thief.get("/v1/payouts")).json() == []
            # There is no "someone else's wallet" route; the on-behalf header is for API keys
            # only, so a session sending it still sees its own (empty) wallet.
            r = await thief.client.get(
                "/v1/me/wallet", headers={**thief.auth, "Giftwave-User": str(viewer.id)}
            )
            assert r.json()["coins"] == 0
            assert r.json()["diamonds"] == 0
            statement = (await thief.get("/v1/creators/me/statement")).json()
            assert statement["creator_id"] == thief.id
            assert statement["totals"]["diamonds"] == 0

        # The owners still see theirs; an unknown or absurd id is the same 404.
        assert (await viewer.get(f"/v1/topups/{order['id']}")).status_code == 200
        assert (await creator.get(f"/v1/payouts/{payout['id']}")).status_code == 200
        assert_problem(await viewer.get("/v1/topups/ord_nope"), 404, "order_not_found")
        assert_problem(await viewer.get("/v1/topups/" + "x" * 500), 404, "order_not_found")
        assert_problem(await creator.get("/v1/payouts/" + "y" * 500), 404, "payout_not_found")


async def test_gifting_your_own_stream_is_refused(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        creator = await register(client, "creator")
        await creator.buy(70)
        stream = await creator.go_live()
        before = counts(client)
        assert_problem(await creator.gift(stream, "rose"), 403, "cannot_gift_self")
        assert await creator.coins() == 70
        assert (await creator.wallet())["diamonds"] == 0
        assert counts(client) == before
        # A viewer cannot open a stream to gift themself either.
        viewer = await register(client)
        r = await viewer.post("/v1/streams", {"title": "me"})
        assert_problem(r, 403, "not_a_creator")


# What each admin route needs to succeed, so a refusal is the auth, not the body.
def admin_calls(payout_id: str, user_id: int, send_id: str) -> dict[tuple[str, str], Any]:
    return {
        ("GET", "/v1/admin/payouts"): ("/v1/admin/payouts", None),
        ("GET", "/v1/admin/payout-decisions"): ("/v1/admin/payout-decisions", None),
        ("POST", "/v1/admin/payouts/{payout_id}/{decision}"): (
            f"/v1/admin/payouts/{payout_id}/approve",
            {},
        ),
        ("PATCH", "/v1/admin/users/{user_id}"): (f"/v1/admin/users/{user_id}", {"role": "admin"}),
        ("POST", "/v1/admin/users/{user_id}/coins"): (
            f"/v1/admin/users/{user_id}/coins",
            {"coins": 1_000_000, "idempotency_key": "free-money"},
        ),
        ("POST", "/v1/admin/gift-sends/{send_id}/reverse"): (
            f"/v1/admin/gift-sends/{send_id}/reverse",
            None,
        ),
        ("PUT", "/v1/admin/gifts/{gift_id}"): ("/v1/admin/gifts/rose", {"price_coins": 1000}),
        ("PUT", "/v1/admin/coin-packages"): (
            "/v1/admin/coin-packages",
            {"currency": "USD", "coins": 1_000_000, "price_minor": 1},
        ),
        ("POST", "/v1/admin/api-keys"): (
            "/v1/admin/api-keys",
            {"integration": "evil", "scopes": ALL_SCOPES},
        ),
        ("DELETE", "/v1/admin/api-keys/{key_id}"): ("/v1/admin/api-keys/1", None),
        ("GET", "/v1/admin/users"): (f"/v1/admin/users?q={user_id}", None),
        ("GET", "/v1/admin/gift-sends"): (f"/v1/admin/gift-sends?user_id={user_id}", None),
        ("GET", "/v1/admin/gifts"): ("/v1/admin/gifts", None),
        ("GET", "/v1/admin/coin-packages"): ("/v1/admin/coin-packages", None),
        ("GET", "/v1/admin/topups"): ("/v1/admin/topups", None),
        ("GET", "/v1/admin/ledger"): ("/v1/admin/ledger", None),
        ("POST", "/v1/admin/ledger/verify"): ("/v1/admin/ledger/verify", None),
        ("GET", "/v1/admin/analytics/economy"): ("/v1/admin/analytics/economy", None),
        ("GET", "/v1/admin/reports"): ("/v1/admin/reports", None),
        ("GET", "/v1/admin/payees/{creator_id}"): (f"/v1/admin/payees/{user_id}", None),
        ("GET", "/v1/admin/reconciliation"): ("/v1/admin/reconciliation", None),
        ("GET", "/v1/admin/risk"): ("/v1/admin/risk", None),
        ("GET", "/v1/admin/risk/{flag_id}"): ("/v1/admin/risk/1", None),
        ("POST", "/v1/admin/risk/{flag_id}/decision"): (
            "/v1/admin/risk/1/decision",
            {"decision": "freeze"},
        ),
    }


async def test_only_admins_use_admin_routes(economy_app: AppFactory) -> None:
    async with economy_app(payout_min_cents=100) as client:
        viewer, creator, payout = await creator_with_payout(client)
        stream = (await client.get("/v1/streams")).json()[0]["id"]
        sent = (await viewer.gift(stream, "rose")).json()
        key = await api_key(client, "partner", ALL_SCOPES)
        r = await client.post(
            "/v1/integrations/users",
            json={
                "external_id": "boss",
                "handle": "partnerboss",
                "birth_date": "1980-01-01",
                "country": "US",
            },
            headers={"Authorization": f"Bearer {key['key']}"},
        )
        assert r.status_code == 201, r.text
        # Even a mapped user who is an admin gives the integration no admin rights.
        mapped_admin = r.json()["id"]
        r = await client.patch(
            f"/v1/admin/users/{mapped_admin}", json={"role": "admin"}, headers=ADMIN
        )
        assert r.status_code == 200
        key_auth = {"Authorization": f"Bearer {key['key']}"}

        calls = admin_calls(payout["id"], viewer.id, sent["send_id"])
        schema = client.app.openapi()  # type: ignore[attr-defined]
        app_routes = {
            (method.upper(), path)
            for path, operations in schema["paths"].items()
            if path.startswith("/v1/admin")
            for method in operations
        }
        assert app_routes == set(calls), "a new admin route: add it to admin_calls"

        before = counts(client)
        wallets = (await viewer.wallet(), await creator.wallet())
        callers: list[tuple[dict[str, str], int, str]] = [
            ({}, 401, "unauthorized"),
            ({"Authorization": "Bearer not-a-token"}, 401, "unauthorized"),
            (viewer.auth, 403, "admin_required"),
            (creator.auth, 403, "admin_required"),
            (key_auth, 403, "admin_required"),
            ({**key_auth, "Giftwave-User": "boss"}, 403, "admin_required"),
        ]
        async with anonymous(client) as stranger:
            for headers, status, code in callers:
                for (method, _), (path, body) in calls.items():
                    r = await stranger.request(method, path, json=body, headers=headers)
                    assert_problem(r, status, code)
        assert counts(client) == before
        assert (await viewer.wallet(), await creator.wallet()) == wallets
        r = await client.get("/v1/admin/payouts", headers=ADMIN)
        assert [p["status"] for p in r.json()] == ["pending"]
        assert next(g["price_coins"] for g in (await client.get("/v1/gifts")).json()) == 1


async def test_payout_review_is_for_admins_and_never_your_own(economy_app: AppFactory) -> None:
    async with economy_app(payout_min_cents=100) as client:
        viewer, creator, payout = await creator_with_payout(client)
        key = await api_key(client, "partner", ALL_SCOPES)
        path = f"/v1/admin/payouts/{payout['id']}"
        for who in (creator.auth, viewer.auth, {"Authorization": f"Bearer {key['key']}"}):
            for decision in ("approve", "reject"):
                r = await client.post(f"{path}/{decision}", headers=who)
                assert_problem(r, 403, "admin_required")
        wallet = await creator.wallet()
        assert (wallet["diamonds"], wallet["diamonds_reserved"]) == (400, 600)

        # The creator becomes an admin: still not their own payout.
        r = await client.patch(
            f"/v1/admin/users/{creator.id}", json={"role": "admin"}, headers=ADMIN
        )
        assert r.status_code == 200
        for decision in ("approve", "reject"):
            r = await creator.post(f"{path}/{decision}")
            assert_problem(r, 403, "own_payout")
        assert (await creator.get(f"/v1/payouts/{payout['id']}")).json()["status"] == "pending"
        wallet = await creator.wallet()
        assert (wallet["diamonds"], wallet["diamonds_reserved"]) == (400, 600)

        # Another admin can.
        admin = await make_admin(client)
        r = await admin.post(f"{path}/approve", json={"note": "ok"})
        assert r.status_code == 200, r.text
        assert r.json()["reviewed_by"] == admin.id


async def test_blocked_user_cannot_buy_send_or_receive(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        viewer, creator = await register(client), await register(client, "creator")
        fan = await register(client)
        await viewer.buy(700)
        await fan.buy(700)
        packages = (await client.get("/v1/coin-packages")).json()
        stream = await creator.go_live()

        r = await client.patch(
            f"/v1/admin/users/{viewer.id}", json={"status": "blocked"}, headers=ADMIN
        )
        assert r.status_code == 200
        assert r.json()["status"] == "blocked"
        assert r.json()["can_gift"] is False
        before = counts(client)
        r = await viewer.post(
            "/v1/topups", {"package_id": packages[0]["id"], "idempotency_key": "b1"}
        )
        assert_problem(r, 403, "account_blocked")
        assert_problem(await viewer.gift(stream, "rose"), 403, "account_blocked")
        assert counts(client) == before
        assert await viewer.coins() == 700

        r = await client.patch(
            f"/v1/admin/users/{creator.id}", json={"status": "blocked"}, headers=ADMIN
        )
        assert r.status_code == 200
        assert_problem(await fan.gift(stream, "rose"), 403, "creator_unavailable")
        assert_problem(
            await creator.post("/v1/streams", {"title": "again"}), 403, "account_blocked"
        )
        r = await creator.post("/v1/payouts", {"diamonds": 20_000, "idempotency_key": "p"})
        assert_problem(r, 403, "account_blocked")
        assert counts(client) == before
        assert await fan.coins() == 700
        assert (await creator.wallet())["diamonds"] == 0

        # Unblocked, both work again.
        for person in (viewer, creator):
            r = await client.patch(
                f"/v1/admin/users/{person.id}", json={"status": "active"}, headers=ADMIN
            )
            assert r.status_code == 200
        assert (await viewer.gift(stream, "rose")).status_code == 201
        assert (await fan.gift(stream, "rose")).status_code == 201
        assert (await creator.wallet())["diamonds"] == 2


async def test_bad_tokens_are_401_and_logout_ends_the_session(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        viewer = await register(client)
        token = viewer.auth["Authorization"].removeprefix("Bearer ")
        async with anonymous(client) as stranger:
            assert_problem(await stranger.get("/v1/me"), 401, "unauthorized")
            for header in (
                "Bearer garbage",
                "Bearer " + token[:-1] + ("A" if token[-1] != "A" else "B"),
                "Bearer " + "x" * 5000,
                "Bearer gwk_notakey_at_all",
                "Basic " + token,
                "Bearer",
                "Bearer ",
                token,
            ):
                r = await stranger.get("/v1/me/wallet", headers={"Authorization": header})
                assert_problem(r, 401, "unauthorized")
                r = await stranger.post(
                    "/v1/topups",
                    json={"coins": 100, "idempotency_key": "x"},
                    headers={"Authorization": header},
                )
                assert_problem(r, 401, "unauthorized")

            # An expired session: a fresh login whose expiry passed before its first use.
            r = await stranger.post(
                "/v1/auth/login",
                json={"login": viewer.user["email"], "password": "correct horse battery"},
            )
            assert r.status_code == 200, r.text
            old = r.json()["token"]
            db = app_services(client.app).db
            with db.begin() as conn:
                conn.execute(
                    update(sessions)
                    .where(
                        sessions.c.user_id == viewer.id,
                        sessions.c.csrf_token == r.json()["csrf_token"],
                    )
                    .values(expires_at_us=now_us() - 1)
                )
            r = await stranger.get("/v1/me", headers={"Authorization": f"Bearer {old}"})
            assert_problem(r, 401, "unauthorized")

            r = await stranger.post(
                "/v1/auth/login", json={"login": viewer.user["email"], "password": "wrong password"}
            )
            assert_problem(r, 401, "invalid_credentials")
            r = await stranger.post(
                "/v1/auth/login", json={"login": "nobody@example.org", "password": "whatever1"}
            )
            assert_problem(r, 401, "invalid_credentials")

            assert (await viewer.get("/v1/me")).status_code == 200
            r = await stranger.post("/v1/auth/logout", headers=viewer.auth)
            assert r.status_code == 204
            assert_problem(await viewer.get("/v1/me"), 401, "unauthorized")
            assert_problem(await viewer.get("/v1/me/wallet"), 401, "unauthorized")


async def test_tokens_read_together_each_find_their_own_user(economy_app: AppFactory) -> None:
    """Sessions missing from the cache are read in batches (``AuthCache``): callers whose
    entries went stale at once, a bad token and an expired one among them, each get their own
    answer."""
    async with economy_app() as client:
        people = [await register(client) for _ in range(12)]
        expired = await register(client)
        db = app_services(client.app).db
        with db.begin() as conn:
            conn.execute(
                update(sessions)
                .where(sessions.c.user_id == expired.id)
                .values(expires_at_us=now_us() - 1)
            )
        cache = app_services(client.app).auth_cache
        cache.sessions.clear()
        cache.users.clear()
        statements: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements.append(statement)

        event.listen(db, "before_cursor_execute", count)
        try:
            async with anonymous(client) as stranger:
                answers = await asyncio.gather(
                    *(p.get("/v1/me") for p in [*people, expired]),
                    stranger.get("/v1/me", headers={"Authorization": "Bearer not-a-session"}),
                )
        finally:
            event.remove(db, "before_cursor_execute", count)
        assert [r.json()["id"] for r in answers[: len(people)]] == [p.id for p in people]
        session_reads = [s for s in statements if "FROM sessions" in s]
        assert 1 <= len(session_reads) <= 3, session_reads  # 14 callers, a batch or a few
        assert_problem(answers[-2], 401, "unauthorized")  # the expired session
        assert_problem(answers[-1], 401, "unauthorized")


async def test_cookie_session_needs_the_csrf_header(economy_app: AppFactory) -> None:
    async with economy_app(cookie_secure=False) as client:
        creator = await register(client, "creator")
        before = counts(client)
        async with anonymous(client) as browser:
            r = await browser.post(
                "/v1/auth/login",
                json={"login": creator.user["handle"], "password": "correct horse battery"},
            )
            assert r.status_code == 200, r.text
            csrf = r.json()["csrf_token"]
            assert browser.cookies["gw_csrf"] == csrf
            assert browser.cookies["gw_session"]

            # Reading needs only the cookie.
            r = await browser.get("/v1/me")
            assert r.status_code == 200
            assert r.json()["id"] == creator.id
            # A cross-site form sends the cookie but cannot set the header.
            for headers in ({}, {"X-CSRF-Token": "guess"}, {"X-CSRF-Token": ""}):
                r = await browser.post("/v1/streams", json={"title": "hijacked"}, headers=headers)
                assert_problem(r, 403, "csrf_failed")
                r = await browser.post(
                    "/v1/payouts",
                    json={"diamonds": 20_000, "idempotency_key": "x"},
                    headers=headers,
                )
                assert_problem(r, 403, "csrf_failed")
            assert counts(client) == before

            r = await browser.post(
                "/v1/streams", json={"title": "mine"}, headers={"X-CSRF-Token": csrf}
            )
            assert r.status_code == 201, r.text

            # Logging out clears the cookies and the session; the old cookie opens nothing.
            session_cookie = browser.cookies["gw_session"]
            # Not even logging out, from a cross-site form.
            assert_problem(await browser.post("/v1/auth/logout"), 403, "csrf_failed")
            assert (await browser.get("/v1/me")).status_code == 200
            r = await browser.post("/v1/auth/logout", headers={"X-CSRF-Token": csrf})
            assert r.status_code == 204
            assert "gw_session" not in browser.cookies
            browser.cookies.set("gw_session", session_cookie, domain="giftwave.test")
            assert_problem(await browser.get("/v1/me"), 401, "unauthorized")
            r = await browser.post(
                "/v1/streams", json={"title": "again"}, headers={"X-CSRF-Token": csrf}
            )
            assert_problem(r, 401, "unauthorized")


async def test_api_keys_scopes_revocation_and_integrations(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        creator = await register(client, "creator")
        stream = await creator.go_live()
        full = await api_key(client, "alpha", ALL_SCOPES)
        alpha = {"Authorization": f"Bearer {full['key']}"}
        r = await client.post(
            "/v1/admin/api-keys", json={"integration": "alpha", "scopes": ["root"]}, headers=ADMIN
        )
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")

        user = {
            "external_id": "u-42",
            "handle": "alpha42",
            "birth_date": "1991-02-03",
            "country": "US",
        }
        r = await client.post("/v1/integrations/users", json=user, headers=alpha)
        assert r.status_code == 201, r.text
        first = r.json()
        r = await client.post("/v1/integrations/users", json=user, headers=alpha)
        assert r.status_code == 200
        assert r.json()["id"] == first["id"]
        r = await client.post(
            "/v1/integrations/users",
            json={**user, "external_id": "u-43", "handle": "alpha43"},
            headers=alpha,
        )
        assert r.status_code == 201
        assert r.json()["id"] != first["id"]

        as_u42 = {**alpha, "Giftwave-User": "u-42"}
        assert (await client.get("/v1/me", headers=as_u42)).json()["id"] == first["id"]
        r = await client.post(
            "/v1/admin/users/{}/coins".format(first["id"]),
            json={"coins": 50, "idempotency_key": "welcome"},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
        r = await client.post(
            f"/v1/streams/{stream}/gifts",
            json={"gift_id": "rose", "idempotency_key": "k1"},
            headers=as_u42,
        )
        assert r.status_code == 201, r.text
        r = await client.post(
            f"/v1/streams/{stream}/gifts",
            json={"gift_id": "rose", "idempotency_key": "k2"},
            headers=alpha,
        )
        assert_problem(r, 400, "on_behalf_required")
        r = await client.post("/v1/auth/logout", headers=as_u42)
        assert r.status_code == 204  # a key is not a session: nothing to end
        assert (await client.get("/v1/me", headers=as_u42)).status_code == 200

        # A key without gifts:send reads the wallet but cannot gift.
        reader = await api_key(client, "alpha", ["wallet:read"])
        as_reader = {"Authorization": f"Bearer {reader['key']}", "Giftwave-User": "u-42"}
        assert (await client.get("/v1/me/wallet", headers=as_reader)).json()["coins"] == 49
        before = counts(client)
        r = await client.post(
            f"/v1/streams/{stream}/gifts",
            json={"gift_id": "rose", "idempotency_key": "k3"},
            headers=as_reader,
        )
        assert_problem(r, 403, "missing_scope")
        r = await client.post(
            "/v1/topups", json={"coins": 100, "idempotency_key": "t"}, headers=as_reader
        )
        assert_problem(r, 403, "missing_scope")
        r = await client.post("/v1/integrations/users", json=user, headers=as_reader)
        assert_problem(r, 403, "missing_scope")
        # Session-only routes take no key at all.
        r = await client.post(
            "/v1/payouts", json={"diamonds": 20_000, "idempotency_key": "p"}, headers=as_reader
        )
        assert_problem(r, 403, "missing_scope")
        assert counts(client) == before

        # Integration beta cannot reach alpha's users, by any spelling of their id.
        beta = await api_key(client, "beta", ALL_SCOPES)
        for external in ("u-42", "alpha:u-42", f"{first['id']}"):
            headers = {"Authorization": f"Bearer {beta['key']}", "Giftwave-User": external}
            assert_problem(
                await client.get("/v1/me/wallet", headers=headers), 404, "user_not_found"
            )
            r = await client.post(
                f"/v1/streams/{stream}/gifts",
                json={"gift_id": "rose", "idempotency_key": "k4"},
                headers=headers,
            )
            assert_problem(r, 404, "user_not_found")
        # The same external id at beta is another person.
        r = await client.post(
            "/v1/integrations/users",
            json={**user, "handle": "beta42"},
            headers={"Authorization": f"Bearer {beta['key']}"},
        )
        assert r.status_code == 201
        assert r.json()["id"] != first["id"]
        assert counts(client)["transfers"] == before["transfers"]

        # Revoked: 401 at once, for every route.
        r = await client.delete(f"/v1/admin/api-keys/{full['id']}", headers=ADMIN)
        assert r.status_code == 204
        assert_problem(await client.get("/v1/me", headers=as_u42), 401, "unauthorized")
        r = await client.post(
            f"/v1/streams/{stream}/gifts",
            json={"gift_id": "rose", "idempotency_key": "k5"},
            headers=as_u42,
        )
        assert_problem(r, 401, "unauthorized")
        r = await client.post("/v1/integrations/users", json=user, headers=alpha)
        assert_problem(r, 401, "unauthorized")
        r = await client.delete(f"/v1/admin/api-keys/{full['id']}", headers=ADMIN)
        assert_problem(r, 404, "api_key_not_found")
        # The other alpha key still works.
        assert (await client.get("/v1/me/wallet", headers=as_reader)).json()["coins"] == 49
        assert counts(client)["transfers"] == before["transfers"]


async def test_control_characters_never_reach_the_database_as_a_500(
    economy_app: AppFactory,
) -> None:
    """PostgreSQL text cannot hold NUL: control characters are refused before anything is
    written, on both backends alike."""
    async with economy_app() as client:
        r = await client.post(
            "/v1/auth/register",
            json={
                "handle": "nulbyte",
                "email": "nul\u0000byte@example.org",
                "password": "correct horse battery",
                "birth_date": "1990-01-01",
                "country": "US",
            },
        )
        assert_problem(r, 422, "invalid_email")
        for body in ({"names": {"en": "Ro\u0000se"}}, {"image": "/x\u0000.svg"}):
            r = await client.put("/v1/admin/gifts/rose", json=body, headers=ADMIN)
            assert_problem(r, 422, "invalid_request")
        gifts = (await client.get("/v1/gifts")).json()
        assert next(g for g in gifts if g["gift_id"] == "rose")["version"] == 1
