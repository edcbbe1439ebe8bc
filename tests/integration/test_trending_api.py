"""``GET /v1/trending`` on both databases: live streams ranked by the coins gifted to them,
per language and per creator's country; a gift retried with its key counts once; bad
parameters are problem+json; a restart rebuilds the list from the committed gifts (reversed
ones and ended streams left out)."""

from __future__ import annotations

from typing import Any

import pytest
from economy_client import ADMIN, AppFactory, Person, assert_problem, economy_app, grant, register

from giftwave.api.state import app_services

__all__ = ["economy_app"]


async def _live(creator: Person, title: str, language: str) -> str:
    r = await creator.post("/v1/streams", {"title": title, "language": language})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _trending(client: Any, query: str = "") -> list[dict[str, Any]]:
    r = await client.get(f"/v1/trending{query}")
    assert r.status_code == 200, r.text
    return list(r.json())


async def test_trending_ranks_live_streams_and_survives_a_restart(
    economy_app: AppFactory,
) -> None:
    async with economy_app() as client:
        en_us = await register(client, "creator", country="US")
        es_mx = await register(client, "creator", country="MX")
        es_us = await register(client, "creator", country="US")
        fan = await register(client)
        await grant(client, fan, 10_000)
        piano = await _live(en_us, "Late night piano", "en")
        cumbia = await _live(es_mx, "Cumbia en vivo", "es")
        cocina = await _live(es_us, "Cocina de casa", "es")
        assert await _trending(client) == []

        assert (await fan.gift(piano, "doughnut", key="d1")).status_code == 201  # 30 coins
        assert (await fan.gift(cumbia, "rose", 100, key="r100")).status_code == 201
        assert (await fan.gift(cumbia, "rose", 100, key="r100")).status_code == 201  # a retry
        assert (await fan.gift(cocina, "rose", 10, key="r10")).status_code == 201
        assert (await fan.gift(cumbia, "rose", 50, key="r50")).status_code == 201

        everyone = await _trending(client)
        assert [(t["rank"], t["stream_id"]) for t in everyone] == [
            (1, cumbia),
            (2, piano),
            (3, cocina),
        ]
        first = everyone[0]
        assert first["title"] == "Cumbia en vivo"
        assert first["creator_handle"] == es_mx.user["handle"]
        assert (first["language"], first["country"]) == ("es", "MX")
        assert first["score"] == pytest.approx(150, rel=1e-3)  # the retry counted once
        assert "viewers" in first
        assert [t["score"] for t in everyone[1:]] == [
            pytest.approx(30, rel=1e-3),
            pytest.approx(10, rel=1e-3),
        ]
        assert [t["stream_id"] for t in await _trending(client, "?language=es")] == [
            cumbia,
            cocina,
        ]
        assert [t["stream_id"] for t in await _trending(client, "?country=US")] == [piano, cocina]
        assert [t["stream_id"] for t in await _trending(client, "?language=es&country=US")] == [
            cocina
        ]
        assert await _trending(client, "?language=fr") == []
        assert [t["stream_id"] for t in await _trending(client, "?limit=1")] == [cumbia]

        assert_problem(await client.get("/v1/trending?kind=clip"), 422, "invalid_kind")
        assert_problem(await client.get("/v1/trending?language=English"), 422, "invalid_language")
        assert_problem(await client.get("/v1/trending?country=mx"), 422, "invalid_country")
        assert_problem(await client.get("/v1/trending?limit=0"), 422, "invalid_request")
        assert_problem(await client.get("/v1/trending?limit=101"), 422, "invalid_request")

        # Before the restart: one gift reversed, one stream ended.
        r = await client.post(f"/v1/admin/gift-sends/gift:{fan.id}:r50/reverse", headers=ADMIN)
        assert r.status_code == 200, r.text
        r = await es_us.post(f"/v1/streams/{cocina}/end")
        assert r.status_code == 200, r.text

    async with economy_app() as client:  # a new process on the same database
        rebuilt = await _trending(client)
        assert [t["stream_id"] for t in rebuilt] == [cumbia, piano]
        assert rebuilt[0]["score"] == pytest.approx(100, rel=1e-3)  # the reversed 50 is out
        assert rebuilt[1]["score"] == pytest.approx(30, rel=1e-3)
        assert [t["stream_id"] for t in await _trending(client, "?country=MX")] == [cumbia]


async def test_a_share_lifts_the_stream_once_per_sharer(economy_app: AppFactory) -> None:
    """Sharing a stream is engagement (weight 50); the same sharer again within the window,
    on another channel, and the creator sharing their own stream count for nothing."""
    async with economy_app() as client:
        creator = await register(client, "creator")
        fan = await register(client)
        stream_id = await _live(creator, "Shared", "en")
        for who, channel in ((fan, "copy"), (fan, "whatsapp"), (creator, "copy")):
            r = await who.post(
                "/v1/shares",
                {"target_kind": "stream", "target_id": stream_id, "channel": channel},
            )
            assert r.status_code == 201, r.text
        [entry] = await _trending(client)
        assert entry["stream_id"] == stream_id
        assert entry["score"] == pytest.approx(50.0, rel=0.01)


async def test_gifts_sent_on_another_node_count_once_when_polled(
    economy_app: AppFactory,
) -> None:
    """Two nodes on one database: a node counts its own gifts at once and the other node's
    when it polls, each gift once, however often it polls; a reversed gift is not counted."""
    async with economy_app() as node_a, economy_app() as node_b:
        creator = await register(node_a, "creator")
        fan = await register(node_a)
        await grant(node_a, fan, 10_000)
        stream = await _live(creator, "Two nodes", "en")
        assert (await fan.gift(stream, "rose", 40, key="r40")).status_code == 201
        assert (await fan.gift(stream, "doughnut", key="d1")).status_code == 201  # 30
        assert (await fan.gift(stream, "rose", 5, key="r5")).status_code == 201
        r = await node_a.post(f"/v1/admin/gift-sends/gift:{fan.id}:r5/reverse", headers=ADMIN)
        assert r.status_code == 200, r.text
        assert (await _trending(node_a))[0]["score"] == pytest.approx(75, rel=1e-3)  # at once

        trending_b = app_services(node_b.app).trending
        assert await _trending(node_b) == []  # node B has not polled yet
        assert await trending_b.poll() == 3  # three rows read: two gifts, one reversed
        assert await trending_b.poll() == 0  # nothing new: nothing read again
        polled = await _trending(node_b)
        assert [t["stream_id"] for t in polled] == [stream]
        assert polled[0]["score"] == pytest.approx(70, rel=1e-3)

        assert (await fan.gift(stream, "rose", 1, key="r1")).status_code == 201
        assert await trending_b.poll() == 1
        assert (await _trending(node_b))[0]["score"] == pytest.approx(71, rel=1e-3)
