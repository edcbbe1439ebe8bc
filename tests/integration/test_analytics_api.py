"""Economy health over the API, on SQLite and PostgreSQL: empty states first, then a small
economy (top-ups, a refund, a grant, gifts, a reversal, a payout) whose figures must match the
ledger; CSV beside JSON; who may see what; and the rollup job never counting twice."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

from economy_client import ADMIN, AppFactory, assert_problem, economy_app, register, sandbox
from sqlalchemy import Engine, select

from giftwave.analytics.reports import creator_report, economy_report
from giftwave.analytics.rollup import Rollup, rebuild_gifter_buckets
from giftwave.analytics.viewers import ViewerSampler
from giftwave.clock import simulated_clock
from giftwave.db.engine import make_engine
from giftwave.db.tables import analytics_gifter_buckets, analytics_stream_viewers
from giftwave.db.urls import DatabaseUrl
from giftwave.economy.wallets import Wallets

__all__ = ["economy_app"]


async def _json(client: Any, path: str, headers: dict[str, str]) -> dict[str, Any]:
    r = await client.get(path, headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_health_figures_empty_then_from_the_ledger(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app(payout_min_cents=100) as client:
        # An empty economy: zeros and empty series, never an error; the page renders.
        empty = await _json(client, "/v1/admin/analytics/economy", ADMIN)
        assert (empty["coins_sold"], empty["gifters"], empty["gini"]) == (0, 0, 0.0)
        assert empty["lorenz"] == []
        assert empty["days"] == []
        assert empty["cohorts"] == []
        creator = await register(client, "creator")
        quiet = await creator.go_live("nobody gifts")
        quiet_report = await _json(client, f"/v1/streams/{quiet}/analytics", creator.auth)
        assert (quiet_report["gifts"], quiet_report["spikes"]) == (0, [])
        csv_empty = await client.get(
            "/v1/admin/analytics/economy?format=csv&table=days", headers=ADMIN
        )
        assert csv_empty.text.splitlines() == [
            "day,coins_sold,coins_spent,diamonds_earned,diamonds_paid_out,topups,gifts,"
            "coins_reversed"
        ]
        r = await creator.post(f"/v1/streams/{quiet}/end")
        assert r.status_code == 200, r.text

        # A small economy: three viewers, one of them a whale.
        stream = await creator.go_live("tonight")
        whale, fan, small = [await register(client) for _ in range(3)]
        await whale.buy(7000)
        await fan.buy(700)
        refunded = await small.buy(70)
        await sandbox(client, refunded, "refund")  # 70 coins clawed back (a debt: 70 - 0 held)
        grant = {"coins": 50, "idempotency_key": "goodwill"}
        r = await client.post(f"/v1/admin/users/{small.id}/coins", json=grant, headers=ADMIN)
        assert r.status_code == 200, r.text
        for person, gift, count in ((whale, "disco_ball", 3), (fan, "rose", 20)):
            r = await person.gift(stream, gift, count)
            assert r.status_code == 201, r.text
        r = await whale.gift(stream, "galaxy", 2)
        assert r.status_code == 201, r.text
        r = await client.post(f"/v1/admin/gift-sends/{r.json()['send_id']}/reverse", headers=ADMIN)
        assert r.status_code == 200, r.text
        r = await creator.post("/v1/payouts", {"diamonds": 1000, "idempotency_key": "cash"})
        assert r.status_code == 201, r.text
        r = await client.post(f"/v1/admin/payouts/{r.json()['id']}/approve", json={}, headers=ADMIN)
        assert r.status_code == 200, r.text

        await asyncio.sleep(1.1)  # the catch-up runs at most once a second
        e = await _json(client, "/v1/admin/analytics/economy", ADMIN)
        ledger_db = make_engine(db_url)
        totals = Wallets(ledger_db).totals()
        ledger_db.dispose()
        # The rollups agree with the platform accounts of the ledger itself.
        assert e["coins_sold"] == 7000 + 700 + 70
        assert e["coins_granted"] == 50
        assert e["coins_spent"] == totals.coins_spent == 3000 + 20
        assert e["coins_outstanding"] == totals.coins_outstanding
        assert e["diamonds_earned"] == totals.diamonds_issued == 3020
        assert e["diamonds_paid_out"] == totals.diamonds_paid_out == 1000
        assert (e["topups"], e["refunds"], e["coins_refunded"], e["coins_reversed"]) == (
            3,
            1,
            70,
            2000,
        )
        assert e["refund_rate"] == 1 / 3
        assert e["gifters"] == 2
        assert e["top1pct_gifters"] == 1
        assert e["top1pct_share"] == 3000 / 3020
        assert abs(e["gini"] - (3000 - 20) / (2 * 3020)) < 1e-9  # two holders: (b - a) / 2(a + b)
        assert e["lorenz"][0] == [0.0, 0.0]
        assert e["lorenz"][-1] == [1.0, 1.0]
        assert (e["creators"], e["creators_above_payout_min"]) == (1, 1)  # 3,020 diamonds ≥ $1
        assert [c["gifters"] for c in e["cohorts"]] == [2]

        me = await _json(client, "/v1/creators/me/analytics", creator.auth)
        assert (me["gifts"], me["coins"], me["gifters"]) == (2, 3020, 2)
        assert me["top1_share"] == 3000 / 3020
        assert me["top10_share"] == 1.0
        assert me["average_gift_coins"] == 1510.0
        s = await _json(client, f"/v1/streams/{stream}/analytics", creator.auth)
        assert (s["gifts"], s["coins"], s["unique_gifters"]) == (2, 3020, 2)
        assert s["top1_share"] == 3000 / 3020
        assert s["new_followers"] == 0
        # Two follow the creator during the stream; one thinks better of it.
        for person in (whale, fan):
            r = await person.client.put(f"/v1/me/following/{creator.id}", headers=person.auth)
            assert r.status_code == 201, r.text
        r = await fan.client.delete(f"/v1/me/following/{creator.id}", headers=fan.auth)
        assert r.status_code == 204, r.text
        s = await _json(client, f"/v1/streams/{stream}/analytics", creator.auth)
        assert s["new_followers"] == 1

        # CSV: the same figures as a table; a formula-looking cell would be quoted.
        r = await client.get(
            "/v1/creators/me/analytics?format=csv&table=days", headers=creator.auth
        )
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(r.text)))
        assert rows[0] == ["day", "gifts", "coins", "diamonds"]
        assert [int(v) for v in rows[1][1:]] == [2, 3020, 3020]
        r = await client.get("/v1/admin/analytics/economy?format=csv&table=lorenz", headers=ADMIN)
        assert r.text.splitlines()[0] == "share_of_gifters,share_of_coins"

        # Bad input and strangers: problem+json, never a 500.
        assert_problem(
            await client.get("/v1/admin/analytics/economy?format=csv&table=nope", headers=ADMIN),
            400,
            "unknown_table",
        )
        assert_problem(
            await client.get("/v1/admin/analytics/economy?days=0", headers=ADMIN),
            422,
            "invalid_request",
        )
        assert_problem(await fan.get("/v1/admin/analytics/economy"), 403, "admin_required")
        assert_problem(await fan.get(f"/v1/streams/{stream}/analytics"), 403, "not_your_stream")
        assert_problem(await client.get(f"/v1/streams/{stream}/analytics"), 401, "unauthorized")
        assert_problem(
            await client.get("/v1/streams/st_none/analytics", headers=ADMIN),
            404,
            "stream_not_found",
        )

        # The job again, and twice at once: nothing is counted a second time.
        db = make_engine(db_url)
        try:
            rollup = Rollup(db, chunk_max_transfers=3)
            again = await asyncio.gather(
                asyncio.to_thread(rollup.catch_up), asyncio.to_thread(rollup.catch_up)
            )
            assert again == [0, 0]
            assert_buckets_match_the_gifters(db)
        finally:
            db.dispose()
        assert await _json(client, "/v1/admin/analytics/economy", ADMIN) == e


async def test_the_rollup_job_in_small_chunks_and_concurrently_counts_each_transfer_once(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    """Two jobs race from the start over tiny chunks; the sums equal one job's."""
    async with economy_app() as client:
        creator = await register(client, "creator")
        stream = await creator.go_live()
        viewers = [await register(client) for _ in range(3)]
        for v in viewers:
            await v.buy(700)
        for i, v in enumerate(viewers):
            for _ in range(i + 1):
                r = await v.gift(stream, "finger_heart", 2)
                assert r.status_code == 201, r.text
    db = make_engine(db_url)
    try:
        racing = Rollup(db, chunk_max_transfers=2)
        done = await asyncio.gather(*(asyncio.to_thread(racing.catch_up) for _ in range(2)))
        with db.connect() as conn:
            e = economy_report(conn, payout_min_cents=5000, diamond_value_usd_micros=5000)
            c = creator_report(conn, creator.id)
            transfers = conn.exec_driver_sql("SELECT count(*) FROM transfers").scalar_one()
        assert sum(done) == transfers
        assert racing.position() == transfers
        assert_buckets_match_the_gifters(db)
        assert e.coins_spent == 6 * 10
        assert (c.gifts, c.coins, c.gifters, e.topups, e.coins_sold) == (6, 60, 3, 3, 2100)
        assert Rollup(db).run_once() == 0
    finally:
        db.dispose()


def assert_buckets_match_the_gifters(db: Engine) -> None:
    """The buckets the job moved gifters through equal the ones built from the totals."""
    b = analytics_gifter_buckets.c
    query = select(b.coins_from, b.gifters, b.coins).order_by(b.coins_from)
    with db.begin() as conn:
        kept = conn.execute(query).all()
        rebuild_gifter_buckets(conn)
        built = conn.execute(query).all()
        conn.rollback()
    assert kept == built
    assert kept  # there were gifters to count


async def test_room_viewers_are_sampled_as_the_most_seen_each_minute(sa_engine) -> None:  # type: ignore[no-untyped-def]
    rooms = {"s1": 40, "s2": 0}
    sampler = ViewerSampler(sa_engine, lambda: dict(rooms))
    with simulated_clock(lambda: 120 * 60_000_000 + 5_000_000):  # 02:00:05
        assert await sampler.sample() == 1  # a room nobody watches writes nothing
        rooms["s1"] = 25
        await sampler.sample()  # fewer later in the same minute: the peak stays
    with simulated_clock(lambda: 121 * 60_000_000):  # the next minute
        await sampler.sample()
    sv = analytics_stream_viewers.c
    with sa_engine.connect() as conn:
        rows = conn.execute(
            select(sv.stream_id, sv.minute_us, sv.viewers).order_by(sv.minute_us)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("s1", 120 * 60_000_000, 40),
        ("s1", 121 * 60_000_000, 25),
    ]
