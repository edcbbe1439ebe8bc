"""The daily spend cap counts spend net of reversed gifts (issue #17, item 7), on SQLite and
PostgreSQL: an admin reverses a viewer's gift on another node (a second app on the same
database), and the node serving the viewer gives the allowance back at once; the cap itself
still holds."""

from __future__ import annotations

from economy_client import ADMIN, AppFactory, assert_problem, economy_app, grant, register

__all__ = ["economy_app"]


async def test_a_reversed_gift_gives_its_coins_back_to_the_daily_cap(
    economy_app: AppFactory,
) -> None:
    cap = {"gift_daily_spend_max_coins": 1_000}
    async with economy_app(**cap) as viewers_node, economy_app(**cap) as admins_node:
        viewer, creator = await register(viewers_node), await register(viewers_node, "creator")
        await grant(viewers_node, viewer, 5_000)
        stream = await creator.go_live()
        first = await viewer.gift(stream, "galaxy")  # 1,000 coins: the whole day's cap
        assert first.status_code == 201, first.text
        body = assert_problem(await viewer.gift(stream, "rose"), 429, "daily_spend_limit")
        assert body["spent_coins"] == 1_000

        r = await admins_node.post(
            f"/v1/admin/gift-sends/{first.json()['send_id']}/reverse", headers=ADMIN
        )
        assert r.status_code == 200, r.text
        assert await viewer.coins() == 5_000

        # Net of the reversal the viewer spent nothing today: before, refused with 1,000 spent.
        again = await viewer.gift(stream, "galaxy")
        assert again.status_code == 201, again.text
        # The cap still holds, on the net spend.
        body = assert_problem(await viewer.gift(stream, "rose"), 429, "daily_spend_limit")
        assert body["spent_coins"] == 1_000
        assert await viewer.coins() == 4_000
