"""Issue 17, item 2: an operator's reversal reaches every live room. Real `giftwave serve`
processes on SQLite and PostgreSQL, one node on memory:// and two nodes over Redis.

A stream with a coins goal, in a battle, watched on each node (and the opponent's room too);
the admin reverses one gift during the battle and another after it ended. Every viewer sees the
board, the totals, the goal (reached, then not) and the battle score drop, at once; the stored
result is corrected (the winner with it); a viewer of a node that rebuilds the room from the
database sees the same; the creator's webhook receives `gift_reversed`; a replayed reversal
changes nothing anyone sees and queues no second delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import websockets
from liveclient import Client, person
from serverproc import ADMIN_TOKEN, ServerGroup, ServerProcess, giftwave_env, migrate
from webhook_receiver import Receiver

from giftwave.db.urls import DatabaseUrl

ADMIN: Final = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
REDIS_URL: Final = os.environ.get("GIFTWAVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
S: Final = 1_000_000
GOAL_COINS: Final = 700
BATTLE_S: Final = 6  # long enough to see the live score drop on a busy machine
_keys = itertools.count(1)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ws(server: ServerProcess, stream_id: str) -> str:
    return server.base_url.replace("http://", "ws://") + f"/v1/streams/{stream_id}/ws"


def _scores(battle: dict[str, Any]) -> list[int]:
    return [side["score"] for side in battle.get("sides", ())]


def _board(event: dict[str, Any]) -> list[tuple[str, int]]:
    return [(row["handle"], row["coins"]) for row in event["top"]]


def _latest(client: Client, kind: str) -> dict[str, Any]:
    """The newest ``kind`` event this viewer got, from a frame or the snapshot it started with."""
    for frame in reversed(client.frames):
        for event in reversed(frame["events"]):
            if event["type"] == kind:
                return dict(event)
            if event["type"] == "snapshot":
                return dict(event[kind])
    raise AssertionError(f"no {kind} event")


async def _sees(client: Client, want: dict[str, Any], wait_s: float = 8.0) -> None:
    """Until the viewer's latest board, totals, goal and battle are ``want``."""

    def now() -> dict[str, Any]:
        board, goal, battle = (_latest(client, k) for k in ("leaderboard", "goal", "battle"))
        return {
            "board": _board(board),
            "coins": board["coins"],
            "goal": (goal["progress"], goal["reached"]),
            "battle": (battle.get("status"), _scores(battle), battle.get("winner")),
        }

    deadline = time.monotonic() + wait_s
    while now() != want:
        assert time.monotonic() < deadline, f"the viewer shows {now()}, not {want}"
        with contextlib.suppress(TimeoutError):
            await client.recv(max(0.05, deadline - time.monotonic()))


async def _drain(client: Client, quiet_s: float = 0.7) -> None:
    """Every frame that arrives until the room has been quiet for ``quiet_s`` (longer than
    the board's half second)."""
    while True:
        try:
            await client.recv(quiet_s)
        except TimeoutError:
            return


class Evening:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.tokens: dict[str, str] = {}
        self.handles: dict[str, str] = {}

    async def setup(self) -> tuple[str, str]:
        for name in ("fan", "fan2"):
            user_id, token = await person(self.http, "viewer")
            self.tokens[name] = token
            r = await self.http.get("/v1/me", headers=_auth(token))
            self.handles[name] = r.json()["handle"]
            r = await self.http.post(
                f"/v1/admin/users/{user_id}/coins",
                json={"coins": 10_000, "idempotency_key": name},
                headers=ADMIN,
            )
            assert r.status_code == 200, r.text
        streams = []
        for name in ("a", "b"):
            _, token = await person(self.http, "creator")
            self.tokens[name] = token
            r = await self.http.post("/v1/streams", json={"title": name}, headers=_auth(token))
            assert r.status_code == 201, r.text
            streams.append(str(r.json()["id"]))
        return streams[0], streams[1]

    async def gift(self, who: str, stream_id: str, gift_id: str, count: int = 1) -> str:
        r = await self.http.post(
            f"/v1/streams/{stream_id}/gifts",
            json={"gift_id": gift_id, "count": count, "idempotency_key": f"k{next(_keys)}"},
            headers=_auth(self.tokens[who]),
        )
        assert r.status_code == 201, r.text
        return str(r.json()["send_id"])

    async def reverse(self, send_id: str, via: httpx.AsyncClient) -> dict[str, Any]:
        r = await via.post(f"/v1/admin/gift-sends/{send_id}/reverse", headers=ADMIN)
        assert r.status_code == 200, r.text
        return dict(r.json())


# Each database once, each broker once: the room's rules run on both brokers, the storage
# (the reversal's mark, the seed, the stored result) on both databases.
@pytest.mark.parametrize(
    ("bare_db_url", "broker"),
    [("sqlite", "memory"), ("postgresql", "redis")],
    indirect=["bare_db_url"],
)
async def test_a_reversal_reaches_every_room_the_battle_and_the_webhook(
    bare_db_url: DatabaseUrl, broker: str, tmp_path: Path
) -> None:
    env = giftwave_env(bare_db_url)
    env.update(
        GIFTWAVE_PASSWORD_TIME_COST="1",
        GIFTWAVE_PASSWORD_MEMORY_KIB="8",
        GIFTWAVE_BATTLE_MIN_DURATION_S="1",
        GIFTWAVE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES="true",  # the receiver is on 127.0.0.1
    )
    if broker == "redis":
        env["GIFTWAVE_BROKER_URL"] = REDIS_URL
    migrate(env)
    with ServerGroup(tmp_path, env) as servers, Receiver() as receiver:
        nodes = servers.start(*(["one"] if broker == "memory" else ["one", "two"]))
        one, two = nodes[0], nodes[-1]  # memory://: both viewers on the one node
        async with (
            httpx.AsyncClient(base_url=one.base_url, timeout=30) as http,
            httpx.AsyncClient(base_url=two.base_url, timeout=30) as http_two,
        ):
            evening = Evening(http)
            a, b = await evening.setup()
            fan, fan2 = evening.handles["fan"], evening.handles["fan2"]
            r = await http.post(
                "/v1/creators/me/webhooks",
                json={"url": receiver.url("/hooks"), "events": ["gift_reversed"]},
                headers=_auth(evening.tokens["a"]),
            )
            assert r.status_code == 201, r.text
            r = await http.put(
                f"/v1/streams/{a}/goal",
                json={"kind": "coins", "target": GOAL_COINS, "title": "Corgi night"},
                headers=_auth(evening.tokens["a"]),
            )
            assert r.status_code == 200, r.text
            async with (
                websockets.connect(_ws(one, a)) as on_one,
                websockets.connect(_ws(two, a)) as on_two,
                websockets.connect(_ws(two, b)) as opponent,
            ):
                viewers = [Client(on_one), Client(on_two)]
                rooms = [*viewers, Client(opponent)]
                for room in rooms:
                    await room.recv()
                r = await http.post(
                    "/v1/battles",
                    json={"stream_id": a, "opponent_stream_id": b, "duration_s": BATTLE_S},
                    headers=_auth(evening.tokens["a"]),
                )
                assert r.status_code == 201, r.text
                battle_id = r.json()["id"]
                r = await http_two.post(
                    f"/v1/battles/{battle_id}/accept", headers=_auth(evening.tokens["b"])
                )
                assert r.status_code == 200, r.text
                battle = r.json()
                await asyncio.sleep(max(0.0, battle["starts_at_us"] / S - time.time()) + 0.05)
                corgi = await evening.gift("fan", a, "corgi")  # 299
                money_gun = await evening.gift("fan", a, "money_gun")  # 500
                await evening.gift("fan2", a, "hand_hearts")  # 100
                await evening.gift("fan2", b, "hand_hearts", count=2)  # 200
                live = ("active", [899, 200], None)
                before = {
                    "board": [(fan, 799), (fan2, 100)],
                    "coins": 899,
                    "goal": (899, True),
                    "battle": live,
                }
                for viewer in viewers:
                    await _sees(viewer, before)

                # During the battle: every room of both streams, on every node, at once.
                receipt = await evening.reverse(corgi, via=http)
                assert receipt["coins_returned"] == 299
                after_corgi = {
                    "board": [(fan, 500), (fan2, 100)],
                    "coins": 600,
                    "goal": (600, False),
                    "battle": ("active", [600, 200], None),
                }
                for viewer in viewers:
                    await _sees(viewer, after_corgi)
                    (said,) = viewer.events("gift_reversed")
                    assert (said["send_id"], said["coins"], said["combo_count"]) == (
                        corgi,
                        299,
                        0,
                    )
                await rooms[2].until(  # the opponent's room
                    lambda e: e["type"] == "battle" and _scores(e) == [600, 200]
                )
                assert _latest(rooms[2], "battle")["status"] == "active"
                assert time.time() * S < battle["ends_at_us"], "too slow to see the live score"

                # A replay: the first receipt, and nothing anyone sees changes.
                assert await evening.reverse(corgi, via=http_two) == receipt
                for room in rooms:
                    await _drain(room)
                for viewer in viewers:
                    assert len(viewer.events("gift_reversed")) == 1
                    await _sees(viewer, after_corgi, wait_s=0)

                # After the battle's end: the stored result, and the winner, follow.
                for room in rooms:
                    await room.until(lambda e: e["type"] == "battle_ended", wait_s=15)
                await evening.reverse(money_gun, via=http_two)
                after_all = {
                    "board": [(fan2, 100)],
                    "coins": 100,
                    "goal": (100, False),
                    "battle": ("ended", [100, 200], "b"),
                }
                for viewer in viewers:
                    await _sees(viewer, after_all)
                await rooms[2].until(
                    lambda e: (
                        e["type"] == "battle" and (_scores(e), e["winner"]) == ([100, 200], "b")
                    )
                )
            r = await http.get(f"/v1/battles/{battle_id}")
            assert (_scores(r.json()), r.json()["winner"]) == ([100, 200], "b")

            # A node that rebuilds the room from the database (history too, over Redis); a
            # replay through it changes nothing there either.
            [fresh] = servers.start("fresh")
            async with (
                httpx.AsyncClient(base_url=fresh.base_url, timeout=30) as http_fresh,
                websockets.connect(_ws(fresh, a)) as late,
            ):
                newcomer = Client(late)
                snapshot = (await newcomer.recv(10))["events"][0]
                shown = [*snapshot["recent_gifts"], *snapshot["combos"]]
                assert sum(g["coins"] for g in shown) == 100
                assert not {corgi, money_gun} & {g["combo_id"] for g in shown}
                await _sees(newcomer, after_all, wait_s=0)
                await evening.reverse(money_gun, via=http_fresh)
                await _drain(newcomer)
                assert newcomer.events("gift_reversed") == []
                await _sees(newcomer, after_all, wait_s=0)

        # The creator's webhook: one gift_reversed per reversal, the replay queued nothing.
        got = await receiver.until(lambda got: len(got) >= 2, path="/hooks")
        events = sorted((g.event for g in receiver.got("/hooks")), key=lambda e: e["id"])
        assert [e["id"] for e in events] == sorted(
            [f"gift_reversed:{corgi}", f"gift_reversed:{money_gun}"]
        )
        assert len({g.delivery for g in got}) == 2
        by_send = {e["data"]["send_id"]: e for e in events}
        assert by_send[corgi]["type"] == "gift_reversed"
        assert by_send[corgi]["data"]["stream_id"] == a
        assert (by_send[corgi]["data"]["coins"], by_send[money_gun]["data"]["coins"]) == (299, 500)
        assert by_send[corgi]["data"]["sender"] == fan
