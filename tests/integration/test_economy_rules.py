"""The economy's rules as a user meets them, on SQLite and PostgreSQL: age, gifting checks,
rate and spend limits, the versioned catalogue, coin packages, and idempotency under
concurrency and retries. Every refusal is problem+json with a stable code and writes nothing."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from economy_client import (
    ADMIN,
    AppFactory,
    Person,
    assert_problem,
    economy_app,
    grant,
    register,
    sandbox,
)
from sqlalchemy import func, select, update

from giftwave.api.state import app_services
from giftwave.db.tables import gift_sends, payment_orders, transfers, users

__all__ = ["economy_app"]


def born(years: int, days: int = 30) -> str:
    """A birth date making someone ``years`` old today (their birthday ``days`` ago)."""
    today = datetime.now(UTC).date()
    try:
        birthday = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        birthday = date(today.year - years, 2, 28)
    return (birthday - timedelta(days=days)).isoformat()


def ledger_size(client: httpx.AsyncClient) -> int:
    db = app_services(client.app).db
    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(transfers)).scalar_one())


def gift_rows(client: httpx.AsyncClient) -> dict[str, str]:
    """gift_sends as {coins transfer id: gift id}; each row's gift must be in the ledger whole,
    and each gift in the ledger must have its row."""
    db = app_services(client.app).db
    with db.connect() as conn:
        rows = dict(conn.execute(select(gift_sends.c.transfer_id, gift_sends.c.gift_id)).all())
        ids = set(conn.execute(select(transfers.c.id).where(transfers.c.code == "gift")).scalars())
    assert {i for i in ids if i.endswith(":c")} == set(rows)
    assert {i for i in ids if i.endswith(":d")} == {i.removesuffix(":c") + ":d" for i in rows}
    return {str(k): str(v) for k, v in rows.items()}


def order_count(client: httpx.AsyncClient) -> int:
    db = app_services(client.app).db
    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(payment_orders)).scalar_one())


async def topup(person: Person, **body: Any) -> httpx.Response:
    return await person.post("/v1/topups", {"idempotency_key": "t1", **body})


async def under_age_creator(client: httpx.AsyncClient, birth_date: str, country: str) -> Person:
    """Sign-up, becoming a creator and an admin's change of role all refuse a creator under
    age (test_become_creator.py, test_admin_api.py); an account made before those rules may
    still be one, written here as it would have been: gifts to them must still be refused."""
    person = await register(client, birth_date=birth_date, country=country)
    r = await client.patch(f"/v1/admin/users/{person.id}", json={"role": "creator"}, headers=ADMIN)
    assert_problem(r, 403, "creator_too_young")
    services = app_services(client.app)
    with services.db.begin() as conn:
        conn.execute(update(users).where(users.c.id == person.id).values(role="creator"))
    services.auth_cache.notice({"type": "user_changed", "user_id": person.id})
    return person


async def test_age_rules_for_buying_sending_and_receiving(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        adult_creator = await register(client, "creator")
        stream = await adult_creator.go_live()
        teen = await register(client, birth_date=born(17))
        assert teen.user["can_gift"] is False
        await grant(client, teen, 100)  # coins it could spend, were it allowed
        before = ledger_size(client)
        assert_problem(await topup(teen, coins=100), 403, "under_age")
        assert_problem(await teen.gift(stream, "rose"), 403, "under_age")
        assert await teen.coins() == 100
        assert ledger_size(client) == before
        assert order_count(client) == 0

        # A creator under 18 may stream but cannot receive.
        viewer = await register(client)
        await viewer.buy(70)
        young_creator = await under_age_creator(client, born(17, days=360), "US")
        young_stream = await young_creator.go_live()
        before = ledger_size(client)
        assert_problem(await viewer.gift(young_stream, "rose"), 403, "creator_under_age")
        assert await viewer.coins() == 70
        assert (await young_creator.wallet())["diamonds"] == 0
        assert ledger_size(client) == before

        # Korea needs 19: an 18-year-old there is refused, one in the US is not.
        kr18 = await register(client, birth_date=born(18), country="KR")
        us18 = await register(client, birth_date=born(18), country="US")
        kr19 = await register(client, birth_date=born(19, days=1), country="kr")
        assert (kr18.user["can_gift"], us18.user["can_gift"], kr19.user["can_gift"]) == (
            False,
            True,
            True,
        )
        assert_problem(await topup(kr18, coins=100), 403, "under_age")
        await grant(client, kr18, 10)
        assert_problem(await kr18.gift(stream, "rose"), 403, "under_age")
        assert await kr18.coins() == 10
        assert (await topup(us18, coins=100)).status_code == 201
        assert (await topup(kr19, coins=100)).status_code == 201
        for person in (us18, kr19):
            await person.buy(70)
            assert (await person.gift(stream, "rose")).status_code == 201
        kr_creator = await under_age_creator(client, born(18), "KR")
        assert_problem(
            await viewer.gift(await kr_creator.go_live(), "rose"), 403, "creator_under_age"
        )
        # The 18th birthday is the day it starts.
        today_18 = await register(client, birth_date=born(18, days=0))
        assert today_18.user["can_gift"] is True
        eve = await register(client, birth_date=born(18, days=-1))
        assert eve.user["can_gift"] is False
        # A birth date in the future, or before 1900, is not a date of birth.
        for bad in ((datetime.now(UTC).date() + timedelta(days=1)).isoformat(), "1899-12-31"):
            r = await client.post(
                "/v1/auth/register",
                json={
                    "handle": f"bad{bad[:4]}",
                    "email": f"bad{bad[:4]}@example.org",
                    "password": "correct horse battery",
                    "birth_date": bad,
                    "country": "US",
                },
            )
            assert_problem(r, 422, "invalid_birth_date")


async def test_gifting_refusals(economy_app: AppFactory) -> None:
    async with economy_app(gift_max_count=5) as client:
        viewer, creator = await register(client), await register(client, "creator")
        await viewer.buy(700)
        stream = await creator.go_live()
        assert (await viewer.gift(stream, "rose")).status_code == 201
        before = ledger_size(client)

        async def refused(stream_id: str, body: dict[str, Any], status: int, code: str) -> None:
            r = await viewer.post(
                f"/v1/streams/{stream_id}/gifts", {"idempotency_key": "k", **body}
            )
            assert_problem(r, status, code)

        await refused("st_nope", {"gift_id": "rose"}, 404, "stream_not_found")
        await refused("x" * 300, {"gift_id": "rose"}, 404, "stream_not_found")
        await refused(stream, {"gift_id": "unicorn"}, 404, "gift_not_found")
        await refused(stream, {"gift_id": "../rose"}, 404, "gift_not_found")
        await refused(stream, {"gift_id": "rose", "count": 0}, 422, "invalid_request")
        await refused(stream, {"gift_id": "rose", "count": -3}, 422, "invalid_request")
        await refused(stream, {"gift_id": "rose", "count": 6}, 422, "invalid_count")
        await refused(stream, {"gift_id": "rose", "count": 10**12}, 422, "invalid_request")
        await refused(stream, {"gift_id": "rose", "coins": 0}, 422, "invalid_request")
        for key in ("", "has space", "k" * 65, "ключ", "a/b", None):
            await refused(
                stream, {"gift_id": "rose", "idempotency_key": key}, 422, "invalid_request"
            )
        r = await viewer.client.post(
            f"/v1/streams/{stream}/gifts",
            content=b"{not json",
            headers={**viewer.auth, "Content-Type": "application/json"},
        )
        assert_problem(r, 422, "invalid_request")

        # Off sale: refused, and gone from the catalogue; back on sale: sendable again.
        r = await client.put("/v1/admin/gifts/panda", json={"on_sale": False}, headers=ADMIN)
        assert r.status_code == 200, r.text
        assert "panda" not in {g["gift_id"] for g in (await client.get("/v1/gifts")).json()}
        await refused(stream, {"gift_id": "panda"}, 409, "gift_not_on_sale")
        # Ended stream.
        other = await register(client, "creator")
        assert_problem(await other.post(f"/v1/streams/{stream}/end"), 403, "not_your_stream")
        r = await creator.post(f"/v1/streams/{stream}/end")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ended"
        await refused(stream, {"gift_id": "rose"}, 409, "stream_not_live")
        assert await viewer.coins() == 699
        assert ledger_size(client) == before

        r = await client.put("/v1/admin/gifts/panda", json={"on_sale": True}, headers=ADMIN)
        assert r.status_code == 200
        stream2 = await creator.go_live()
        assert (await viewer.gift(stream2, "panda", count=5)).status_code == 201
        assert await viewer.coins() == 699 - 25


async def test_rate_limit_daily_cap_and_insufficient_coins(economy_app: AppFactory) -> None:
    async with economy_app(gift_rate_per_s=1, gift_rate_burst=3) as client:
        viewer, creator = await register(client), await register(client, "creator")
        await viewer.buy(70)
        stream = await creator.go_live()
        for _ in range(3):
            assert (await viewer.gift(stream, "rose")).status_code == 201
        r = await viewer.gift(stream, "rose")
        body = assert_problem(r, 429, "gift_rate_limited")
        assert int(r.headers["retry-after"]) >= 1, body
        assert await viewer.coins() == 67
        # Another viewer has their own bucket.
        fan = await register(client)
        await fan.buy(70)
        assert (await fan.gift(stream, "rose")).status_code == 201

    async with economy_app(gift_daily_spend_max_coins=10) as client:
        creator.client = client
        viewer = await register(client)
        await viewer.buy(70)
        r = await viewer.gift(stream, "panda", count=2)  # 10 coins: the whole day's allowance
        assert r.status_code == 201, r.text
        before = ledger_size(client)
        r = await viewer.gift(stream, "rose")
        body = assert_problem(r, 429, "daily_spend_limit")
        assert (body["limit_coins"], body["spent_coins"]) == (10, 10)
        assert 1 <= int(r.headers["retry-after"]) <= 86_400
        assert await viewer.coins() == 60
        assert ledger_size(client) == before

    # The day's spending is remembered across a restart (read back from the database).
    async with economy_app(gift_daily_spend_max_coins=10) as client:
        viewer.client = creator.client = client
        assert_problem(await viewer.gift(stream, "rose"), 429, "daily_spend_limit")

    async with economy_app() as client:
        viewer.client = creator.client = client
        before = ledger_size(client)
        rows = gift_rows(client)
        wallet = await creator.wallet()
        r = await viewer.gift(stream, "doughnut", count=3, key="too-dear")  # 90 > 60
        assert_problem(r, 402, "insufficient_coins")
        assert await viewer.coins() == 60
        assert await creator.wallet() == wallet
        assert ledger_size(client) == before
        assert gift_rows(client) == rows  # a refused gift leaves no row
        # Topped up, the same key goes through, once.
        await viewer.buy(70)
        r = await viewer.gift(stream, "doughnut", count=3, key="too-dear")
        assert r.status_code == 201, r.text
        assert await viewer.coins() == 60 + 70 - 90
        assert gift_rows(client)[r.json()["send_id"] + ":c"] == "doughnut"


async def test_one_key_for_two_gifts_at_once_charges_and_records_one(
    economy_app: AppFactory,
) -> None:
    """A finger heart and a panda cost the same: with one key their transfers are the same,
    and the gift_sends row written with the first tells the other it is a conflict."""
    async with economy_app() as client:
        viewer, creator = await register(client), await register(client, "creator")
        await viewer.buy(700)
        stream = await creator.go_live()
        winners = {}
        for n in range(6):
            key = f"twin-{n}"
            both = await asyncio.gather(
                viewer.gift(stream, "finger_heart", key=key), viewer.gift(stream, "panda", key=key)
            )
            assert sorted(r.status_code for r in both) == [201, 409], [r.text for r in both]
            winner, loser = both if both[0].status_code == 201 else both[::-1]
            assert_problem(loser, 409, "idempotency_key_reused")
            again = await viewer.gift(stream, winner.json()["gift_id"], key=key)
            assert again.status_code == 201, again.text
            assert {**again.json(), "balance_coins": 0} == {**winner.json(), "balance_coins": 0}
            winners[winner.json()["send_id"] + ":c"] = winner.json()["gift_id"]
        assert await viewer.coins() == 700 - 6 * 5
        assert (await creator.wallet())["diamonds"] == 6 * 5
        assert gift_rows(client) == winners


async def test_a_new_price_is_a_new_version_and_history_keeps_the_old(
    economy_app: AppFactory,
) -> None:
    async with economy_app() as client:
        viewer, creator = await register(client), await register(client, "creator")
        await viewer.buy(700)
        stream = await creator.go_live()
        catalogue = {g["gift_id"]: g for g in (await client.get("/v1/gifts")).json()}
        assert catalogue["finger_heart"]["version"] == 1
        old = await viewer.gift(stream, "finger_heart", count=2)
        assert old.json()["gift_version"] == 1
        assert (old.json()["coins"], old.json()["diamonds"]) == (10, 10)

        r = await client.put("/v1/admin/gifts/finger_heart", json={"price_coins": 9}, headers=ADMIN)
        assert r.status_code == 200, r.text
        assert (r.json()["version"], r.json()["price_coins"]) == (2, 9)
        # The same values again is no new version.
        r = await client.put("/v1/admin/gifts/finger_heart", json={"price_coins": 9}, headers=ADMIN)
        assert r.json()["version"] == 2
        for bad in ({"price_coins": 0}, {"names": {"es": "sin inglés"}}, {"names": {"fr": "x"}}):
            r = await client.put("/v1/admin/gifts/finger_heart", json=bad, headers=ADMIN)
            assert r.status_code == 422, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
        r = await client.put(
            "/v1/admin/gifts/Bad-Id", json={"price_coins": 5, "names": {"en": "x"}}, headers=ADMIN
        )
        assert_problem(r, 422, "invalid_gift_id")

        new = await viewer.gift(stream, "finger_heart", count=2)
        assert new.json()["gift_version"] == 2
        assert (new.json()["coins"], new.json()["diamonds"]) == (18, 18)
        # Re-sending the old gift's key answers what was charged then.
        old_key = old.json()["send_id"].split(":")[2]
        replay = await viewer.gift(stream, "finger_heart", count=2, key=old_key)
        assert {**replay.json(), "balance_coins": 0} == {**old.json(), "balance_coins": 0}

        statement = (await creator.get("/v1/creators/me/statement")).json()
        assert statement["totals"]["coins"] == 10 + 18
        assert statement["totals"]["gifts"] == 2
        assert await viewer.coins() == 700 - 28


async def test_catalogue_lists_twenty_gifts_in_three_languages(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        english = (await client.get("/v1/gifts")).json()
        arabic = (await client.get("/v1/gifts", params={"locale": "ar"})).json()
        spanish = (await client.get("/v1/gifts", params={"locale": "es"})).json()
        assert len(english) == len(arabic) == len(spanish) >= 20
        assert [g["gift_id"] for g in arabic] == [g["gift_id"] for g in english]
        prices = [g["price_coins"] for g in english]
        assert prices == sorted(prices)
        rose = {g["gift_id"]: g for g in arabic}["rose"]
        assert rose["name"] == rose["names"]["ar"] == "وردة"
        assert {g["gift_id"]: g for g in spanish}["rose"]["name"] == "Rosa"
        for gift in english:
            assert set(gift["names"]) == {"en", "es", "ar"}, gift
            assert gift["name"] == gift["names"]["en"]
        for bad in ("fr", "", "ar-EG", "../en"):
            r = await client.get("/v1/gifts", params={"locale": bad})
            assert_problem(r, 422, "invalid_request")


async def test_coin_packages_and_custom_amounts(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        packages = (await client.get("/v1/coin-packages")).json()
        assert [(p["coins"], p["price_minor"]) for p in packages] == [
            (70, 99),
            (350, 499),
            (700, 999),
            (1400, 1999),
            (3500, 4999),
            (7000, 9999),
            (17500, 24999),
        ]
        assert packages[0]["price"] == "$0.99"
        assert packages[-1]["price"] == "$249.99"
        assert {p["currency"] for p in packages} == {"USD"}
        assert (await client.get("/v1/coin-packages", params={"currency": "EUR"})).json() == []
        r = await client.get("/v1/coin-packages", params={"currency": "usd"})
        assert_problem(r, 422, "invalid_request")

        viewer = await register(client)

        async def custom(coins: int, key: str) -> httpx.Response:
            return await viewer.post("/v1/topups", {"coins": coins, "idempotency_key": key})

        # The dearest package's rate per coin (24,999 cents / 17,500 coins), rounded up to a
        # cent: every package is at least as good a deal (70 coins: $1.00 custom, $0.99 packed).
        for coins, cents in ((30, 43), (100, 143), (71, 102), (70, 100), (2_500_000, 3_571_286)):
            r = await custom(coins, f"c{coins}")
            assert r.status_code == 201, r.text
            assert (r.json()["coins"], r.json()["amount_minor"]) == (coins, cents)
            assert r.json()["status"] == "open"
        r = await viewer.post(
            "/v1/topups", {"package_id": packages[2]["id"], "idempotency_key": "p700"}
        )
        assert (r.json()["coins"], r.json()["amount_minor"]) == (700, 999)
        orders = order_count(client)

        assert_problem(await custom(29, "low"), 422, "invalid_coin_amount")
        assert_problem(await custom(0, "zero"), 422, "invalid_request")
        assert_problem(await custom(2_500_001, "high"), 422, "invalid_request")
        r = await viewer.post("/v1/topups", {"package_id": 999_999, "idempotency_key": "u1"})
        assert_problem(r, 404, "package_not_found")
        r = await viewer.post("/v1/topups", {"package_id": 2**62, "idempotency_key": "u2"})
        assert_problem(r, 404, "package_not_found")
        r = await viewer.post(
            "/v1/topups",
            {"package_id": packages[0]["id"], "currency": "EUR", "idempotency_key": "u3"},
        )
        assert_problem(r, 404, "package_not_found")
        r = await viewer.post(
            "/v1/topups", {"coins": 100, "currency": "EUR", "idempotency_key": "u4"}
        )
        assert_problem(r, 404, "no_packages")
        r = await viewer.post(
            "/v1/topups", {"package_id": packages[0]["id"], "coins": 100, "idempotency_key": "u5"}
        )
        assert_problem(r, 422, "package_or_coins")
        assert_problem(
            await viewer.post("/v1/topups", {"idempotency_key": "u6"}), 422, "package_or_coins"
        )
        # The same key for another amount is a conflict, not a second order.
        assert_problem(await custom(101, "c100"), 409, "idempotency_key_reused")
        assert order_count(client) == orders
        assert await viewer.coins() == 0


async def test_concurrent_and_retried_requests_charge_once(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        viewer, creator = await register(client), await register(client, "creator")
        packages = (await client.get("/v1/coin-packages")).json()

        # 20 identical top-ups at once: one order.
        responses = await asyncio.gather(
            *(
                viewer.post(
                    "/v1/topups", {"package_id": packages[2]["id"], "idempotency_key": "buy"}
                )
                for _ in range(20)
            )
        )
        assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
        assert len({r.json()["id"] for r in responses}) == 1
        assert order_count(client) == 1
        assert len((await viewer.get("/v1/topups")).json()) == 1
        await sandbox(client, responses[0].json(), "pay")
        assert await viewer.coins() == 700

        # 20 identical gifts at once: one charge.
        stream = await creator.go_live()
        responses = await asyncio.gather(
            *(viewer.gift(stream, "doughnut", count=3, key="same") for _ in range(20))
        )
        assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
        assert len({r.json()["send_id"] for r in responses}) == 1
        assert await viewer.coins() == 700 - 90
        assert (await creator.wallet())["diamonds"] == 90

        # A client that gives up waiting (the request is cancelled wherever it was) and retries
        # with the same key is charged once, whatever point the first attempt reached.
        charged = 90
        for i, timeout in enumerate((0, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.05)):
            key = f"retry-{i}"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(viewer.gift(stream, "perfume", key=key), timeout)
            r = await viewer.gift(stream, "perfume", key=key)
            assert r.status_code == 201, r.text
            charged += 20
            assert r.json()["balance_coins"] == 700 - charged
        await asyncio.sleep(0.1)  # anything the cancelled attempts left in flight has landed
        assert await viewer.coins() == 700 - charged
        assert (await creator.wallet())["diamonds"] == charged
        statement = (await creator.get("/v1/creators/me/statement")).json()
        assert statement["totals"]["coins"] == charged
