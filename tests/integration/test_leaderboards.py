"""A creator's top gifters this week and of all time, over committed gifts only, on both
databases: ranked by coins, ties to whoever got there first; a reversed gift drops out."""

from __future__ import annotations

from economy_client import ADMIN, AppFactory, assert_problem, economy_app, register

__all__ = ["economy_app"]


async def test_creator_leaderboards_rank_committed_gifts(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        creator = await register(client, "creator")
        other_creator = await register(client, "creator")
        ana, bo, cy = [await register(client) for _ in range(3)]
        for person in (ana, bo, cy):
            r = await client.post(
                f"/v1/admin/users/{person.id}/coins",
                json={"coins": 40_000, "idempotency_key": "lb"},
                headers=ADMIN,
            )
            assert r.status_code == 200, r.text
        stream = await creator.go_live()
        elsewhere = await other_creator.go_live()
        assert (await bo.gift(stream, "panda", 2)).status_code == 201  # 10 coins, first
        assert (await ana.gift(stream, "rose", 10)).status_code == 201  # 10 coins, later: 2nd
        assert (await cy.gift(stream, "doughnut", key="dough")).status_code == 201  # 30 coins
        assert (await cy.gift(elsewhere, "lion")).status_code == 201  # another creator's
        assert (await ana.gift(stream, "rose", 10_000)).status_code == 422  # over the max count
        assert (await bo.gift(stream, "universe", 2)).status_code == 402  # cannot afford

        for period in ("week", "all"):
            r = await client.get(f"/v1/creators/{creator.id}/leaderboard?period={period}")
            assert r.status_code == 200, r.text
            board = r.json()
            assert board["period"] == period
            assert [(e["rank"], e["user_id"], e["coins"]) for e in board["top"]] == [
                (1, cy.id, 30),
                (2, bo.id, 10),
                (3, ana.id, 10),
            ]
        assert r.json()["since_us"] is None
        top1 = await client.get(f"/v1/creators/{creator.id}/leaderboard?limit=1")
        assert [e["user_id"] for e in top1.json()["top"]] == [cy.id]

        # A reversed gift no longer counts.
        r = await client.post(f"/v1/admin/gift-sends/gift:{cy.id}:dough/reverse", headers=ADMIN)
        assert r.status_code == 200, r.text
        r = await client.get(f"/v1/creators/{creator.id}/leaderboard?period=all")
        assert [e["user_id"] for e in r.json()["top"]] == [bo.id, ana.id]

        assert_problem(
            await client.get("/v1/creators/999999/leaderboard"), 404, "creator_not_found"
        )
        assert_problem(
            await client.get(f"/v1/creators/{ana.id}/leaderboard"), 404, "creator_not_found"
        )
        r = await client.get(f"/v1/creators/{creator.id}/leaderboard?period=month")
        assert r.status_code == 422
        r = await client.get(f"/v1/creators/{creator.id}/leaderboard?limit=0")
        assert r.status_code == 422
