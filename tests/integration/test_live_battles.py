"""Battles against real `giftwave serve` processes, on SQLite and PostgreSQL, one node and two
over Redis: viewers in BOTH rooms see the live scores and the same result, whose scores are the
coins of the gifts committed to each side during the battle; a battle outlives a restart."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from liveclient import Client, as_user, person
from serverproc import ADMIN_TOKEN, ServerGroup, ServerProcess, giftwave_env, migrate

from giftwave.db.urls import DatabaseUrl

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
S = 1_000_000
_keys = itertools.count(1)


def _env(db: DatabaseUrl, **extra: str) -> dict[str, str]:
    env = giftwave_env(db)
    env.update(
        GIFTWAVE_PASSWORD_TIME_COST="1",
        GIFTWAVE_PASSWORD_MEMORY_KIB="8",
        GIFTWAVE_BATTLE_MIN_DURATION_S="1",  # battles of seconds, not minutes
        **extra,
    )
    migrate(env)
    return env


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ws_url(server: ServerProcess, stream_id: str) -> str:
    return server.base_url.replace("http://", "ws://") + f"/v1/streams/{stream_id}/ws"


class Stage:
    """Two creators live, a fan with coins, and every gift receipt the fan got."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.receipts: list[dict[str, Any]] = []
        self.fan = ""
        self.tokens: dict[str, str] = {}  # stream → its creator's token
        self.streams: list[str] = []

    async def setup(self) -> None:
        fan_id, self.fan = await person(self.http, "viewer")
        r = await self.http.post(
            f"/v1/admin/users/{fan_id}/coins",
            json={"coins": 100_000, "idempotency_key": "fan"},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
        for _ in range(2):
            _, token = await person(self.http, "creator")
            r = await self.http.post("/v1/streams", json={"title": "battle"}, headers=_auth(token))
            assert r.status_code == 201, r.text
            self.streams.append(r.json()["id"])
            self.tokens[r.json()["id"]] = token

    async def battle(self, duration_s: int, accept_on: httpx.AsyncClient) -> dict[str, Any]:
        """Stream A challenges stream B; B's creator accepts (through ``accept_on``)."""
        a, b = self.streams
        r = await self.http.post(
            "/v1/battles",
            json={"stream_id": a, "opponent_stream_id": b, "duration_s": duration_s},
            headers=_auth(self.tokens[a]),
        )
        assert r.status_code == 201, r.text
        r = await accept_on.post(
            f"/v1/battles/{r.json()['id']}/accept", headers=_auth(self.tokens[b])
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def gift(self, stream_id: str, gift_id: str, count: int = 1, via: Any = None) -> None:
        r = await (via or self.http).post(
            f"/v1/streams/{stream_id}/gifts",
            json={"gift_id": gift_id, "count": count, "idempotency_key": f"k{next(_keys)}"},
            headers=_auth(self.fan),
        )
        assert r.status_code == 201, r.text
        self.receipts.append(r.json())

    def committed_coins(self, battle: dict[str, Any]) -> list[int]:
        """What each side should score: the fan's committed gifts within the battle's time."""
        return [
            sum(
                g["coins"]
                for g in self.receipts
                if g["stream_id"] == side["stream_id"]
                and battle["starts_at_us"] <= g["created_at_us"] < battle["ends_at_us"]
            )
            for side in battle["sides"]
        ]


async def _sleep_until(at_us: int) -> None:
    await asyncio.sleep(max(0.0, at_us / S - time.time()) + 0.05)


def _scores(event: dict[str, Any]) -> list[int]:
    return [side["score"] for side in event["sides"]]


def _battle_events(client: Client) -> list[dict[str, Any]]:
    return [e for f in client.frames for e in f["events"] if e["type"].startswith("battle")]


async def _until_scores(client: Client, scores: list[int]) -> None:
    await client.until(lambda e: e["type"] == "battle" and _scores(e) == scores)


async def _drain(client: Client, quiet_s: float = 0.3) -> None:
    """Read every frame that arrived, until the room has been quiet for ``quiet_s``."""
    while True:
        try:
            await client.recv(quiet_s)
        except TimeoutError:
            return


def _states(client: Client) -> list[tuple[str, list[int]]]:
    """The battle as this viewer saw it change: statuses and scores, repeats left out."""
    seen: list[tuple[str, list[int]]] = []
    for e in client.events("battle"):
        if not seen or seen[-1] != (e["status"], _scores(e)):
            seen.append((e["status"], _scores(e)))
    return seen


@pytest.mark.parametrize("bare_db_url", ["sqlite", "postgresql"], indirect=True)
async def test_viewers_of_both_rooms_see_the_scores_and_the_same_result(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    env = _env(bare_db_url)
    with ServerGroup(tmp_path, env) as servers:
        [server] = servers.start("a")
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            stage = Stage(http)
            await stage.setup()
            a, b = stage.streams
            async with (
                websockets.connect(_ws_url(server, a)) as in_a,
                websockets.connect(await as_user(http, _ws_url(server, b), stage.fan)) as in_b,
            ):
                room_a, room_b = Client(in_a), Client(in_b)
                await room_a.recv()
                await room_b.recv()
                await stage.gift(a, "corgi")  # before the battle: no points
                battle = await stage.battle(3, accept_on=http)
                await stage.gift(b, "rose")  # during the countdown: no points
                for room in (room_a, room_b):
                    await room.until(lambda e: e["type"] == "battle" and e["status"] == "active")
                await _sleep_until(battle["starts_at_us"])
                await stage.gift(a, "rose", count=3)
                await stage.gift(a, "corgi")
                await stage.gift(b, "panda")
                ack = await room_b.command(
                    id=1, cmd="send_gift", gift_id="doughnut", idempotency_key="ws-doughnut"
                )
                stage.receipts.append(ack["result"])
                expected = stage.committed_coins(battle)
                assert expected == [302, 35]
                for room in (room_a, room_b):  # live, before the end
                    await _until_scores(room, expected)
                    assert _battle_events(room)[-1]["status"] == "active"
                for room in (room_a, room_b):
                    await room.until(lambda e: e["type"] == "battle_ended", wait_s=10)
                await asyncio.sleep(1.0)  # a second announcement would arrive by now
                for room in (room_a, room_b):
                    await _drain(room)
                    assert _states(room)[-1] == ("ended", expected)
                results = [room.events("battle_ended") for room in (room_a, room_b)]
                assert len(results[0]) == 1
                assert results[0] == results[1]  # the same result, in both rooms
                (result,) = results[0]
                assert (result["battle_id"], result["winner"]) == (battle["id"], "a")
                assert _scores(result) == expected
            r = await http.get(f"/v1/battles/{battle['id']}")
            assert (r.json()["status"], _scores(r.json())) == ("ended", expected)
            # A viewer who comes later sees the result in the snapshot.
            async with websockets.connect(_ws_url(server, b)) as late:
                snapshot = orjson.loads(await asyncio.wait_for(late.recv(), 5))["events"][0]
            assert (snapshot["battle"]["status"], _scores(snapshot["battle"])) == (
                "ended",
                expected,
            )


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_a_battle_outlives_a_restart(bare_db_url: DatabaseUrl, tmp_path: Path) -> None:
    """memory:// keeps rooms in the process: after a crash mid-battle the rebuilt rooms show
    the battle and its committed scores, and the new process ends it on time."""
    env = _env(bare_db_url)
    with ServerGroup(tmp_path, env) as servers:
        [first] = servers.start("first")
        async with httpx.AsyncClient(base_url=first.base_url, timeout=30) as http:
            stage = Stage(http)
            await stage.setup()
            battle = await stage.battle(10, accept_on=http)
            await _sleep_until(battle["starts_at_us"])
            await stage.gift(stage.streams[1], "panda", count=2)
        first.kill()
        [second] = servers.start("second")
        expected = stage.committed_coins(battle)
        assert expected == [0, 10]
        async with (
            websockets.connect(_ws_url(second, stage.streams[0])) as in_a,
            websockets.connect(_ws_url(second, stage.streams[1])) as in_b,
        ):
            room_a, room_b = Client(in_a), Client(in_b)
            for room in (room_a, room_b):
                snapshot = (await room.recv())["events"][0]["battle"]
                assert time.time() * S < battle["ends_at_us"], "restarted too slowly to test"
                assert (snapshot["battle_id"], snapshot["status"]) == (battle["id"], "active")
                assert _scores(snapshot) == expected
            for room in (room_a, room_b):
                await room.until(lambda e: e["type"] == "battle_ended", wait_s=15)
                (result,) = room.events("battle_ended")
                assert (result["winner"], _scores(result)) == ("b", expected)


@pytest.mark.parametrize("bare_db_url", ["postgresql"], indirect=True)
async def test_two_nodes_over_redis_show_both_rooms_the_same_battle(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    """Room A watched on node 1, room B on node 2 (and room A there too); gifts and answers
    go through either node; two sweepers, one result per room."""
    redis_url = os.environ.get("GIFTWAVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    env = _env(bare_db_url, GIFTWAVE_BROKER_URL=redis_url)
    with ServerGroup(tmp_path, env) as servers:
        one, two = servers.start("one", "two")
        async with (
            httpx.AsyncClient(base_url=one.base_url, timeout=30) as http_one,
            httpx.AsyncClient(base_url=two.base_url, timeout=30) as http_two,
        ):
            stage = Stage(http_one)
            await stage.setup()
            a, b = stage.streams
            async with (
                websockets.connect(_ws_url(one, a)) as a_on_one,
                websockets.connect(_ws_url(two, b)) as b_on_two,
                websockets.connect(_ws_url(two, a)) as a_on_two,
            ):
                rooms = [Client(a_on_one), Client(b_on_two), Client(a_on_two)]
                for room in rooms:
                    await room.recv()
                await stage.gift(a, "rose", via=http_two)  # node 2 now knows: no battle for A
                battle = await stage.battle(4, accept_on=http_two)
                await _sleep_until(battle["starts_at_us"])
                await stage.gift(a, "perfume", via=http_two)
                await stage.gift(b, "hand_hearts", via=http_one)
                await stage.gift(b, "rose", count=7, via=http_two)
                await stage.gift(a, "perfume", count=4, via=http_one)
                expected = stage.committed_coins(battle)
                assert expected == [100, 107]
                for room in rooms:
                    await _until_scores(room, expected)
                for room in rooms:
                    await room.until(lambda e: e["type"] == "battle_ended", wait_s=10)
                await asyncio.sleep(1.5)  # both nodes swept meanwhile: still one result
                for room in rooms:
                    await _drain(room)
                results = [room.events("battle_ended") for room in rooms]
                assert all(len(r) == 1 for r in results), results
                assert results[0] == results[1] == results[2]
                assert (results[0][0]["winner"], _scores(results[0][0])) == ("b", expected)
                # Each node ticks on its own clock, so it may fold points differently into
                # frames; what each viewer sees still only grows, and ends the same.
                for room in rooms:
                    states = _states(room)
                    assert [status for status, _ in states][-1] == "ended"
                    assert states == sorted(states, key=lambda s: (s[0] == "ended", sum(s[1])))
                    assert states[-1] == ("ended", expected)
                assert _battle_events(rooms[0])[-1] == _battle_events(rooms[2])[-1]
