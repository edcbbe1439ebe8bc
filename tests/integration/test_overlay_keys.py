"""A creator's overlay link: made once, the same on every read, rotated on demand (the old link
stops working), creators only; the page refuses a wrong key and follows ``live``."""

from __future__ import annotations

from economy_client import AppFactory, assert_problem, economy_app, register

__all__ = ["economy_app"]


async def test_overlay_links_are_the_creators_own_and_rotate(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        creator = await register(client, "creator")
        other = await register(client, "creator")
        viewer = await register(client)

        first = (await creator.get("/v1/creators/me/overlay")).json()
        assert (await creator.get("/v1/creators/me/overlay")).json() == first
        assert first["url"].endswith(f"/overlay/live?key={first['key']}")
        assert (await other.get("/v1/creators/me/overlay")).json()["key"] != first["key"]
        assert_problem(await viewer.get("/v1/creators/me/overlay"), 403, "not_a_creator")
        assert_problem(await client.get("/v1/creators/me/overlay"), 401, "unauthorized")

        html = {"Accept": "text/html"}
        # Not live yet: the link waits for the creator's next stream.
        waiting = await client.get(f"/overlay/live?key={first['key']}", headers=html)
        assert waiting.status_code == 200
        assert '"stream_id":null' in waiting.text
        stream_id = await creator.go_live()
        live = await client.get(f"/overlay/live?key={first['key']}", headers=html)
        assert f'"stream_id":"{stream_id}"' in live.text
        assert (await client.get(f"/overlay/{stream_id}?key={first['key']}")).status_code == 200

        # Someone else's key, no key, a key for another creator's stream: not this overlay.
        other_key = (await other.get("/v1/creators/me/overlay")).json()["key"]
        for url in (
            f"/overlay/{stream_id}",
            f"/overlay/{stream_id}?key={other_key}",
            f"/overlay/{stream_id}?key={'x' * 500}",
        ):
            refused = await client.get(url, headers=html)
            assert refused.status_code == 404, url
            assert "This overlay link is not valid" in refused.text

        rotated = (await creator.post("/v1/creators/me/overlay/rotate")).json()
        assert rotated["key"] != first["key"]
        assert (await creator.get("/v1/creators/me/overlay")).json() == rotated
        gone = await client.get(f"/overlay/{stream_id}?key={first['key']}", headers=html)
        assert gone.status_code == 404
        assert (await client.get(f"/overlay/{stream_id}?key={rotated['key']}")).status_code == 200
