"""Responsible spending (issue 24, the viewer's side), on SQLite and PostgreSQL: a viewer's own
limits per day, week and month held by the ledger to the coin (a gift, a paid message, a
subscription), lowering at once and raising after a cooling-off, self-exclusion, the young
adults' default, the spending report and its e-mail text, and every bad input refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Final

import pytest
from economy_client import (
    ADMIN,
    AppFactory,
    Clock,
    Person,
    assert_problem,
    clock,
    economy_app,
    grant,
    register,
)
from sqlalchemy import select

from giftwave.api.state import app_services
from giftwave.db.tables import accounts
from giftwave.ledger.verify import verify_ledger

__all__ = ["clock", "economy_app"]

NO_CAP: Final = {"gift_daily_spend_max_coins": 0}


async def put_limits(person: Person, **body: object) -> object:
    return await person.client.put("/v1/me/spending/limits", json=body, headers=person.auth)


def limit_of(body: dict[str, object], period: str) -> dict[str, object]:
    limits = body["limits"]
    assert isinstance(limits, list)
    found: dict[str, object] = next(x for x in limits if x["period"] == period)
    return found


async def viewer_and_stream(client: object, coins: int = 10_000) -> tuple[Person, str]:
    viewer, creator = await register(client), await register(client, "creator")  # type: ignore[arg-type]
    await grant(client, viewer, coins)  # type: ignore[arg-type]
    return viewer, await creator.go_live()


async def test_a_lowered_day_limit_stops_gifts_to_the_coin_and_a_raise_waits(
    economy_app: AppFactory, clock: Clock
) -> None:
    async with economy_app(**NO_CAP) as client:
        viewer, stream = await viewer_and_stream(client)
        r = await put_limits(viewer, day=150)
        assert r.status_code == 200, r.text
        day = limit_of(r.json(), "day")
        assert (day["limit_coins"], day["unit"], day["pending_coins"]) == (150, "COIN", None)

        assert (await viewer.gift(stream, "hand_hearts")).status_code == 201  # 100
        for _ in range(50):
            assert (await viewer.gift(stream, "rose")).status_code == 201  # 150
        body = assert_problem(await viewer.gift(stream, "rose"), 429, "spending_limit_reached")
        assert (body["limit"], body["limit_coins"], body["spent_coins"]) == ("day", 150, 150)
        resets = datetime.fromisoformat(body["resets_at"])
        assert timedelta(0) < resets - datetime.now(UTC) + timedelta(hours=0) <= timedelta(days=1)
        assert await viewer.coins() == 10_000 - 150

        # Raising waits out the cooling-off: the limit in force is unchanged meanwhile.
        r = await put_limits(viewer, day=1_000)
        assert r.status_code == 200, r.text
        day = limit_of(r.json(), "day")
        assert (day["limit_coins"], day["pending_coins"]) == (150, 1_000)
        applies = datetime.fromisoformat(str(day["pending_applies_at"]))
        assert applies - datetime.now(UTC) > timedelta(hours=23, minutes=59)
        assert_problem(await viewer.gift(stream, "rose"), 429, "spending_limit_reached")
        # The same raise again is a retry, not a new clock; another raise is refused.
        again = await put_limits(viewer, day=1_000)
        assert limit_of(again.json(), "day")["pending_applies_at"] == day["pending_applies_at"]
        body = assert_problem(
            await put_limits(viewer, day=2_000), 409, "spending_limit_raise_pending"
        )
        assert body["applies_at"]
        assert_problem(await put_limits(viewer, day=None), 409, "spending_limit_raise_pending")

        clock.advance(24.01)
        r = await viewer.get("/v1/me/spending")
        assert (
            limit_of(r.json(), "day")["limit_coins"],
            limit_of(r.json(), "day")["pending_coins"],
        ) == (1_000, None)
        assert (await viewer.gift(stream, "hand_hearts")).status_code == 201


async def test_lowering_cancels_a_pending_raise_at_once(economy_app: AppFactory) -> None:
    async with economy_app(**NO_CAP) as client:
        viewer, stream = await viewer_and_stream(client)
        assert (await put_limits(viewer, week=500)).status_code == 200
        assert (await put_limits(viewer, week=5_000)).status_code == 200
        r = await put_limits(viewer, week=100)
        week = limit_of(r.json(), "week")
        assert (week["limit_coins"], week["pending_coins"]) == (100, None)
        assert (await viewer.gift(stream, "hand_hearts")).status_code == 201
        body = assert_problem(await viewer.gift(stream, "rose"), 429, "spending_limit_reached")
        assert (body["limit"], body["limit_coins"], body["spent_coins"]) == ("week", 100, 100)


async def test_week_and_month_legs_are_given_back_by_a_reversal(economy_app: AppFactory) -> None:
    async with economy_app(gift_daily_spend_max_coins=1_000_000) as client:
        viewer, stream = await viewer_and_stream(client)
        other, other_stream = await viewer_and_stream(client)
        assert (await put_limits(viewer, week=300, month=200)).status_code == 200
        first = await viewer.gift(stream, "hand_hearts", count=2)
        assert first.status_code == 201, first.text
        body = assert_problem(await viewer.gift(stream, "rose"), 429, "spending_limit_reached")
        assert (body["limit"], body["spent_coins"]) == ("month", 200)

        r = await client.post(
            f"/v1/admin/gift-sends/{first.json()['send_id']}/reverse", headers=ADMIN
        )
        assert r.status_code == 200, r.text
        again = await viewer.gift(stream, "hand_hearts", count=2)
        assert again.status_code == 201, again.text

        # Everyone else's gift carries no leg more than before: the day's only.
        assert (await other.gift(other_stream, "rose")).status_code == 201
        db = app_services(client.app).db  # type: ignore[attr-defined]
        with db.connect() as conn:
            names = set(conn.execute(select(accounts.c.name)).scalars())
            assert not any(n.startswith(f"user:{other.id}:spent:week") for n in names)
            assert not any(n.startswith(f"user:{other.id}:spent:month") for n in names)
            assert any(n.startswith(f"user:{viewer.id}:spent:month:") for n in names)
        with db.connect() as conn:
            assert verify_ledger(conn).ok


async def test_a_limit_in_money_is_converted_and_remembered(economy_app: AppFactory) -> None:
    async with economy_app(**NO_CAP) as client:
        viewer, _ = await viewer_and_stream(client)
        r = await put_limits(viewer, unit="USD", month=1_000)  # ten dollars
        assert r.status_code == 200, r.text
        month = limit_of(r.json(), "month")
        assert (month["unit"], month["entered"]) == ("USD", 1_000)
        coins = month["limit_coins"]
        assert isinstance(coins, int)
        assert coins > 0
        # Ten dollars buys no more coins than the dearest package's rate gives.
        assert isinstance(month["limit_money"], int)
        assert 0 < month["limit_money"] <= 1_000
        assert_problem(await put_limits(viewer, unit="XYZ", day=5), 422, "invalid_spending_limit")


@pytest.mark.parametrize(
    "body",
    [
        {"day": 0},
        {"day": -5},
        {"week": 2**60},
        {"month": 10**30},
        {"day": 1.5},
        {"day": "100"},
        {"day": True},
        {},
        {"unit": "COIN"},
        {"year": 5},
    ],
)
async def test_bad_limits_are_refused_and_write_nothing(
    economy_app: AppFactory, body: dict[str, object]
) -> None:
    async with economy_app() as client:
        viewer = await register(client)
        r = await put_limits(viewer, **body)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        state = (await viewer.get("/v1/me/spending")).json()
        assert all(x["limit_coins"] is None or x["max_coins"] for x in state["limits"])


async def test_self_exclusion_stops_spending_and_cannot_be_shortened(
    economy_app: AppFactory, clock: Clock
) -> None:
    async with economy_app() as client:
        viewer, stream = await viewer_and_stream(client)
        past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        far = (datetime.now(UTC) + timedelta(days=100 * 366)).isoformat()
        for bad in (
            {"ends_at": past},
            {"ends_at": far},
            {"days": 0},
            {},
            {"days": 3, "ends_at": far},
        ):
            r = await viewer.post("/v1/me/spending/exclusion", bad)
            assert r.status_code == 422, (bad, r.text)
        assert (await viewer.gift(stream, "rose")).status_code == 201

        r = await viewer.post("/v1/me/spending/exclusion", {"days": 7})
        assert r.status_code == 200, r.text
        until = r.json()["excluded_until"]
        body = assert_problem(await viewer.gift(stream, "rose"), 403, "self_excluded")
        assert body["until"]
        packages = (await client.get("/v1/coin-packages")).json()
        r = await viewer.post(
            "/v1/topups", {"package_id": packages[0]["id"], "idempotency_key": "t1"}
        )
        assert_problem(r, 403, "self_excluded")
        assert_problem(
            await viewer.post("/v1/me/spending/exclusion", {"days": 2}),
            409,
            "self_exclusion_cannot_shorten",
        )
        longer = await viewer.post("/v1/me/spending/exclusion", {"days": 10})
        assert longer.status_code == 200, longer.text
        assert longer.json()["excluded_until"] > until

        clock.advance(10 * 24 + 1)
        assert (await viewer.gift(stream, "rose")).status_code == 201


async def test_a_young_adult_has_a_monthly_default_they_may_lower_not_raise(
    economy_app: AppFactory,
) -> None:
    nineteen = (date.today() - timedelta(days=19 * 366)).isoformat()
    async with economy_app(spending_young_adult_month_coins=300) as client:
        young = await register(client, birth_date=nineteen)
        creator = await register(client, "creator")
        await grant(client, young, 1_000)
        stream = await creator.go_live()
        month = limit_of((await young.get("/v1/me/spending")).json(), "month")
        assert (month["limit_coins"], month["max_coins"]) == (300, 300)
        assert_problem(await put_limits(young, month=301), 403, "young_adult_limit")
        assert_problem(await put_limits(young, month=None), 403, "young_adult_limit")
        assert (await put_limits(young, month=200)).status_code == 200
        assert (await young.gift(stream, "hand_hearts", count=2)).status_code == 201
        assert_problem(await young.gift(stream, "rose"), 429, "spending_limit_reached")


async def test_the_report_and_its_email_text(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        viewer, stream = await viewer_and_stream(client)
        assert (await viewer.gift(stream, "hand_hearts", count=3)).status_code == 201
        r = await viewer.get("/v1/me/spending/report")
        assert r.status_code == 200, r.text
        this = r.json()["this_month"]
        assert this["coins"] == 300
        assert [c["coins"] for c in this["per_creator"]] == [300]
        assert sum(d["coins"] for d in this["per_day"]) == 300
        assert this["money"] > 0
        text = await viewer.get("/v1/me/spending/summary.txt")
        assert text.status_code == 200
        assert text.headers["content-type"].startswith("text/plain")
        assert "This month: 300 coins" in text.text
        assert f"@{this['per_creator'][0]['handle']}  300 coins" in text.text


async def test_only_ones_own_spending(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        viewer, other = await register(client), await register(client)
        assert (await viewer.get(f"/v1/users/{viewer.id}/spending")).status_code == 200
        assert_problem(await viewer.get(f"/v1/users/{other.id}/spending"), 404, "user_not_found")
        for method, path in (
            ("GET", "/v1/me/spending"),
            ("PUT", "/v1/me/spending/limits"),
            ("POST", "/v1/me/spending/exclusion"),
            ("GET", "/v1/me/spending/report"),
            ("GET", "/v1/me/spending/summary.txt"),
        ):
            r = await client.request(method, path, json={"day": 1})
            assert_problem(r, 401, r.json()["code"])


@pytest.mark.parametrize("language", ["en", "es", "ar"])
async def test_the_spending_page_in_each_language(economy_app: AppFactory, language: str) -> None:
    async with economy_app(**NO_CAP) as client:
        viewer, stream = await viewer_and_stream(client)
        assert (await viewer.gift(stream, "hand_hearts")).status_code == 201
        assert (await put_limits(viewer, day=500)).status_code == 200
        assert (await put_limits(viewer, day=900)).status_code == 200
        token = viewer.auth["Authorization"].removeprefix("Bearer ")
        client.cookies.set("gw_session", token)
        r = await client.get("/me/spending", headers={"Accept-Language": language})
        assert r.status_code == 200, r.text
        assert f'lang="{language}"' in r.text
        assert ('dir="rtl"' in r.text) == (language == "ar")
        assert 'id="pending-day"' in r.text  # the raise waiting out its cooling-off
        assert 'id="per-creator"' in r.text
        assert "<script>" not in r.text  # strict CSP: no inline script
        client.cookies.clear()
        anonymous = await client.get("/me/spending")
        assert anonymous.status_code == 303
