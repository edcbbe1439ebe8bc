"""Figures that disagreed with their own rules (issue 17), through the API on SQLite and
PostgreSQL:

- item 8: a statement over a period without gifts shows the effective share at the configured
  creator rate (70 diamonds per 100 coins: 24.5 %-24.7 %), not at one diamond per coin (35 %);
- weeks: a creator's weeks and the gifter cohorts are ISO weeks, Monday to Sunday, like the
  weekly leaderboard (a Wednesday and the Thursday after it are one week, starting Monday);
- conversion: gifters who never held a socket still count as present, so a stream's
  conversion is never above 100 %.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

from economy_client import ADMIN, AppFactory, Person, economy_app, grant, register
from sqlalchemy import Engine

from giftwave.analytics.rollup import record_viewers
from giftwave.clock import simulated_clock

__all__ = ["economy_app"]
DAY_US = 86_400_000_000


async def _json(person_or_client: Any, path: str, headers: dict[str, str] | None = None) -> Any:
    if isinstance(person_or_client, Person):
        r = await person_or_client.get(path)
    else:
        r = await person_or_client.get(path, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_the_effective_share_of_a_quiet_period_uses_the_configured_rate(
    economy_app: AppFactory,
) -> None:
    async with economy_app(creator_diamonds_per_100_coins=70) as client:
        creator = await register(client, "creator")
        statement = await _json(creator, "/v1/creators/me/statement")
        assert statement["totals"]["coins"] == 0
        # 0.7 diamond per coin at $0.005 = 0.35 cents, over 24,999 / 17,500 cents per coin
        # (the dearest per coin) and over 99 / 70 (the cheapest).
        assert (statement["share_percent_low"], statement["share_percent_high"]) == (24.5, 24.7)

        # Once there are gifts, the share is what they earned: the same rate here.
        stream = await creator.go_live()
        viewer = await register(client)
        await grant(client, viewer, 100)
        r = await viewer.gift(stream, "rose", 10)  # 10 coins, 7 diamonds
        assert r.status_code == 201, r.text
        statement = await _json(creator, "/v1/creators/me/statement")
        assert (statement["totals"]["coins"], statement["totals"]["diamonds"]) == (10, 7)
        assert (statement["share_percent_low"], statement["share_percent_high"]) == (24.5, 24.7)


def _next_wednesday_noon_us() -> int:
    today = datetime.now(UTC).date()
    wednesday = today + timedelta(days=(2 - today.weekday()) % 7 or 7)
    noon = datetime(wednesday.year, wednesday.month, wednesday.day, 12, tzinfo=UTC)
    return int(noon.timestamp()) * 1_000_000


async def test_weeks_start_on_monday_and_conversion_never_exceeds_one(
    economy_app: AppFactory, sa_engine: Engine
) -> None:
    async with economy_app() as client:
        creator = await register(client, "creator")
        stream = await creator.go_live()
        wednesday_us = _next_wednesday_noon_us()
        monday = (datetime.fromtimestamp(wednesday_us / 1e6, UTC) - timedelta(days=2)).date()
        gifters = [await register(client) for _ in range(3)]
        sends = []
        for n, (viewer, at_us) in enumerate(
            zip(gifters, (wednesday_us, wednesday_us + DAY_US, wednesday_us + DAY_US), strict=True)
        ):
            await grant(client, viewer, 100)
            # Gifts through the REST API, at a moment of the test's choosing: nobody here
            # ever opens the room's socket.
            with simulated_clock(lambda at_us=at_us: at_us):
                r = await viewer.gift(stream, "finger_heart", n + 1)  # 5 coins each
            assert r.status_code == 201, r.text
            sends.append(r.json()["send_id"])
        # The third gifter's gift is reversed: no gifter any more, but they were there.
        r = await client.post(f"/v1/admin/gift-sends/{sends[2]}/reverse", headers=ADMIN)
        assert r.status_code == 200, r.text
        # One viewer held a socket at the peak (the hub's sample, as analytics/viewers.py
        # writes it).
        await asyncio.to_thread(record_viewers, sa_engine, [(stream, wednesday_us, 1)])
        await asyncio.sleep(1.1)  # the rollup catches up at most once a second

        # Wednesday and Thursday are one ISO week, starting the Monday before.
        report = await _json(creator, "/v1/creators/me/analytics")
        assert report["weeks"] == [
            {"week_start": monday.isoformat(), "diamonds": 5 + 10, "new_gifters": 2}
        ]
        economy = await _json(client, "/v1/admin/analytics/economy", ADMIN)
        assert [c["week_start"] for c in economy["cohorts"]] == [monday.isoformat()]
        assert economy["cohorts"][0]["gifters"] == 3  # the reversed gift's week counts too
        assert date.fromisoformat(economy["cohorts"][0]["week_start"]).weekday() == 0
        board = await _json(client, f"/v1/creators/{creator.id}/leaderboard")
        since = datetime.fromtimestamp(board["since_us"] / 1e6, UTC)
        assert (since.weekday(), since.hour) == (0, 0)  # the same week definition

        # Two gifters, three people present (the peak was one): two thirds, never 300 %.
        figures = await _json(creator, f"/v1/streams/{stream}/analytics")
        assert (figures["unique_gifters"], figures["peak_viewers"]) == (2, 1)
        assert figures["present"] == 3
        assert figures["conversion"] == 2 / 3
