"""The subscriber badge in a room, against a real `giftwave serve`: a subscriber's chat lines
and join carry ``sub_months``; anyone else's carry none (docs/protocol.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson
import pytest
import websockets
from liveclient import Client, as_user, person
from serverproc import ADMIN_TOKEN, ServerGroup, giftwave_env, migrate

from giftwave.db.urls import DatabaseUrl

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.mark.parametrize("bare_db_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_subscribers_chat_and_join_carry_the_months(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    env = giftwave_env(bare_db_url)
    env.update(GIFTWAVE_PASSWORD_TIME_COST="1", GIFTWAVE_PASSWORD_MEMORY_KIB="8")
    migrate(env)
    with ServerGroup(tmp_path, env) as servers:
        [server] = servers.start("a")
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            fan_id, fan_token = await person(http, "viewer")
            _, other_token = await person(http, "viewer")
            _, creator_token = await person(http, "creator")
            creator = {"Authorization": f"Bearer {creator_token}"}
            fan = {"Authorization": f"Bearer {fan_token}"}
            r = await http.put(
                "/v1/me/subscription-price", json={"price_coins": 200}, headers=creator
            )
            assert r.status_code == 200, r.text
            r = await http.post(
                f"/v1/admin/users/{fan_id}/coins",
                json={"coins": 1_000, "idempotency_key": "fan"},
                headers=ADMIN,
            )
            assert r.status_code == 200, r.text
            stream = (await http.post("/v1/streams", json={"title": "s"}, headers=creator)).json()
            creator_id = stream["creator_id"]
            r = await http.post(f"/v1/creators/{creator_id}/subscription", headers=fan)
            assert r.status_code == 201, r.text
            url = server.base_url.replace("http://", "ws://") + f"/v1/streams/{stream['id']}/ws"
            other_url = await as_user(http, url, other_token)
            fan_url = await as_user(http, url, fan_token)
        async with websockets.connect(other_url) as other_ws:
            other = Client(other_ws)
            await other.recv()
            async with websockets.connect(fan_url) as fan_ws:
                fans = Client(fan_ws)
                await fans.recv()
                await other.until(
                    lambda e: (
                        e["type"] == "join" and any(u["user_id"] == fan_id for u in e["users"])
                    )
                )
                [joined] = [
                    u for e in other.events("join") for u in e["users"] if u["user_id"] == fan_id
                ]
                assert joined["sub_months"] == 1
                said = await fans.command(id=1, cmd="chat", text="first month!")
                assert said["result"]["sent"] is True
                plain = await other.command(id=2, cmd="chat", text="hi")
                assert plain["result"]["sent"] is True
                await other.until(lambda e: e["type"] == "chat" and e["text"] == "hi")
                lines = {e["text"]: e for e in other.events("chat")}
                assert lines["first month!"]["sub_months"] == 1
                assert "sub_months" not in lines["hi"]
        async with websockets.connect(url) as late_ws:
            snapshot = orjson.loads(await asyncio.wait_for(late_ws.recv(), 5))["events"][0]
        months = {line["text"]: line.get("sub_months", 0) for line in snapshot["chat"]}
        assert months == {"first month!": 1, "hi": 0}
