"""Floods of a live room over real WebSockets against real servers: one user's chat lines and
likes from many sockets, a creator's moderation commands, and the same across two server
processes sharing Redis. A user's allowance is the user's, whatever the sockets or nodes; a
Redis outage lets chat through rather than stopping it.

Rate limits are not storage: these run on SQLite only (the broker is what varies).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import orjson
import pytest
import websockets
from liveclient import as_user, go_live, person
from redisproc import PrivateRedis
from serverproc import ServerGroup, ServerProcess, giftwave_env, migrate, one_server

from giftwave.db.urls import DatabaseUrl

SOCKETS: Final = 10
CHAT_BURST: Final = 3  # api/live.py CHAT_RATE: 1 a second, 3 at once
LIKE_BURST: Final = 20  # LIKE_RATE: 20 a second, 20 at once
MODERATION_BURST: Final = 20  # MODERATION_RATE: 5 a second, 20 at once
MAX_REFUSALS: Final = 100
CLOSE_POLICY: Final = 1008
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def server(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with one_server(module_bare_db_url, tmp_path_factory.mktemp("floods")) as started:
        yield started


def ws_url(server: ServerProcess, stream_id: str) -> str:
    return server.base_url.replace("http://", "ws://") + f"/v1/streams/{stream_id}/ws"


async def flood(ws: Any, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Send every command at once, then read the answers until all came or the server closed
    the socket."""
    for command in commands:
        await ws.send(orjson.dumps(command).decode())
    acks: list[dict[str, Any]] = []
    try:
        while len(acks) < len(commands):
            message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
            if "ack" in message:
                acks.append(message)
    except websockets.ConnectionClosed:
        pass
    return acks


def accepted(acks: list[dict[str, Any]]) -> int:
    return sum("result" in a for a in acks)


def limited(acks: list[dict[str, Any]]) -> int:
    return sum(a.get("error", {}).get("code") == "rate_limited" for a in acks)


def chats(n: int) -> list[dict[str, Any]]:
    return [{"id": next(_ids), "cmd": "chat", "text": f"buy followers {i}"} for i in range(n)]


def likes(n: int) -> list[dict[str, Any]]:
    return [{"id": next(_ids), "cmd": "like", "count": 1} for _ in range(n)]


async def open_sockets(
    http: httpx.AsyncClient, urls: list[str], token: str
) -> list[websockets.ClientConnection]:
    return [await websockets.connect(await as_user(http, url, token)) for url in urls]


async def flood_all(
    sockets: list[websockets.ClientConnection], make: Any, per_socket: int
) -> tuple[list[dict[str, Any]], float]:
    """Every socket floods at once: all the answers, and how long it took."""
    started = time.monotonic()
    answers = await asyncio.gather(*(flood(ws, make(per_socket)) for ws in sockets))
    return [a for acks in answers for a in acks], time.monotonic() - started


ON_SQLITE: Final = pytest.mark.parametrize(
    "module_bare_db_url", ["sqlite"], indirect=True, scope="module"
)


@ON_SQLITE
async def test_many_sockets_of_one_user_share_one_allowance(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        _, creator = await person(http, "creator")
        stream_id = await go_live(http, creator, "floods")
        _, spammer = await person(http, "viewer")
        sockets = await open_sockets(http, [ws_url(server, stream_id)] * SOCKETS, spammer)
        try:
            said, chat_s = await flood_all(sockets, chats, CHAT_BURST)
            liked, like_s = await flood_all(sockets, likes, LIKE_BURST)
        finally:
            for ws in sockets:
                await ws.close()
    # Per socket, it was SOCKETS times the allowance (30 lines, 200 likes).
    assert CHAT_BURST <= accepted(said) <= CHAT_BURST + math.floor(chat_s), (chat_s, said)
    assert limited(said) == len(said) - accepted(said)
    assert LIKE_BURST <= accepted(liked) <= LIKE_BURST + math.ceil(20 * like_s), like_s
    assert limited(liked) == len(liked) - accepted(liked)


async def muted_ids(watcher: websockets.ClientConnection, quiet_s: float) -> set[int]:
    """The users a viewer saw muted, read until the room is quiet for ``quiet_s``."""
    seen: set[int] = set()
    try:
        while True:
            frame = orjson.loads(await asyncio.wait_for(watcher.recv(), quiet_s))
            for event in frame.get("events", []):
                if event["type"] == "muted":  # one event a tick: [[user_id, until_us], …]
                    seen.update(user_id for user_id, _ in event["mutes"])
                elif event["type"] == "mute":
                    seen.add(event["user_id"])
    except TimeoutError:
        return seen


@ON_SQLITE
async def test_a_moderation_flood_is_limited_and_its_sockets_closed(
    server: ServerProcess,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        _, creator = await person(http, "creator")
        stream_id = await go_live(http, creator, "moderation flood")
        watcher = await websockets.connect(ws_url(server, stream_id))
        sockets = await open_sockets(http, [ws_url(server, stream_id)] * 2, creator)
        per_socket = MAX_REFUSALS + 50

        def mutes(n: int) -> list[dict[str, Any]]:
            return [
                {"id": next(_ids), "cmd": "mute", "user_id": 1_000_000 + next(_ids)}
                for _ in range(n)
            ]

        try:
            _, elapsed_s = await flood_all(sockets, mutes, per_socket)
            for ws in sockets:  # the server closes a socket refused more than MAX_REFUSALS times
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 10)
                assert ws.close_code == CLOSE_POLICY, ws.close_reason
            muted = await muted_ids(watcher, quiet_s=1.0)
        finally:
            for ws in [*sockets, watcher]:
                await ws.close()
    # One creator, two sockets, one allowance: MODERATION_BURST, plus 5 a second. Without a
    # limit, every one of the 2 x 150 commands would be an event in every viewer's frames.
    assert MODERATION_BURST <= len(muted) <= MODERATION_BURST + math.ceil(5 * elapsed_s)


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_two_nodes_share_a_users_allowance_and_redis_away_fails_open(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    env = giftwave_env(bare_db_url)
    env.update(GIFTWAVE_PASSWORD_TIME_COST="1", GIFTWAVE_PASSWORD_MEMORY_KIB="8")
    migrate(env)
    with PrivateRedis(tmp_path) as redis:
        env["GIFTWAVE_BROKER_URL"] = redis.url
        with ServerGroup(tmp_path, env) as group:
            a, b = group.start("a", "b")
            async with httpx.AsyncClient(base_url=a.base_url, timeout=30) as http:
                _, creator = await person(http, "creator")
                stream_id = await go_live(http, creator, "two nodes")
                _, spammer = await person(http, "viewer")
                urls = [ws_url(a, stream_id), ws_url(b, stream_id)] * (SOCKETS // 2)
                sockets = await open_sockets(http, urls, spammer)
                try:
                    said, chat_s = await flood_all(sockets, chats, CHAT_BURST)
                    # Per node, it would be twice the allowance.
                    assert accepted(said) <= CHAT_BURST + math.floor(chat_s), (chat_s, said)
                    assert accepted(said) >= CHAT_BURST
                    redis.kill()
                    # Redis away: chat goes on, unlimited for now, and the servers say so.
                    again = await flood(sockets[0], chats(CHAT_BURST + 2))
                    again += await flood(sockets[1], chats(CHAT_BURST + 2))
                    assert accepted(again) == len(again) == 2 * (CHAT_BURST + 2), again
                finally:
                    for ws in sockets:
                        await ws.close()
            for node in (a, b):
                assert "rate limits: Redis unreachable" in node.log_text()
