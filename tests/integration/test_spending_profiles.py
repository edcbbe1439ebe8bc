"""The senders' spending profiles (limits, time zone, self-exclusion) as the gift path keeps
them: read many at once, read again in the background before they lapse, and never stored
from a read that a change on this node overtook; and a new sender's gifts in flight read
what is not cached once."""

from __future__ import annotations

import asyncio
from typing import Any

from economy_client import AppFactory, economy_app, grant, register
from sqlalchemy import Engine, insert

from giftwave.api.state import app_services
from giftwave.config import Settings
from giftwave.db.tables import notify_settings, self_exclusions, spending_limits
from giftwave.economy import spending
from giftwave.economy.spending import Spending, SpendingPolicy
from giftwave.economy.wallets import Wallets

__all__ = ["economy_app"]


def _rows(sa_engine: Engine) -> None:
    with sa_engine.begin() as conn:
        conn.execute(
            insert(spending_limits),
            [
                {
                    "user_id": 1,
                    "period": period,
                    "limit_coins": coins,
                    "unit": "COIN",
                    "entered": coins,
                    "updated_at_us": 1,
                }
                for period, coins in (("day", 500), ("month", 9000))
            ],
        )
        conn.execute(
            insert(notify_settings).values(
                user_id=1,
                time_zone="Europe/Madrid",
                quiet_from_h=22,
                quiet_to_h=8,
                updated_at_us=1,
            )
        )
        conn.execute(insert(self_exclusions).values(user_id=2, starts_at_us=1, ends_at_us=99))


def _spending(sa_engine: Engine) -> Spending:
    settings = Settings(database_url=str(sa_engine.url))
    return Spending(sa_engine, Wallets(sa_engine), SpendingPolicy.configured(settings))


def test_many_profiles_read_at_once_are_each_as_read_alone(sa_engine: Engine) -> None:
    _rows(sa_engine)
    with sa_engine.connect() as conn:
        together = spending._load_profiles(conn, [1, 2, 3])
        alone = {user_id: spending._load_profile(conn, user_id) for user_id in (1, 2, 3)}
    assert together == alone
    assert {s.period.value for s in together[1].limits} == {"day", "month"}
    assert together[1].time_zone == "Europe/Madrid"
    assert together[2].excluded_until_us == 99
    assert together[3].limits == ()
    assert together[3].time_zone == "UTC"
    assert together[3].excluded_until_us is None


async def test_a_profile_near_its_lapse_is_read_again_meanwhile(sa_engine: Engine) -> None:
    _rows(sa_engine)
    spend = _spending(sa_engine)
    assert spend.cached_refreshing(1) is None  # nothing kept yet: the gift path reads it
    first = spend.profile(1)
    assert spend.cached_refreshing(1) == first  # fresh: served, no read
    spend._profiles._entries[1] = (0.0, first)  # as if stored long ago (past refresh, in ttl)
    spend._profiles._ttl_s = 1e12
    assert spend.cached_refreshing(1) == first  # still served at once...
    for _ in range(100):  # ...and read again in the background
        await asyncio.sleep(0.01)
        if spend._profiles._entries[1][0] > 0.0:
            break
    assert spend._profiles._entries[1][0] > 0.0


def test_a_read_overtaken_by_a_change_here_stores_nothing(sa_engine: Engine) -> None:
    _rows(sa_engine)
    spend = _spending(sa_engine)
    real = spending._load_profiles

    def changed_meanwhile(conn, user_ids):  # type: ignore[no-untyped-def]
        found = real(conn, user_ids)
        spend.forget(1)  # the viewer lowered a limit on this node while we read
        return found

    spending._load_profiles = changed_meanwhile
    try:
        spend._read_profiles([1])
    finally:
        spending._load_profiles = real
    assert spend.cached(1) is None
    spend._read_profiles([1])
    assert spend.cached(1) is not None


async def test_a_new_senders_gifts_in_flight_read_once(economy_app: AppFactory) -> None:
    """Eight gifts at once from a sender nothing is cached for: one read of their wallet,
    limits and the room (``Gifting._load``), not eight on the shared worker threads."""
    async with economy_app() as client:
        creator, viewer = await register(client, "creator"), await register(client)
        await grant(client, viewer, 1_000)
        stream = await creator.go_live()
        gifting = app_services(client.app).economy.gifting  # type: ignore[attr-defined]
        loads = 0
        real = gifting._load

        def counted(*args: Any) -> Any:
            nonlocal loads
            loads += 1
            return real(*args)

        gifting._load = counted
        sent = await asyncio.gather(*(viewer.gift(stream, key=f"k{n}") for n in range(8)))
        assert [r.status_code for r in sent] == [201] * 8
        assert loads == 1


def test_many_viewers_months_read_together_are_each_as_read_alone(sa_engine: Engine) -> None:
    """The reminders' month reads, grouped per time zone's month: the same figures as one by one."""
    _rows(sa_engine)  # viewer 1 in Madrid, 2 and 3 in UTC
    spend = _spending(sa_engine)
    together = spend.months_and_averages([1, 2, 3])
    assert together == {u: spend.months_and_averages([u])[u] for u in (1, 2, 3)}
    assert all(coins == 0 and average == 0 for _, coins, average in together.values())


async def test_months_read_together_count_each_viewers_own_gifts(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        creator = await register(client, "creator")
        ana, ben, cy = [await register(client) for _ in range(3)]
        for person in (ana, ben):
            await grant(client, person, 1_000)
        stream = await creator.go_live()
        for n in range(3):
            assert (await ana.gift(stream, key=f"a{n}")).status_code == 201
        assert (await ben.gift(stream, "rose", 5, key="b")).status_code == 201
        spend = app_services(client.app).economy.spending  # type: ignore[attr-defined]
        ids = [ana.id, ben.id, cy.id]
        together = spend.months_and_averages(ids)
        assert together == {u: spend.months_and_averages([u])[u] for u in ids}
        assert [together[user_id][1] for user_id in ids] == [3, 5, 0]  # a rose is 1 coin


async def test_a_new_time_zone_drops_the_cached_profile_at_once(economy_app: AppFactory) -> None:
    """The time zone draws the viewer's spending days and months: setting it drops the profile
    the gift path keeps (every node, on the notice), as a changed limit does; the cache's lapse
    is only the bound on a notice lost."""
    async with economy_app() as client:
        creator, viewer = await register(client, "creator"), await register(client)
        await grant(client, viewer, 1_000)
        stream = await creator.go_live()
        spend = app_services(client.app).economy.gifting._spending  # type: ignore[attr-defined]
        assert (await viewer.gift(stream, key="before")).status_code == 201
        assert spend.cached(viewer.id).time_zone == "UTC"

        r = await viewer.client.put(
            "/v1/me/notify-settings",
            json={"time_zone": "Asia/Tokyo", "quiet_from_h": 23, "quiet_to_h": 7},
            headers=viewer.auth,
        )
        assert r.status_code == 200, r.text
        assert spend.cached(viewer.id) is None
        assert (await viewer.gift(stream, key="after")).status_code == 201
        assert spend.cached(viewer.id).time_zone == "Asia/Tokyo"
