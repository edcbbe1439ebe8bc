"""``POST /v1/me/creator`` on both databases: an adult viewer becomes a creator (and can go live
at once), asking again changes nothing; the attacks: anonymous, a cross-site form (cookie without
the CSRF header), a minor, a blocked account, an admin (keeps the admin role), the operator's
token, a platform API key with every scope, the wrong method, a flood. A refusal changes no
role."""

from __future__ import annotations

from datetime import date

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
from sqlalchemy import select

from giftwave.api.identity import BECOME_CREATOR_RATE
from giftwave.api.state import app_services
from giftwave.db.tables import users
from giftwave.identity.sessions import Scope

__all__ = ["economy_app"]

ROUTE = "/v1/me/creator"


def _aged(years: int) -> str:
    today = date.today()
    return today.replace(year=today.year - years, day=min(today.day, 28)).isoformat()


def _other_browser(client: httpx.AsyncClient) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=client.app, raise_app_exceptions=False)  # type: ignore[attr-defined]
    return httpx.AsyncClient(transport=transport, base_url="http://giftwave.test")


async def _role(client: httpx.AsyncClient, person: Person) -> str:
    """As stored: not what a cache may still say."""
    with app_services(client.app).db.connect() as conn:
        return str(conn.execute(select(users.c.role).where(users.c.id == person.id)).scalar_one())


async def test_a_viewer_becomes_a_creator_once_and_goes_live(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        viewer = await register(client)
        assert_problem(
            await viewer.post("/v1/streams", {"title": "too soon"}), 403, "not_a_creator"
        )

        first = await viewer.post(ROUTE)
        assert first.status_code == 200, first.text
        assert first.json()["role"] == "creator"
        again = await viewer.post(ROUTE)  # a double click, a retry: the same answer
        assert again.status_code == 200
        assert again.json() == first.json()
        assert await _role(client, viewer) == "creator"
        # At once, on this node: no waiting for a cached user to age.
        assert (await viewer.post("/v1/streams", {"title": "first night"})).status_code == 201

        creator = await register(client, "creator")
        r = await creator.post(ROUTE)
        assert r.status_code == 200
        assert r.json()["role"] == "creator"


async def test_who_may_not_and_nothing_changes(economy_app: AppFactory) -> None:
    async with economy_app(cookie_secure=False) as client:
        async with _other_browser(client) as anonymous:
            assert_problem(await anonymous.post(ROUTE), 401, "unauthorized")

        minor = await register(client, birth_date=_aged(15))
        refused = assert_problem(await minor.post(ROUTE), 403, "creator_too_young")
        assert refused["min_age"] == 18
        assert await _role(client, minor) == "viewer"
        korean = await register(client, birth_date=_aged(18), country="KR")  # KR's age is 19
        assert assert_problem(await korean.post(ROUTE), 403, "creator_too_young")["min_age"] == 19
        assert await _role(client, korean) == "viewer"

        blocked = await register(client)
        r = await client.patch(
            f"/v1/admin/users/{blocked.id}", json={"status": "blocked"}, headers=ADMIN
        )
        assert r.status_code == 200, r.text
        assert_problem(await blocked.post(ROUTE), 403, "account_blocked")
        assert await _role(client, blocked) == "viewer"

        admin = await make_admin(client)
        r = await admin.post(ROUTE)
        assert r.status_code == 200, r.text
        assert r.json()["role"] == "admin"  # an admin is not demoted to a creator
        assert await _role(client, admin) == "admin"

        # The operator's token is no person.
        assert_problem(await client.post(ROUTE, headers=ADMIN), 403, "user_required")

        # A platform's key acts for its users' wallets and gifts, never for their role.
        viewer = await register(client)
        key = await client.post(
            "/v1/admin/api-keys",
            json={"integration": "tv", "scopes": [s.value for s in Scope]},
            headers=ADMIN,
        )
        assert key.status_code == 201, key.text
        auth = {"Authorization": f"Bearer {key.json()['key']}"}
        mapped = await client.post(
            "/v1/integrations/users",
            json={"external_id": "u1", "handle": "mappedone", "birth_date": "1990-01-01",
                  "country": "US"},
            headers=auth,
        )  # fmt: skip
        assert mapped.status_code == 201, mapped.text
        as_user = auth | {"Giftwave-User": "u1"}
        assert_problem(await client.post(ROUTE, headers=as_user), 403, "missing_scope")
        assert_problem(await client.post(ROUTE, headers=auth), 400, "on_behalf_required")

        # The wrong method: problem+json, not a page.
        assert_problem(await viewer.get(ROUTE), 405, "method_not_allowed")

        # A cross-site form: the session cookie, no CSRF header.
        async with _other_browser(client) as browser:
            login = {"login": viewer.user["handle"], "password": "correct horse battery"}
            r = await browser.post("/v1/auth/login", json=login)
            assert r.status_code == 200, r.text
            for headers in ({}, {"X-CSRF-Token": "guess"}):
                assert_problem(await browser.post(ROUTE, headers=headers), 403, "csrf_failed")
            assert await _role(client, viewer) == "viewer"
            csrf = {"X-CSRF-Token": r.json()["csrf_token"]}
            done = await browser.post(ROUTE, headers=csrf)
            assert done.status_code == 200, done.text
            assert done.json()["role"] == "creator"


async def test_a_flood_is_refused_with_retry_after(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        viewer = await register(client)
        answers = [await viewer.post(ROUTE) for _ in range(BECOME_CREATOR_RATE.burst + 1)]
        assert [a.status_code for a in answers[:-1]] == [200] * BECOME_CREATOR_RATE.burst
        assert_problem(answers[-1], 429, "rate_limited")
        assert int(answers[-1].headers["retry-after"]) >= 1
        other = await register(client)  # each person has their own allowance
        assert (await other.post(ROUTE)).status_code == 200


async def _sign_up(
    client: httpx.AsyncClient, handle: str, birth_date: str, country: str = "US"
) -> httpx.Response:
    """The sign-up form's request, with "I am a creator" ticked."""
    return await client.post(
        "/v1/auth/register",
        json={
            "handle": handle,
            "email": f"{handle}@example.org",
            "password": "correct horse battery",
            "birth_date": birth_date,
            "country": country,
            "role": "creator",
        },
    )


async def test_a_minor_cannot_sign_up_as_a_creator_either(economy_app: AppFactory) -> None:
    """The same rule as becoming one later: signing up as a creator is no way round it, through
    the sign-up form or a platform's key. A refusal creates no account."""
    async with economy_app() as client:
        refused = assert_problem(await _sign_up(client, "teencreator", _aged(17)), 403,
                                 "creator_too_young")  # fmt: skip
        assert refused["min_age"] == 18
        korean = assert_problem(
            await _sign_up(client, "krcreator", _aged(18), "KR"), 403, "creator_too_young"
        )
        assert korean["min_age"] == 19
        with app_services(client.app).db.connect() as conn:
            found = conn.execute(
                select(users.c.id).where(users.c.handle.in_(["teencreator", "krcreator"]))
            ).all()
        assert found == []
        # Nothing half-made: the handle and e-mail are free for the same person as a viewer.
        r = await client.post(
            "/v1/auth/register",
            json={"handle": "teencreator", "email": "teencreator@example.org",
                  "password": "correct horse battery", "birth_date": _aged(17),
                  "country": "US"},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        assert r.json()["user"]["role"] == "viewer"

        # Of age, from the 18th birthday (19th in Korea): a creator at once.
        for handle, born, country in (("adultcreator", _aged(18), "US"), ("krok", _aged(19), "KR")):
            r = await _sign_up(client, handle, born, country)
            assert r.status_code == 201, r.text
            assert r.json()["user"]["role"] == "creator"

        # A platform maps its users through its key: the same rule.
        key = await client.post(
            "/v1/admin/api-keys", json={"integration": "tv", "scopes": ["users:write"]},
            headers=ADMIN,
        )  # fmt: skip
        assert key.status_code == 201, key.text
        auth = {"Authorization": f"Bearer {key.json()['key']}"}
        young = {"external_id": "kid", "handle": "mappedkid", "birth_date": _aged(16),
                 "country": "US", "role": "creator"}  # fmt: skip
        refused = assert_problem(
            await client.post("/v1/integrations/users", json=young, headers=auth),
            403,
            "creator_too_young",
        )
        assert refused["min_age"] == 18
        as_viewer = await client.post(
            "/v1/integrations/users", json={**young, "role": "viewer"}, headers=auth
        )
        assert as_viewer.status_code == 201, as_viewer.text  # nothing was mapped before
        assert as_viewer.json()["role"] == "viewer"
