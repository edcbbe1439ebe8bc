"""Gifter levels with two `giftwave serve` processes sharing PostgreSQL and a private Redis:
both nodes run the levels job; a gift through node A that crosses a level is announced once in
the room, to a viewer whose socket is on node B, and B's badge cache has the new level at once
(the notice), so the viewer's next chat line on B carries it: no query per line, no waiting
for the cache to expire."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import httpx
import pytest
import websockets
from liveclient import Client, as_user, go_live, person
from redisproc import two_nodes
from serverproc import ADMIN_TOKEN
from sqlalchemy import func, select

from giftwave.db.engine import make_engine
from giftwave.db.tables import level_ups
from giftwave.db.urls import DatabaseUrl
from giftwave.social.level_badges import TTL_S
from giftwave.social.levels import Curve

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
QUIET_S = 3.0  # after the level-up: several rounds of both nodes' jobs, and no second one
_ids = itertools.count(1)
assert QUIET_S * 10 < TTL_S


@pytest.mark.parametrize("bare_db_url", ["postgresql"], indirect=True)
async def test_a_level_up_is_said_once_and_badges_follow_on_every_node(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    level = Curve.configured(()).level(100)
    with two_nodes(bare_db_url, tmp_path) as (a, b):
        async with (
            httpx.AsyncClient(base_url=a.base_url, timeout=30) as on_a,
            httpx.AsyncClient(base_url=b.base_url, timeout=30) as on_b,
        ):
            _, creator = await person(on_a, "creator")
            fan_id, fan = await person(on_a, "viewer")
            r = await on_a.post(
                f"/v1/admin/users/{fan_id}/coins",
                json={"coins": 500, "idempotency_key": "nodes"},
                headers=ADMIN,
            )
            assert r.status_code == 200, r.text
            stream = await go_live(on_a, creator, "two nodes")
            url = b.base_url.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"
            async with websockets.connect(await as_user(on_b, url, fan)) as ws:
                viewer = Client(ws)
                await viewer.recv()
                answer = await viewer.command(id=next(_ids), cmd="chat", text="before")
                assert "result" in answer, answer
                await viewer.until(lambda e: e["type"] == "chat")
                assert "level" not in viewer.events("chat")[-1]  # B knows: no badge yet

                gift = await on_a.post(
                    f"/v1/streams/{stream}/gifts",
                    json={"gift_id": "hand_hearts", "count": 1, "idempotency_key": "n1"},
                    headers={"Authorization": f"Bearer {fan}"},
                )
                assert gift.status_code == 201, gift.text
                await viewer.until(lambda e: e["type"] == "level_up", wait_s=10)
                deadline = asyncio.get_running_loop().time() + QUIET_S
                while (left := deadline - asyncio.get_running_loop().time()) > 0:
                    try:
                        await viewer.recv(left)
                    except TimeoutError:
                        break
                assert [(e["user_id"], e["level"]) for e in viewer.events("level_up")] == [
                    (fan_id, level)
                ]
                answer = await viewer.command(id=next(_ids), cmd="chat", text="after")
                assert "result" in answer, answer
                await viewer.until(lambda e: e["type"] == "chat" and e["text"] == "after", wait_s=5)
                line = next(e for e in viewer.events("chat") if e["text"] == "after")
                assert line["level"] == level
        engine = make_engine(bare_db_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(func.count()).select_from(level_ups)).scalar_one()
        finally:
            engine.dispose()
        assert rows == 1
