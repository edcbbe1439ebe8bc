"""An in-process giftwave (lifespan included) and a small client vocabulary for economy tests:
register, buy coins through the sandbox, go live, gift."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest

from giftwave.api.app import create_app
from giftwave.api.identity import today
from giftwave.clock import simulated_clock
from giftwave.config import Settings
from giftwave.db.urls import DatabaseUrl
from giftwave.economy.payouts import Payout, Payouts
from giftwave.identity.users import find_user

ADMIN_TOKEN = "admin-t0ken"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}
_handles = itertools.count(1)

# Cheap password hashing: the tests are about the economy, not about Argon2's cost.
FAST = {
    "admin_token": ADMIN_TOKEN,
    "password_time_cost": 1,
    "password_memory_kib": 8,
    "sandbox_webhook_secret": "whsec_test_sandbox",
    "ledger_expiry_interval_s": 0.05,
    "register_address_free": 100_000,  # everyone signs up from one address here
    "allowed_hosts": ["giftwave.test"],  # the client's base URL below
    # The fraud rules (docs/risk.md) would flag these tests' creators, who cash out seconds
    # after their first gift: tests/integration/test_risk_rules.py runs them by hand.
    "risk_interval_s": 0,
    # The ledger's followers on this process's threads, so a test runs a levels round by hand
    # (tests/integration/test_followers_process.py runs them in their own process).
    "followers": "inline",
}

AppFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def make_app_factory(db_url: DatabaseUrl) -> AppFactory:
    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(Settings(database_url=db_url.url, **{**FAST, **overrides}))
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://giftwave.test") as client,
        ):
            client.app = app  # type: ignore[attr-defined]
            yield client

    return factory


def problem_body(response: httpx.Response) -> dict[str, Any]:
    """A problem+json body without its ``request_id``: every answer carries its own request's
    id, so two answers that must not be told apart are compared on everything else."""
    body: dict[str, Any] = response.json()
    body.pop("request_id", None)
    return body


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_FIELDS, body
    assert body["code"] == code, body
    return body


class Person:
    """A registered user and their bearer token."""

    def __init__(self, client: httpx.AsyncClient, user: dict[str, Any], token: str) -> None:
        self.client = client
        self.user = user
        self.id: int = user["id"]
        self.auth = {"Authorization": f"Bearer {token}"}

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.get(path, headers=self.auth, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.client.post(path, json=json, headers=self.auth, **kw)

    async def coins(self) -> int:
        r = await self.get("/v1/me/wallet")
        assert r.status_code == 200, r.text
        return int(r.json()["coins"])

    async def wallet(self) -> dict[str, Any]:
        r = await self.get("/v1/me/wallet")
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def buy(self, package_coins: int = 700, key: str | None = None) -> dict[str, Any]:
        """Buy a package through the sandbox checkout; returns the order."""
        packages = (await self.client.get("/v1/coin-packages")).json()
        package = next(p for p in packages if p["coins"] == package_coins)
        r = await self.post(
            "/v1/topups",
            {"package_id": package["id"], "idempotency_key": key or f"buy-{next(_handles)}"},
        )
        assert r.status_code == 201, r.text
        order = r.json()
        await sandbox(self.client, order, "pay")
        return dict(order)

    async def go_live(self, title: str = "Late night piano") -> str:
        r = await self.post("/v1/streams", {"title": title})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def gift(
        self, stream_id: str, gift_id: str = "rose", count: int = 1, key: str | None = None
    ) -> httpx.Response:
        return await self.post(
            f"/v1/streams/{stream_id}/gifts",
            {"gift_id": gift_id, "count": count, "idempotency_key": key or f"g{next(_handles)}"},
        )


async def register(
    client: httpx.AsyncClient,
    role: str = "viewer",
    *,
    birth_date: str = "1990-05-17",
    country: str = "US",
) -> Person:
    n = next(_handles)
    r = await client.post(
        "/v1/auth/register",
        json={
            "handle": f"{role[:4]}{n}",
            "email": f"{role}{n}@example.org",
            "password": "correct horse battery",
            "birth_date": birth_date,
            "country": country,
            "role": role,
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return Person(client, body["user"], body["token"])


async def until(check: Callable[[], Any], timeout_s: float = 10.0, what: str = "") -> Any:
    """``check()`` once it is truthy, asked every 50 ms; an AssertionError naming ``what``
    after ``timeout_s``."""
    for _ in range(int(timeout_s / 0.05)):
        found = check()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout_s:.0f} s: {what or 'the time'}")


async def grant(client: httpx.AsyncClient, person: Person, coins: int) -> None:
    """Coins from the operator (the admin route), without a purchase."""
    r = await client.post(
        f"/v1/admin/users/{person.id}/coins",
        json={"coins": coins, "idempotency_key": f"grant-{person.id}-{coins}"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text


async def make_admin(client: httpx.AsyncClient) -> Person:
    person = await register(client)
    r = await client.patch(f"/v1/admin/users/{person.id}", json={"role": "admin"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    return person


async def sandbox(
    client: httpx.AsyncClient, order: dict[str, Any], action: str, **form: Any
) -> dict[str, Any]:
    session = order["checkout_url"].rsplit("/", 1)[1]
    r = await client.post(
        f"/sandbox/checkout/{session}/{action}",
        data={k: str(v) for k, v in form.items()},
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["delivered"] is True
    return body


async def payout_quickly_reviewed(
    economy: Any, user_id: int, diamonds: int, key: str, review_s: int = 1
) -> Payout:
    """A payout asked for through the app's own Payouts service (``economy``: the app's
    services' economy) with a review of ``review_s`` seconds: settings allow a minute at least,
    so the review expiring is only seen this way."""
    quick = Payouts(
        economy.db,
        economy.engine,
        economy.wallets,
        dataclasses.replace(economy.payouts.policy, review_timeout_s=review_s),
    )
    with economy.db.connect() as conn:
        user = find_user(conn, user_id)
    assert user is not None
    return await quick.request(user, diamonds, key, today())


@pytest.fixture
def economy_app(db_url: DatabaseUrl) -> AppFactory:
    return make_app_factory(db_url)


HOUR_US = 3_600_000_000


class Clock:
    """Wall-clock time moved on by ``advance``: what ``clock.now_us`` answers in a test."""

    def __init__(self) -> None:
        self.offset_us = 0

    def __call__(self) -> int:
        return time.time_ns() // 1000 + self.offset_us

    def advance(self, hours: float) -> None:
        self.offset_us += int(hours * HOUR_US)


@pytest.fixture
def clock() -> Iterator[Clock]:
    source = Clock()
    with simulated_clock(source):
        yield source
