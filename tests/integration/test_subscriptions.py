"""Subscriptions on SQLite and PostgreSQL: subscribe, renew exactly once per period, grace,
lapse, cancel, a renewal racing a cancel, two sweepers racing on one database, and every
refusal as problem+json with nothing charged (docs/economy.md, "Subscriptions").

Time is a controllable clock (``clock.simulated_clock``): a period is an hour here, so the
tests move the clock by hours and call the sweep themselves (the app's own sweeper is set to
wait longer than any test runs)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
from economy_client import (
    ADMIN,
    HOUR_US,
    AppFactory,
    Clock,
    Person,
    assert_problem,
    clock,
    economy_app,
    grant,
    register,
)
from sqlalchemy import func, select

from giftwave.api.state import app_services
from giftwave.db.engine import make_engine
from giftwave.db.tables import accounts, subscription_periods, transfers
from giftwave.db.urls import DatabaseUrl
from giftwave.economy.spending import Spending
from giftwave.economy.subscriptions import (
    Subscription,
    Subscriptions,
    SubStatus,
    is_subscriber,
    subscriber_months,
)
from giftwave.economy.wallets import Wallets
from giftwave.identity.users import User, find_user
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.model import Outcome, Transfer, TransferCode
from giftwave.ledger.stores import open_store
from giftwave.ledger.verify import verify_ledger

__all__ = ["clock", "economy_app"]

PRICE = 500
SETTINGS: dict[str, Any] = {
    "subscription_period_s": 3600,
    "subscription_grace_s": 7200,
    "subscription_retry_s": 600,
    "subscription_sweep_interval_s": 3600,  # the tests sweep themselves
    "subscription_min_coins": 100,
    "subscription_max_coins": 10_000,
}


def subs_of(client: httpx.AsyncClient) -> Subscriptions:
    return app_services(client.app).economy.subscriptions  # type: ignore[attr-defined]


def charges(client: httpx.AsyncClient) -> list[str]:
    """The coins legs of every subscription charge in the ledger, in order."""
    db = app_services(client.app).db  # type: ignore[attr-defined]
    with db.connect() as conn:
        return list(
            conn.execute(
                select(transfers.c.id)
                .where(transfers.c.code == "subscription", transfers.c.id.like("%:c"))
                .order_by(transfers.c.seq)
            ).scalars()
        )


def ledger_size(client: httpx.AsyncClient) -> int:
    db = app_services(client.app).db  # type: ignore[attr-defined]
    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(transfers)).scalar_one())


def assert_ledger_clean(client: httpx.AsyncClient) -> None:
    db = app_services(client.app).db  # type: ignore[attr-defined]
    with db.connect() as conn:
        report = verify_ledger(conn)
    assert report.ok, report.problems


async def creator_with_price(client: httpx.AsyncClient, price: int = PRICE) -> Person:
    creator = await register(client, "creator")
    r = await creator.client.put(
        "/v1/me/subscription-price", json={"price_coins": price}, headers=creator.auth
    )
    assert r.status_code == 200, r.text
    assert r.json()["price_coins"] == price
    return creator


async def subscribe(viewer: Person, creator: Person) -> httpx.Response:
    return await viewer.post(f"/v1/creators/{creator.id}/subscription")


async def subscribed_viewers(
    client: httpx.AsyncClient, creator: Person, count: int, coins: int
) -> list[Person]:
    """``count`` new viewers, each granted ``coins`` and subscribed to ``creator``."""
    viewers = []
    for _ in range(count):
        viewer = await register(client)
        await grant(client, viewer, coins)
        assert (await subscribe(viewer, creator)).status_code == 201
        viewers.append(viewer)
    return viewers


async def subscription(viewer: Person, creator: Person) -> Subscription:
    subs = subs_of(viewer.client)
    mine = await asyncio.to_thread(subs.mine, viewer.id)
    return next(s for s, _ in mine if s.creator_id == creator.id)


async def test_subscribe_pays_the_creator_the_rate_once(
    economy_app: AppFactory, clock: Clock
) -> None:
    # 70 diamonds per 100 coins: 333 coins earn 233.1 diamonds, 233 whole and 10 hundredths.
    async with economy_app(**SETTINGS, creator_diamonds_per_100_coins=70) as client:
        creator = await creator_with_price(client, 333)
        viewer = await register(client)
        await grant(client, viewer, 1_000)
        r = await subscribe(viewer, creator)
        assert r.status_code == 201, r.text
        body = r.json()
        assert (body["status"], body["months"], body["has_access"]) == ("active", 1, True)
        again = await subscribe(viewer, creator)
        assert again.status_code == 200, again.text
        assert again.json()["id"] == body["id"]
        assert again.json()["paid_until_us"] == body["paid_until_us"]
        assert charges(client) == [f"sub:{body['id']}:1:c"]
        assert await viewer.coins() == 1_000 - 333
        wallet = await creator.wallet()
        assert wallet["diamonds"] == 233
        db = app_services(client.app).db  # type: ignore[attr-defined]
        with db.connect() as conn:
            fraction = conn.execute(
                select(accounts.c.credits_posted).where(
                    accounts.c.name == f"user:{creator.id}:diamond_fraction"
                )
            ).scalar_one()
        assert fraction == 10
        assert is_subscriber(db, creator.id, viewer.id)
        assert subscriber_months(db, creator.id, [viewer.id, creator.id]) == {viewer.id: 1}
        listed = (await viewer.get("/v1/me/subscriptions")).json()
        assert [(s["creator_id"], s["handle"]) for s in listed] == [
            (creator.id, creator.user["handle"])
        ]
        subs = (await creator.get("/v1/me/subscribers")).json()
        assert subs["total"] == 1
        assert subs["subscribers"][0]["subscriber_id"] == viewer.id
        assert_ledger_clean(client)


async def test_concurrent_subscribes_charge_once(economy_app: AppFactory, clock: Clock) -> None:
    async with economy_app(**SETTINGS) as client:
        creator = await creator_with_price(client)
        viewer = await register(client)
        await grant(client, viewer, 5_000)
        answers = await asyncio.gather(*(subscribe(viewer, creator) for _ in range(6)))
        assert sorted(r.status_code for r in answers) == [200] * 5 + [201]
        assert len({r.json()["id"] for r in answers}) == 1
        assert len(charges(client)) == 1
        assert await viewer.coins() == 5_000 - PRICE


async def test_refusals_are_problems_and_charge_nothing(
    economy_app: AppFactory, clock: Clock
) -> None:
    async with economy_app(**SETTINGS) as client:
        creator = await creator_with_price(client)
        viewer = await register(client)
        before = ledger_size(client)

        r = await creator.client.put(
            "/v1/me/subscription-price", json={"price_coins": 99}, headers=creator.auth
        )
        body = assert_problem(r, 422, "subscription_price_out_of_bounds")
        assert (body["min_coins"], body["max_coins"]) == (100, 10_000)
        r = await creator.client.put(
            "/v1/me/subscription-price", json={"price_coins": 10_001}, headers=creator.auth
        )
        assert_problem(r, 422, "subscription_price_out_of_bounds")
        r = await creator.client.put(
            "/v1/me/subscription-price", json={"price_coins": "lots"}, headers=creator.auth
        )
        assert r.status_code == 422
        assert r.headers["content-type"].startswith("application/problem+json")
        r = await viewer.client.put(
            "/v1/me/subscription-price", json={"price_coins": 500}, headers=viewer.auth
        )
        assert_problem(r, 403, "not_a_creator")
        r = await client.put("/v1/me/subscription-price", json={"price_coins": 500})
        assert r.status_code == 401
        assert (await client.get(f"/v1/creators/{creator.id}/subscription-price")).json()[
            "price_coins"
        ] == PRICE

        assert_problem(await subscribe(creator, creator), 403, "cannot_subscribe_self")
        other_viewer = await register(client)
        assert_problem(await subscribe(viewer, other_viewer), 404, "creator_not_found")
        no_price = await register(client, "creator")
        assert_problem(await subscribe(viewer, no_price), 409, "subscriptions_not_offered")
        assert_problem(await subscribe(viewer, creator), 402, "insufficient_coins")
        assert (await client.post(f"/v1/creators/{creator.id}/subscription")).status_code == 401
        assert_problem(await viewer.get("/v1/me/subscribers"), 403, "not_a_creator")
        r = await viewer.client.delete(
            f"/v1/creators/{creator.id}/subscription", headers=viewer.auth
        )
        assert_problem(r, 404, "subscription_not_found")

        await grant(client, viewer, 1_000)
        economy = app_services(client.app).economy  # type: ignore[attr-defined]
        await asyncio.to_thread(economy.wallets.set_frozen, viewer.id, True)
        before = ledger_size(client)
        assert_problem(await subscribe(viewer, creator), 403, "account_frozen")
        assert ledger_size(client) == before
        assert charges(client) == []
        assert (await viewer.get("/v1/me/subscriptions")).json() == []

        # Coins owed (a refunded top-up's debt): no subscription until it is settled.
        debtor = await register(client)
        await grant(client, debtor, 1_000)
        mine = await asyncio.to_thread(economy.wallets.user, debtor.id)
        owed = Transfer(f"debt:{debtor.id}", mine.coin_debt, mine.coins, 100, TransferCode.REFUND)
        assert await economy.engine.submit([owed]) == [Outcome.OK]
        body = assert_problem(await subscribe(debtor, creator), 403, "account_in_debt")
        assert body["debt_coins"] == 100
        assert charges(client) == []


async def test_subscription_changes_are_rate_limited(economy_app: AppFactory, clock: Clock) -> None:
    async with economy_app(**SETTINGS) as client:
        creator = await creator_with_price(client)
        viewer = await register(client)
        await grant(client, viewer, 1_000)
        codes = [(await subscribe(viewer, creator)).status_code for _ in range(12)]
        assert codes[0] == 201
        assert codes[-1] == 429, codes
        assert len(charges(client)) == 1


async def test_renew_grace_and_lapse(economy_app: AppFactory, clock: Clock) -> None:
    async with economy_app(**SETTINGS) as client:
        subs = subs_of(client)
        creator = await creator_with_price(client)
        viewer = await register(client)
        await grant(client, viewer, 2 * PRICE + 100)
        first = (await subscribe(viewer, creator)).json()
        r = await creator.client.put(  # a running subscription keeps the price it was taken at
            "/v1/me/subscription-price", json={"price_coins": 600}, headers=creator.auth
        )
        assert r.status_code == 200, r.text

        await subs.sweep()  # not due yet
        assert len(charges(client)) == 1
        clock.advance(1.01)
        await subs.sweep()
        await subs.sweep()  # the same period again: nothing more
        sub = await subscription(viewer, creator)
        assert (sub.status, sub.months) == (SubStatus.ACTIVE, 2)
        assert sub.paid_until_us == first["paid_until_us"] + HOUR_US  # on time: back to back
        assert len(charges(client)) == 2

        clock.advance(1.0)  # 100 coins left: short
        await subs.sweep()
        sub = await subscription(viewer, creator)
        assert (sub.status, sub.months, sub.last_failure) == (
            SubStatus.GRACE,
            2,
            "insufficient_funds",
        )
        assert not sub.has_access(clock())
        assert sub.grace_until_us == sub.paid_until_us + 2 * HOUR_US
        assert len(charges(client)) == 2

        await subs.sweep()  # the retry is not due yet
        clock.advance(0.2)
        await grant(client, viewer, PRICE)
        await subs.sweep()
        sub = await subscription(viewer, creator)
        assert (sub.status, sub.months) == (SubStatus.ACTIVE, 3)
        # Paid in the grace: the period starts when paid, none of the grace is charged for.
        assert sub.paid_until_us >= clock() + HOUR_US - 60_000_000
        assert len(charges(client)) == 3

        for _ in range(8):  # 100 coins again: short until the grace ends
            clock.advance(0.5)
            await subs.sweep()
        sub = await subscription(viewer, creator)
        assert sub.status is SubStatus.LAPSED
        assert len(charges(client)) == 3
        db = app_services(client.app).db  # type: ignore[attr-defined]
        assert not is_subscriber(db, creator.id, viewer.id)

        # Taken again: a new period now at today's price, the months go on (100 + 501 coins).
        await grant(client, viewer, 501)
        r = await subscribe(viewer, creator)
        assert r.status_code == 201, r.text
        assert (r.json()["status"], r.json()["months"], r.json()["price_coins"]) == (
            "active",
            4,
            600,
        )
        assert await viewer.coins() == 1
        assert (await creator.wallet())["diamonds"] == 3 * PRICE + 600
        assert_ledger_clean(client)


async def test_cancel_keeps_access_to_the_end_then_resubscribe(
    economy_app: AppFactory, clock: Clock
) -> None:
    async with economy_app(**SETTINGS) as client:
        subs = subs_of(client)
        creator = await creator_with_price(client)
        viewer = await register(client)
        await grant(client, viewer, 3 * PRICE)
        await subscribe(viewer, creator)
        r = await viewer.client.delete(
            f"/v1/creators/{creator.id}/subscription", headers=viewer.auth
        )
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["has_access"]) == ("cancelled", True)
        again = await viewer.client.delete(
            f"/v1/creators/{creator.id}/subscription", headers=viewer.auth
        )
        assert again.json()["status"] == "cancelled"

        # Subscribing again within the paid period resumes it: nothing charged.
        r = await subscribe(viewer, creator)
        assert (r.status_code, r.json()["status"]) == (200, "active")
        await viewer.client.delete(f"/v1/creators/{creator.id}/subscription", headers=viewer.auth)

        clock.advance(1.5)
        await subs.sweep()
        assert len(charges(client)) == 1  # no renewal, no refund
        listed = (await viewer.get("/v1/me/subscriptions")).json()
        assert (listed[0]["status"], listed[0]["has_access"]) == ("ended", False)

        figures = (await creator.get("/v1/me/subscribers")).json()
        assert (figures["total"], figures["new_30d"], figures["ended_30d"]) == (0, 1, 1)
        assert figures["revenue_coins_30d"] == PRICE

        r = await subscribe(viewer, creator)
        assert r.status_code == 201
        assert (r.json()["status"], r.json()["months"]) == ("active", 2)
        assert len(charges(client)) == 2
        figures = (await creator.get("/v1/me/subscribers")).json()
        assert (figures["total"], figures["new_30d"], figures["ended_30d"]) == (1, 1, 0)
        assert (figures["revenue_coins_30d"], figures["revenue_diamonds_30d"]) == (2 * PRICE,) * 2


async def test_renewal_racing_a_cancel(economy_app: AppFactory, clock: Clock) -> None:
    """A cancel the sweep sees first: no charge. A cancel landing while the renewal charges:
    the period it paid is served (cancelled, access to its end), the next is not charged."""
    async with economy_app(**SETTINGS) as client:
        subs = subs_of(client)
        creator = await creator_with_price(client)
        early, late = await subscribed_viewers(client, creator, 2, 3 * PRICE)
        clock.advance(1.01)

        await subs.cancel(early, creator.id)
        due = await asyncio.to_thread(subs.due, clock())
        assert [s.subscriber_id for s in due] == [late.id]
        await subs.cancel(late, creator.id)  # after the sweep read it as due
        renewed = await subs.renew(due[0])

        assert (renewed.status, renewed.months) == (SubStatus.CANCELLED, 2)
        assert renewed.has_access(clock())
        assert await early.coins() == 2 * PRICE
        assert await late.coins() == PRICE
        clock.advance(1.5)
        await subs.sweep()
        assert await late.coins() == PRICE
        assert len(charges(client)) == 3


async def test_blocked_or_frozen_renewal_charges_nothing_then_lapses(
    economy_app: AppFactory, clock: Clock
) -> None:
    async with economy_app(**SETTINGS) as client:
        subs = subs_of(client)
        creator = await creator_with_price(client)
        blocked, frozen = await subscribed_viewers(client, creator, 2, 3 * PRICE)
        r = await client.patch(
            f"/v1/admin/users/{blocked.id}", json={"status": "blocked"}, headers=ADMIN
        )
        assert r.status_code == 200, r.text
        economy = app_services(client.app).economy  # type: ignore[attr-defined]
        await asyncio.to_thread(economy.wallets.set_frozen, frozen.id, True)

        clock.advance(1.01)
        await subs.sweep()
        by_viewer = {
            s.subscriber_id: s for s in await asyncio.to_thread(subs.due, clock() + HOUR_US)
        }
        assert by_viewer[blocked.id].status is SubStatus.GRACE
        assert by_viewer[blocked.id].last_failure == "account_blocked"
        assert by_viewer[frozen.id].last_failure == "debit_account_frozen"
        for _ in range(6):
            clock.advance(0.5)
            await subs.sweep()
        assert (await subscription(frozen, creator)).status is SubStatus.LAPSED
        assert len(charges(client)) == 2  # the two first periods only
        assert_ledger_clean(client)


async def test_a_paid_period_the_row_missed_is_not_charged_again(
    economy_app: AppFactory, clock: Clock
) -> None:
    """A node died after the ledger committed a renewal, before the row moved: the next sweep
    names the same transfers, the ledger answers that they exist, and the row catches up."""
    async with economy_app(**SETTINGS) as client:
        subs = subs_of(client)
        creator = await creator_with_price(client)
        viewer = await register(client)
        await grant(client, viewer, 3 * PRICE)
        await subscribe(viewer, creator)
        clock.advance(1.01)
        sub = await subscription(viewer, creator)
        paid = await subs._charge(sub, 2, sub.paid_until_us, viewer_user(client, viewer))
        assert len(charges(client)) == 2
        clock.advance(24)  # and the next day's spend leg differs: still the same period
        await subs.sweep()
        sub = await subscription(viewer, creator)
        assert sub.months >= 2
        db = app_services(client.app).db  # type: ignore[attr-defined]
        with db.connect() as conn:
            ends = conn.execute(
                select(subscription_periods.c.ends_at_us).where(
                    subscription_periods.c.subscription_id == sub.id,
                    subscription_periods.c.period == 2,
                )
            ).scalar_one()
        assert ends == paid.ends_at_us  # type: ignore[union-attr]
        assert charges(client)[:2] == [f"sub:{sub.id}:1:c", f"sub:{sub.id}:2:c"]
        assert len(set(charges(client))) == len(charges(client))
        assert_ledger_clean(client)


def viewer_user(client: httpx.AsyncClient, person: Person) -> User:
    db = app_services(client.app).db  # type: ignore[attr-defined]
    with db.connect() as conn:
        user = find_user(conn, person.id)
    assert user is not None
    return user


async def test_two_sweepers_renew_each_period_once(
    economy_app: AppFactory, db_url: DatabaseUrl, clock: Clock
) -> None:
    """Two nodes' sweepers (two engines, two ledger writers) on one database, racing."""
    async with economy_app(**SETTINGS) as client:
        subs = subs_of(client)
        creator = await creator_with_price(client)
        viewers = await subscribed_viewers(client, creator, 8, 4 * PRICE)
        other_db = make_engine(db_url)
        other_ledger = PostingEngine(open_store(db_url))
        try:
            async with other_ledger:
                wallets = Wallets(other_db)
                spending = app_services(client.app).economy.spending  # type: ignore[attr-defined]
                other = Subscriptions(
                    other_db,
                    other_ledger,
                    wallets,
                    subs.policy,
                    Spending(other_db, wallets, spending.policy),
                )
                for _ in range(3):
                    clock.advance(1.01)
                    await asyncio.gather(subs.sweep(), other.sweep(), subs.sweep(), other.sweep())
        finally:
            other_db.dispose()
        for viewer in viewers:
            sub = await subscription(viewer, creator)
            assert (sub.status, sub.months) == (SubStatus.ACTIVE, 4)
            assert await viewer.coins() == 0
        assert len(charges(client)) == 4 * len(viewers)
        assert (await creator.wallet())["diamonds"] == 4 * len(viewers) * PRICE
        assert_ledger_clean(client)


async def _page(client: httpx.AsyncClient, path: str, who: Person | None) -> httpx.Response:
    """A page as a browser sees it: the session cookie, never a bearer token."""
    client.cookies.clear()
    token = who.auth["Authorization"].removeprefix("Bearer ") if who else None
    return await client.get(path, headers={"Cookie": f"gw_session={token}"} if token else {})


async def test_the_studio_shows_price_subscribers_and_figures_in_three_languages(
    economy_app: AppFactory, clock: Clock
) -> None:
    async with economy_app(**SETTINGS) as client:
        creator = await creator_with_price(client, 700)
        [fan] = await subscribed_viewers(client, creator, 1, 1_000)
        viewer = await register(client)
        assert (await _page(client, "/studio/subscriptions", None)).status_code == 303
        assert (await _page(client, "/studio/subscriptions", viewer)).status_code == 403
        words = {
            "en": ("Subscribed now", "Coins per period"),
            "es": ("Suscritos ahora", "Monedas por periodo"),
            "ar": ("المشتركون الآن", "عملات لكل فترة"),
        }
        for lang, (subscribed, per_period) in words.items():
            r = await _page(client, f"/studio/subscriptions?lang={lang}", creator)
            assert r.status_code == 200, r.text
            html = r.text
            assert (f'<html lang="{lang}" dir="rtl">' in html) == (lang == "ar")
            assert subscribed in html
            assert per_period in html
            assert 'name="price_coins"' in html
            assert 'value="700"' in html
            assert f'<tr data-user="{fan.id}"><td><bdi>@{fan.user["handle"]}</bdi></td>' in html
            assert 'src="/static/studio_subscriptions.js"' in html
            assert "<script>" not in html  # no inline script under the strict CSP
        en = (await _page(client, "/studio/subscriptions", creator)).text
        assert re.search(r'id="sub-coins"><bdi>700</bdi>', en)
        assert re.search(r'id="sub-paying"><bdi>1</bdi>', en)
