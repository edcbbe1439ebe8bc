"""Session tokens out of WebSocket URLs and out of logs, against two real server processes on
one database, on SQLite and PostgreSQL.

The attack: a room socket's URL carried the session token (``?token=``), and uvicorn writes
every WebSocket's URL to the server's log; whoever reads the log acts as the user, payouts
included, for a month. Now a socket takes a ticket instead: asked for with the usual
credentials, good for one connection to one stream within seconds, on any node, and never in
the log; ``?token=`` opens nothing.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any, Final

import httpx
import orjson
import pytest
import websockets
from liveclient import go_live, person
from serverproc import ServerGroup, ServerProcess, giftwave_env, migrate

from giftwave.db.urls import DatabaseUrl

TICKET_TTL_S: Final = 2
CLOSE_BAD_TICKET: Final = 4401
PROBLEM_KEYS: Final = {"type", "title", "status", "detail", "code"}


@pytest.fixture(scope="module")
def nodes(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServerProcess]]:
    """Two nodes on one database; tickets lapse after two seconds."""
    env = giftwave_env(module_bare_db_url)
    env.update(
        GIFTWAVE_PASSWORD_TIME_COST="1",
        GIFTWAVE_PASSWORD_MEMORY_KIB="8",
        GIFTWAVE_WS_TICKET_TTL_S=str(TICKET_TTL_S),
    )
    migrate(env)
    with ServerGroup(tmp_path_factory.mktemp("tickets"), env) as group:
        yield group.start("a", "b")


def _ws(node: ServerProcess, stream_id: str, query: str = "") -> str:
    url = node.base_url.replace("http://", "ws://") + f"/v1/streams/{stream_id}/ws"
    return f"{url}?{query}" if query else url


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _ticket(http: httpx.AsyncClient, token: str, stream_id: str) -> str:
    r = await http.post(f"/v1/streams/{stream_id}/ws-ticket", headers=_bearer(token))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["expires_in_s"] == TICKET_TTL_S
    return str(body["ticket"])


async def _like(url: str) -> dict[str, Any]:
    """Open the socket, take the snapshot, tap like once: the answer (or the close)."""
    async with websockets.connect(url) as ws:
        first = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert first["events"][0]["type"] == "snapshot"
        await ws.send(orjson.dumps({"id": 1, "cmd": "like"}).decode())
        while True:
            message = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            if message.get("ack") == 1:
                return dict(message)


async def _refused(url: str) -> int:
    """The close code of a socket the server shuts at once."""
    async with websockets.connect(url) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def _room(http: httpx.AsyncClient) -> tuple[str, str]:
    """A live stream and a logged-in viewer's session token."""
    _, creator = await person(http, "creator")
    _, viewer = await person(http, "viewer")
    return await go_live(http, creator, "tickets"), viewer


async def test_a_ticket_opens_one_socket_once_on_any_node(nodes: list[ServerProcess]) -> None:
    a, b = nodes
    async with httpx.AsyncClient(base_url=a.base_url, timeout=30) as http:
        stream, viewer = await _room(http)
        ticket = await _ticket(http, viewer, stream)  # asked for on node a
        acted = await _like(_ws(b, stream, f"ticket={ticket}"))  # used on node b
        assert acted["result"] == {"liked": 1}, acted
        for node in (a, b):  # spent, on every node
            assert await _refused(_ws(node, stream, f"ticket={ticket}")) == CLOSE_BAD_TICKET

        # Five sockets race with one ticket, on both nodes: exactly one of them gets in.
        ticket = await _ticket(http, viewer, stream)
        url_a, url_b = _ws(a, stream, f"ticket={ticket}"), _ws(b, stream, f"ticket={ticket}")
        outcomes = await asyncio.gather(
            *(_outcome(url) for url in (url_a, url_b, url_a, url_b, url_a))
        )
        assert sorted(outcomes) == ["acted", "refused", "refused", "refused", "refused"]


async def _outcome(url: str) -> str:
    try:
        acted = await _like(url)
    except websockets.ConnectionClosed as closed:
        code = None if closed.rcvd is None else closed.rcvd.code
        return "refused" if code == CLOSE_BAD_TICKET else f"closed {code}"
    assert acted["result"] == {"liked": 1}, acted
    return "acted"


async def test_a_ticket_lapses_and_is_for_one_stream(nodes: list[ServerProcess]) -> None:
    a, b = nodes
    async with httpx.AsyncClient(base_url=a.base_url, timeout=30) as http:
        stream, viewer = await _room(http)
        other = await go_live(http, (await person(http, "creator"))[1], "elsewhere")
        late = await _ticket(http, viewer, stream)
        for_other = await _ticket(http, viewer, other)
        await asyncio.sleep(TICKET_TTL_S + 0.5)
        assert await _refused(_ws(b, stream, f"ticket={late}")) == CLOSE_BAD_TICKET
        fresh = await _ticket(http, viewer, other)
        assert await _refused(_ws(a, stream, f"ticket={fresh}")) == CLOSE_BAD_TICKET
        assert await _refused(_ws(a, other, f"ticket={for_other}")) == CLOSE_BAD_TICKET


async def test_forged_tickets_and_session_tokens_in_the_url_open_nothing(
    nodes: list[ServerProcess],
) -> None:
    a, _ = nodes
    async with httpx.AsyncClient(base_url=a.base_url, timeout=30) as http:
        stream, viewer = await _room(http)
        for forged in (secrets.token_urlsafe(32), viewer, "x" * 5000, ""):
            assert await _refused(_ws(a, stream, f"ticket={forged}")) == CLOSE_BAD_TICKET
        # The old way: the session token itself in the URL. It watches, anonymously.
        anonymous = await _like(_ws(a, stream, f"token={viewer}"))
        assert anonymous["error"]["code"] == "login_required", anonymous


async def test_only_the_users_own_credentials_get_a_ticket(nodes: list[ServerProcess]) -> None:
    a, _ = nodes
    async with httpx.AsyncClient(base_url=a.base_url, timeout=30) as http:
        stream, viewer = await _room(http)
        path = f"/v1/streams/{stream}/ws-ticket"
        anonymous = await http.post(path)
        forged = await http.post(path, headers=_bearer(secrets.token_urlsafe(32)))
        missing = await http.post("/v1/streams/st_nope/ws-ticket", headers=_bearer(viewer))
        # A cookie without the CSRF header: what a form on another site would send.
        by_cookie = await http.post(path, headers={"Cookie": f"gw_session={viewer}"})
        for r, status, code in (
            (anonymous, 401, "unauthorized"),
            (forged, 401, "unauthorized"),
            (missing, 404, "stream_not_found"),
            (by_cookie, 403, "csrf_failed"),
        ):
            assert r.status_code == status, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json().keys() >= PROBLEM_KEYS, r.text
            assert r.json()["code"] == code, r.text
        # A loop asking for tickets it never uses stops at a bound: it cannot fill the table.
        answers = [(await http.post(path, headers=_bearer(viewer))).status_code for _ in range(25)]
        assert answers.count(201) == 20, answers
        assert answers[-1] == 429, answers


async def test_no_session_token_or_ticket_reaches_the_log(nodes: list[ServerProcess]) -> None:
    a, b = nodes
    async with httpx.AsyncClient(base_url=a.base_url, timeout=30) as http:
        stream, viewer = await _room(http)
        ticket = await _ticket(http, viewer, stream)
        assert (await _like(_ws(a, stream, f"ticket={ticket}&since=0")))["result"]
        await _like(_ws(b, stream, f"token={viewer}"))  # an old client: the token in the URL
        assert await _refused(_ws(b, stream, f"ticket={ticket}")) == CLOSE_BAD_TICKET
    await asyncio.sleep(0.3)  # the log lines are written as the sockets come and go
    logs = a.log_text() + b.log_text()
    assert f"/v1/streams/{stream}/ws?ticket=[redacted]&since=0" in logs  # the line is there
    assert f"/v1/streams/{stream}/ws?token=[redacted]" in logs
    assert viewer not in logs
    assert ticket not in logs
