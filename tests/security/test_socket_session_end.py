"""A room socket lives as long as the session it was opened with, on every node.

The attack: a session token leaks (a shared computer, a stolen laptop); its owner logs out
to end it. Before, a room socket opened with it stayed open and kept acting as the user, gifts
(their coins) included, for as long as the thief kept it open: the socket checked the user,
not the session. Now a socket ticket names the session it was asked with, a ticket whose
session has ended opens nothing, and a logout on any node closes that session's sockets on
every node at once (the ``session_ended`` notice through Redis), while the user's other
sessions keep theirs. Two `giftwave serve` processes, a private Redis, SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any, Final

import httpx
import orjson
import pytest
import websockets
from liveclient import go_live, person
from redisproc import PrivateRedis
from serverproc import ServerGroup, ServerProcess, giftwave_env, migrate

from giftwave.db.urls import DatabaseUrl

CLOSE_SESSION_ENDED: Final = 4401
AT_ONCE_S: Final = 3.0  # a notice's trip through Redis, with room for a loaded machine
PASSWORD: Final = "pw-pw-pw-pw"
_n = itertools.count(1)


@pytest.fixture(scope="module")
def nodes(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServerProcess]]:
    tmp = tmp_path_factory.mktemp("session-end")
    with PrivateRedis(tmp) as redis:
        env = giftwave_env(module_bare_db_url)
        env.update(
            GIFTWAVE_PASSWORD_TIME_COST="1",
            GIFTWAVE_PASSWORD_MEMORY_KIB="8",
            GIFTWAVE_BROKER_URL=redis.url,
        )
        migrate(env)
        with ServerGroup(tmp, env) as group:
            yield group.start("a", "b")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _viewer(http: httpx.AsyncClient) -> tuple[str, str]:
    """A new viewer: their handle and a first session's token."""
    handle = f"leaky{next(_n)}"
    r = await http.post(
        "/v1/auth/register",
        json={
            "handle": handle,
            "email": f"{handle}@ws.test",
            "password": PASSWORD,
            "birth_date": "1990-01-01",
            "country": "US",
            "role": "viewer",
        },
    )
    assert r.status_code == 201, r.text
    return handle, str(r.json()["token"])


async def _log_in(http: httpx.AsyncClient, handle: str) -> str:
    r = await http.post("/v1/auth/login", json={"login": handle, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def _socket(node: ServerProcess, http: httpx.AsyncClient, token: str, stream: str) -> Any:
    r = await http.post(f"/v1/streams/{stream}/ws-ticket", headers=_bearer(token))
    assert r.status_code == 201, r.text
    url = node.base_url.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"
    ws = await websockets.connect(f"{url}?ticket={r.json()['ticket']}")
    first = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
    assert first["events"][0]["type"] == "snapshot"
    return ws


async def _like(ws: Any, command_id: int) -> dict[str, Any]:
    await ws.send(orjson.dumps({"id": command_id, "cmd": "like"}).decode())
    while True:
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        if message.get("ack") == command_id:
            return dict(message)


async def _closed_code(ws: Any) -> int:
    """The code the server closes ``ws`` with, waiting at most AT_ONCE_S."""

    async def until_closed() -> None:
        while True:
            await ws.recv()  # frames of the room until the close

    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(until_closed(), AT_ONCE_S)
    assert closed.value.rcvd is not None, "closed without a code: the server did not close it"
    return closed.value.rcvd.code


async def test_a_logout_on_one_node_closes_that_sessions_sockets_on_every_node(
    nodes: list[ServerProcess],
) -> None:
    a, b = nodes
    async with (
        httpx.AsyncClient(base_url=a.base_url, timeout=30) as on_a,
        httpx.AsyncClient(base_url=b.base_url, timeout=30) as on_b,
    ):
        _, creator = await person(on_a, "creator")
        stream = await go_live(on_a, creator, "leak")
        handle, leaked = await _viewer(on_a)
        other_session = await _log_in(on_a, handle)
        thief_on_a = await _socket(a, on_a, leaked, stream)
        thief_on_b = await _socket(b, on_b, leaked, stream)
        owner_on_a = await _socket(a, on_a, other_session, stream)
        assert (await _like(thief_on_a, 1))["result"] == {"liked": 1}
        # A ticket asked for now, used after the logout, must open nothing either.
        r = await on_a.post(f"/v1/streams/{stream}/ws-ticket", headers=_bearer(leaked))
        late_ticket = r.json()["ticket"]

        logout = await on_b.post("/v1/auth/logout", headers=_bearer(leaked))
        assert logout.status_code == 204, logout.text

        assert await _closed_code(thief_on_a) == CLOSE_SESSION_ENDED  # the other node
        assert await _closed_code(thief_on_b) == CLOSE_SESSION_ENDED  # the logout's node
        # The owner's other session is not touched.
        assert (await _like(owner_on_a, 2))["result"] == {"liked": 1}
        await owner_on_a.close()
        url = a.base_url.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"
        async with websockets.connect(f"{url}?ticket={late_ticket}") as late:
            assert await _closed_code(late) == CLOSE_SESSION_ENDED
        # And the leaked token itself is worth nothing now.
        again = await on_a.post(f"/v1/streams/{stream}/ws-ticket", headers=_bearer(leaked))
        assert again.status_code == 401, again.text
