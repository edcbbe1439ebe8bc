"""The economy report's per-day table agrees with its headline (issue #17, item 6), on SQLite
and PostgreSQL: a reversed gift is taken off the day's coins, diamonds and gifts as it is off
the headline, the reversal is shown in its own column, and the days add up to the headline in
JSON and CSV alike."""

from __future__ import annotations

import asyncio
import csv
import io

from economy_client import ADMIN, AppFactory, economy_app, grant, register

__all__ = ["economy_app"]


async def test_the_days_of_the_economy_report_are_net_of_reversals(
    economy_app: AppFactory,
) -> None:
    async with economy_app() as client:
        viewer, creator = await register(client), await register(client, "creator")
        await grant(client, viewer, 10_000)
        stream = await creator.go_live()
        kept = await viewer.gift(stream, "rose", count=20)
        assert kept.status_code == 201, kept.text
        whale = await viewer.gift(stream, "galaxy", count=2)
        assert whale.status_code == 201, whale.text
        r = await client.post(
            f"/v1/admin/gift-sends/{whale.json()['send_id']}/reverse", headers=ADMIN
        )
        assert r.status_code == 200, r.text

        await asyncio.sleep(1.1)  # the rollup catches up at most once a second
        r = await client.get("/v1/admin/analytics/economy", headers=ADMIN)
        assert r.status_code == 200, r.text
        e = r.json()
        assert (e["coins_spent"], e["coins_reversed"], e["diamonds_earned"]) == (20, 2_000, 20)
        (day,) = e["days"]
        # Before: the day's row said 2,020 coins spent and 2 gifts beside a headline of 20.
        assert day["coins_spent"] == e["coins_spent"] == 20
        assert day["diamonds_earned"] == e["diamonds_earned"] == 20
        assert day["gifts"] == 1
        assert day["coins_reversed"] == e["coins_reversed"] == 2_000

        r = await client.get("/v1/admin/analytics/economy?format=csv&table=days", headers=ADMIN)
        assert r.status_code == 200, r.text
        (row,) = csv.DictReader(io.StringIO(r.text))
        assert int(row["coins_spent"]) == e["coins_spent"]
        assert int(row["diamonds_earned"]) == e["diamonds_earned"]
        assert (int(row["gifts"]), int(row["coins_reversed"])) == (1, 2_000)
