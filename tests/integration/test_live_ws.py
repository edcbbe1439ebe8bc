"""A live room over WebSocket against a real `giftwave serve`, on SQLite and PostgreSQL: two
clients see the same gifts, combos and leaderboard in the same order; bad commands get typed
errors; a reconnect resumes from where it left off."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from liveclient import Client, as_user, person
from serverproc import ADMIN_TOKEN, ServerGroup, giftwave_env, migrate

from giftwave.db.urls import DatabaseUrl

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
COMBO_QUIET_MS = 600


async def _read_until_closed(ws: Any) -> None:
    while True:
        await asyncio.wait_for(ws.recv(), 5)


@pytest.mark.parametrize("bare_db_url", ["sqlite", "postgresql"], indirect=True)
async def test_two_clients_see_the_same_room(bare_db_url: DatabaseUrl, tmp_path: Path) -> None:
    env = giftwave_env(bare_db_url)
    env.update(
        GIFTWAVE_PASSWORD_TIME_COST="1",
        GIFTWAVE_PASSWORD_MEMORY_KIB="8",
        GIFTWAVE_LIVE_COMBO_QUIET_MS=str(COMBO_QUIET_MS),
    )
    migrate(env)
    with ServerGroup(tmp_path, env) as servers:
        [server] = servers.start("a")
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            viewer_id, viewer_token = await person(http, "viewer")
            _, creator_token = await person(http, "creator")
            r = await http.post(
                f"/v1/admin/users/{viewer_id}/coins",
                json={"coins": 100_000, "idempotency_key": "ws"},
                headers=ADMIN,
            )
            assert r.status_code == 200, r.text
            r = await http.post(
                "/v1/streams",
                json={"title": "ws"},
                headers={"Authorization": f"Bearer {creator_token}"},
            )
            stream = r.json()["id"]
            ws_url = server.base_url.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"
            async with (
                websockets.connect(ws_url) as anon_ws,
                websockets.connect(await as_user(http, ws_url, viewer_token)) as viewer_ws,
            ):
                watcher, viewer = Client(anon_ws), Client(viewer_ws)
                first = await watcher.recv()
                assert first["events"][0]["type"] == "snapshot"
                await viewer.recv()
                # Three Roses by WebSocket and one by REST make one combo; a Lion arrives once.
                for i in range(3):
                    ack = await viewer.command(
                        id=i, cmd="send_gift", gift_id="rose", idempotency_key=f"ws-rose-{i}"
                    )
                    assert ack["result"]["coins"] == 1, ack
                r = await http.post(
                    f"/v1/streams/{stream}/gifts",
                    json={"gift_id": "rose", "idempotency_key": "rest-rose"},
                    headers={"Authorization": f"Bearer {viewer_token}"},
                )
                assert r.status_code == 201, r.text
                lion = await viewer.command(
                    id="lion", cmd="send_gift", gift_id="lion", idempotency_key="ws-lion"
                )
                assert lion["result"]["balance_coins"] == 100_000 - 4 - 29_999
                # The same key again: the same answer, no second gift in the room.
                again = await viewer.command(
                    id="lion2", cmd="send_gift", gift_id="lion", idempotency_key="ws-lion"
                )
                assert again["result"] == lion["result"]

                def rose_final(e: dict[str, Any]) -> bool:
                    return e["type"] == "gift" and e["gift_id"] == "rose" and e["final"]

                await watcher.until(rose_final)
                await viewer.until(rose_final)
                assert watcher.gift_events() == viewer.gift_events()
                finals = [g for g in watcher.gift_events() if g[2]]
                assert sorted(count for _, count, _ in finals) == [1, 4]  # Lion x1, Rose x4
                boards = [
                    e for f in watcher.frames for e in f["events"] if e["type"] == "leaderboard"
                ]
                assert boards[-1]["top"][0]["coins"] == 4 + 29_999
                assert boards[-1]["coins"] == 4 + 29_999

                # Bad commands: typed errors, the room carries on.
                anon = await watcher.command(id="a", cmd="like")
                assert anon["error"]["code"] == "login_required"
                await viewer_ws.send("not json")
                while not viewer.acks.get(None):
                    await viewer.recv()
                assert viewer.acks[None]["error"]["code"] == "malformed_frame"
                unknown = await viewer.command(id="u", cmd="teleport")
                assert unknown["error"]["code"] == "unknown_command"
                broke = await viewer.command(id="b", cmd="send_gift", gift_id="rose")
                assert broke["error"]["code"] == "invalid_command"
                poor = await viewer.command(
                    id="p",
                    cmd="send_gift",
                    gift_id="universe",
                    count=2,
                    idempotency_key="too-dear",
                )
                assert poor["error"]["code"] == "insufficient_coins"
                liked = await viewer.command(id="l", cmd="like", count=5)
                assert liked["result"] == {"liked": 5}
                assert (await viewer.command(id="l2", cmd="like", count=2))["result"]
                await watcher.until(lambda e: e["type"] == "likers" and e["top"][0]["likes"] == 7)
                [top] = watcher.events("likers")[-1]["top"]
                assert (top["rank"], top["user_id"], top["likes"]) == (1, viewer_id, 7)
                last_seq, epoch = watcher.frames[-1]["seq"], watcher.frames[-1]["epoch"]

            # Reconnect: what was missed, nothing twice.
            await http.post(
                f"/v1/streams/{stream}/gifts",
                json={"gift_id": "panda", "idempotency_key": "while-away"},
                headers={"Authorization": f"Bearer {viewer_token}"},
            )
            await asyncio.sleep(0.3)
            async with websockets.connect(f"{ws_url}?since={last_seq}&epoch={epoch}") as again_ws:
                back = Client(again_ws)
                frame = await back.recv()
                assert frame["seq"] == last_seq + 1
                assert frame["events"][0]["gift_id"] == "panda"
            async with websockets.connect(f"{ws_url}?since=1&epoch=nope") as stale_ws:
                stale = Client(stale_ws)
                assert (await stale.recv())["events"][0]["type"] == "snapshot"
            # Oversized messages close the socket with a reason, not the room.
            async with websockets.connect(await as_user(http, ws_url, viewer_token)) as big_ws:
                await big_ws.recv()
                await big_ws.send("x" * 10_000)
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await _read_until_closed(big_ws)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1009
            r = await http.get(f"/v1/streams/{stream}")
            assert r.json()["status"] == "live"


@pytest.mark.parametrize("bare_db_url", ["postgresql"], indirect=True)
async def test_two_nodes_over_redis_show_the_same_gifts_in_the_same_order(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    """Two `giftwave serve` processes sharing PostgreSQL and Redis: a gift sent to node A
    reaches a viewer on node B, and both viewers see the same gifts in the same order."""
    env = giftwave_env(bare_db_url)
    env.update(
        GIFTWAVE_PASSWORD_TIME_COST="1",
        GIFTWAVE_PASSWORD_MEMORY_KIB="8",
        GIFTWAVE_LIVE_COMBO_QUIET_MS=str(COMBO_QUIET_MS),
        GIFTWAVE_BROKER_URL=os.environ.get("GIFTWAVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    migrate(env)
    with ServerGroup(tmp_path, env) as servers:
        a, b = servers.start("a", "b")
        async with httpx.AsyncClient(base_url=a.base_url, timeout=30) as http:
            viewer_id, viewer_token = await person(http, "viewer")
            _, creator_token = await person(http, "creator")
            await http.post(
                f"/v1/admin/users/{viewer_id}/coins",
                json={"coins": 10_000, "idempotency_key": "ws"},
                headers=ADMIN,
            )
            r = await http.post(
                "/v1/streams",
                json={"title": "two nodes"},
                headers={"Authorization": f"Bearer {creator_token}"},
            )
            stream = r.json()["id"]
            goal = await http.put(
                f"/v1/streams/{stream}/goal",
                json={"kind": "coins", "target": 300, "title": "Corgi night"},
                headers={"Authorization": f"Bearer {creator_token}"},
            )
            assert goal.status_code == 200, goal.text

            def ws_url(node: Any) -> str:
                return node.base_url.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"

            async with (
                websockets.connect(ws_url(a)) as on_a,
                websockets.connect(await as_user(http, ws_url(b), viewer_token)) as on_b,
            ):
                watcher_a, viewer_b = Client(on_a), Client(on_b)
                await watcher_a.recv()
                await viewer_b.recv()
                for client in (watcher_a, viewer_b):  # one viewer here, one there: 2 in all
                    await client.until(lambda e: e["type"] == "viewers" and e["count"] == 2)
                for i in range(6):
                    if i % 2:  # REST to node A
                        r = await http.post(
                            f"/v1/streams/{stream}/gifts",
                            json={
                                "gift_id": "rose" if i < 5 else "corgi",
                                "idempotency_key": f"a{i}",
                            },
                            headers={"Authorization": f"Bearer {viewer_token}"},
                        )
                        assert r.status_code == 201, r.text
                    else:  # WebSocket command to node B
                        ack = await viewer_b.command(
                            id=i, cmd="send_gift", gift_id="panda", idempotency_key=f"b{i}"
                        )
                        assert "result" in ack, ack

                def corgi(e: dict[str, Any]) -> bool:
                    return e["type"] == "gift" and e["gift_id"] == "corgi"

                def combos_done(c: Client) -> bool:
                    finals = [g for g in c.gift_events() if g[2]]
                    return len(finals) == 3  # roses x2, pandas x3, the corgi

                for client in (watcher_a, viewer_b):
                    await client.until(corgi)
                    deadline = asyncio.get_running_loop().time() + 8
                    while not combos_done(client):
                        assert asyncio.get_running_loop().time() < deadline, client.gift_events()
                        await client.recv()
                for client in (watcher_a, viewer_b):
                    await client.until(lambda e: e["type"] == "goal_reached")
                    goals = [e for f in client.frames for e in f["events"] if e["type"] == "goal"]
                    assert (goals[-1]["progress"], goals[-1]["reached"]) == (2 + 299 + 15, True)
                finals_a = [g for g in watcher_a.gift_events() if g[2]]
                finals_b = [g for g in viewer_b.gift_events() if g[2]]
                assert finals_a == finals_b
                assert sorted(count for _, count, _ in finals_a) == [1, 2, 3]


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_a_restarted_process_shows_the_goal_and_its_progress(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    """memory:// keeps rooms in the process: after a crash the goal and the committed progress
    toward it come back from the database."""
    env = giftwave_env(bare_db_url)
    env.update(GIFTWAVE_PASSWORD_TIME_COST="1", GIFTWAVE_PASSWORD_MEMORY_KIB="8")
    migrate(env)
    with ServerGroup(tmp_path, env) as servers:
        [first] = servers.start("first")
        async with httpx.AsyncClient(base_url=first.base_url, timeout=30) as http:
            viewer_id, viewer_token = await person(http, "viewer")
            _, creator_token = await person(http, "creator")
            await http.post(
                f"/v1/admin/users/{viewer_id}/coins",
                json={"coins": 1000, "idempotency_key": "g"},
                headers=ADMIN,
            )
            creator = {"Authorization": f"Bearer {creator_token}"}
            stream = (await http.post("/v1/streams", json={"title": "g"}, headers=creator)).json()
            r = await http.put(
                f"/v1/streams/{stream['id']}/goal",
                headers=creator,
                json={"kind": "coins", "gift_id": "panda", "target": 50, "title": "10 pandas"},
            )
            assert r.status_code == 200, r.text
            for i in range(3):
                r = await http.post(
                    f"/v1/streams/{stream['id']}/gifts",
                    json={"gift_id": "panda", "idempotency_key": f"p{i}"},
                    headers={"Authorization": f"Bearer {viewer_token}"},
                )
                assert r.status_code == 201, r.text
        first.kill()
        [second] = servers.start("second")
        url = second.base_url.replace("http://", "ws://") + f"/v1/streams/{stream['id']}/ws"
        async with websockets.connect(url) as ws:
            snapshot = orjson.loads(await asyncio.wait_for(ws.recv(), 5))["events"][0]
        assert snapshot["goal"]["progress"] == 15
        assert (snapshot["goal"]["target"], snapshot["goal"]["gift_id"]) == (50, "panda")


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_the_creator_moderates_chat(bare_db_url: DatabaseUrl, tmp_path: Path) -> None:
    env = giftwave_env(bare_db_url)
    env.update(GIFTWAVE_PASSWORD_TIME_COST="1", GIFTWAVE_PASSWORD_MEMORY_KIB="8")
    migrate(env)
    with ServerGroup(tmp_path, env) as servers:
        [server] = servers.start("a")
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            viewer_id, viewer_token = await person(http, "viewer")
            _, creator_token = await person(http, "creator")
            creator = {"Authorization": f"Bearer {creator_token}"}
            stream = (await http.post("/v1/streams", json={"title": "m"}, headers=creator)).json()
            url = server.base_url.replace("http://", "ws://") + f"/v1/streams/{stream['id']}/ws"
            viewer_url = await as_user(http, url, viewer_token)
            creator_url = await as_user(http, url, creator_token)
        async with (
            websockets.connect(viewer_url) as viewer_ws,
            websockets.connect(creator_url) as creator_ws,
        ):
            viewer, host = Client(viewer_ws), Client(creator_ws)
            await viewer.recv()
            await host.recv()
            await viewer.until(lambda e: e["type"] == "join" and e["users"])  # the host came
            said = await viewer.command(id=1, cmd="chat", text="buy my crypto")
            message_id = said["result"]["message_id"]
            refused = await viewer.command(id=2, cmd="mute", user_id=viewer_id)
            assert refused["error"]["code"] == "not_moderator"
            deleted = await host.command(id=3, cmd="delete_message", message_id=message_id)
            assert deleted["result"] == {"deleted": message_id}
            muted = await host.command(id=4, cmd="mute", user_id=viewer_id, minutes=5)
            assert muted["result"]["muted"] == viewer_id
            await viewer.until(lambda e: e["type"] == "muted")
            again = await viewer.command(id=5, cmd="chat", text="hello?")
            assert again["error"]["code"] == "muted"
            await viewer.until(lambda e: e["type"] == "chat_deleted")
            [gone] = viewer.events("chat_deleted")
            assert gone["message_ids"] == [message_id]
        async with websockets.connect(url) as late_ws:
            snapshot = orjson.loads(await asyncio.wait_for(late_ws.recv(), 5))["events"][0]
        assert snapshot["chat"] == []  # the deleted message is gone for newcomers too
