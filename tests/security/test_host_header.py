"""A forged Host header (#16): reflected into absolute URLs, or a DNS-rebinding page's way in.

With ``GIFTWAVE_PUBLIC_URL`` unset, giftwave builds the overlay's URL, the checkout's address
and share links from the request's Host. The attacker sends ``Host: evil.example``: it must be
refused (400 problem+json ``unknown_host``) on every path, the two fast lanes (gifts, share
redirects) and the room socket included, before anything is built or stored. With a public URL
configured, every absolute URL is built from it, whatever Host the request named. Share links
and orders are stored: SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from economy_client import PROBLEM_FIELDS
from liveclient import person
from serverproc import HOST, ServerProcess, one_server

from giftwave.db.urls import DatabaseUrl

FORGED = "evil.example"
PUBLIC_URL = "http://giftwave.test:8443"  # a reserved name: nothing connects to it here


@dataclass(frozen=True, slots=True)
class Site:
    server: ServerProcess
    creator: dict[str, str]
    stream_id: str
    share_code: str


async def _prepare(base: str) -> tuple[dict[str, str], str, str]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        _, token = await person(http, "creator")
        creator = {"Authorization": f"Bearer {token}"}
        r = await http.post("/v1/streams", json={"title": "Hosts"}, headers=creator)
        assert r.status_code == 201, r.text
        stream_id = str(r.json()["id"])
        share = {"target_kind": "stream", "target_id": stream_id, "channel": "copy"}
        r = await http.post("/v1/shares", json=share, headers=creator)
        assert r.status_code == 201, r.text
        return creator, stream_id, str(r.json()["code"])


@pytest.fixture(scope="module")
def site(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """A server with the default allow-list and no public URL, per backend."""
    with one_server(module_bare_db_url, tmp_path_factory.mktemp("logs")) as server:
        creator, stream_id, code = asyncio.run(_prepare(server.base_url))
        yield Site(server, creator, stream_id, code)


def _unknown_host(r: httpx.Response) -> None:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body.keys() >= PROBLEM_FIELDS
    assert body["code"] == "unknown_host"
    assert FORGED not in r.text  # nothing of the forged name comes back


async def test_a_forged_host_is_refused_everywhere(site: Site) -> None:
    forged = {"Host": FORGED}
    async with httpx.AsyncClient(base_url=site.server.base_url, timeout=30) as http:
        creator = site.creator | forged
        _unknown_host(await http.get("/", headers=forged))
        _unknown_host(await http.get("/v1/creators/me/overlay", headers=creator))
        topup = {"coins": 100, "idempotency_key": "host-1"}
        _unknown_host(await http.post("/v1/topups", json=topup, headers=creator))
        share = {"target_kind": "stream", "target_id": site.stream_id, "channel": "x"}
        _unknown_host(await http.post("/v1/shares", json=share, headers=creator))
        # The fast lanes, answered before the framework.
        _unknown_host(await http.get(f"/s/{site.share_code}", headers=forged))
        gift = {"gift_id": "rose", "idempotency_key": "host-gift"}
        path = f"/v1/streams/{site.stream_id}/gifts"
        _unknown_host(await http.post(path, json=gift, headers=creator))
        # A port, another case, a trailing dot or credentials change nothing.
        for host in (f"{FORGED}:{site.server.port}", "EVIL.example", "localhost.", f"a@{FORGED}"):
            r = await http.get("/", headers={"Host": host})
            assert r.status_code == 400, (host, r.status_code)
        # Nothing was made: the creator has no order.
        orders = await http.get("/v1/topups", headers=site.creator)
        assert orders.status_code == 200, orders.text
        assert orders.json() == []
        # Load balancers ask by the node's address: /healthz holds no URL and answers.
        assert (await http.get("/healthz", headers=forged)).status_code == 200


async def _upgrade_status(server: ServerProcess, host: str, path: str) -> str:
    """The status line a WebSocket upgrade naming ``host`` gets."""
    reader, writer = await asyncio.open_connection(HOST, server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    await writer.wait_closed()
    return line.decode().strip()


async def test_the_room_socket_refuses_a_forged_host(site: Site) -> None:
    path = f"/v1/streams/{site.stream_id}/ws"
    assert " 403 " in await _upgrade_status(site.server, FORGED, path) + " "
    # The control: the same upgrade naming the server's own address is answered.
    assert " 101 " in await _upgrade_status(site.server, f"{HOST}:{site.server.port}", path) + " "


async def test_allowed_hosts_are_answered_and_urls_follow_them(site: Site) -> None:
    """The default allow-list: the loopback names. With no public URL, the URL handed out
    names the host asked for, which can now only be one of them."""
    async with httpx.AsyncClient(base_url=site.server.base_url, timeout=30) as http:
        local = site.creator | {"Host": f"localhost:{site.server.port}"}
        r = await http.get("/v1/creators/me/overlay", headers=local)
        assert r.status_code == 200, r.text
        assert r.json()["url"].startswith(f"http://localhost:{site.server.port}/overlay/live?key=")
        r = await http.get("/", headers={"Host": f"[::1]:{site.server.port}"})
        assert r.status_code == 200


@pytest.mark.parametrize("module_bare_db_url", ["sqlite"], indirect=True)
def test_with_a_public_url_every_absolute_url_is_built_from_it(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {"GIFTWAVE_PUBLIC_URL": PUBLIC_URL, "GIFTWAVE_ALLOWED_HOSTS": '["127.0.0.1"]'}
    with one_server(module_bare_db_url, tmp_path_factory.mktemp("public"), **env) as server:
        asyncio.run(_public_urls(server))


async def _public_urls(server: ServerProcess) -> None:
    creator, stream_id, code = await _prepare(server.base_url)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        for host in (f"{HOST}:{server.port}", "giftwave.test:8443"):  # listed; the public one
            asked = creator | {"Host": host}
            r = await http.get("/v1/creators/me/overlay", headers=asked)
            assert r.status_code == 200, r.text
            assert r.json()["url"].startswith(f"{PUBLIC_URL}/overlay/live?key="), r.json()
            topup = {"coins": 100, "idempotency_key": f"public-{host}"}
            r = await http.post("/v1/topups", json=topup, headers=asked)
            assert r.status_code == 201, r.text
            assert r.json()["checkout_url"].startswith(f"{PUBLIC_URL}/sandbox/checkout/")
            share = {"target_kind": "stream", "target_id": stream_id, "channel": "copy"}
            r = await http.post("/v1/shares", json=share, headers=asked)
            assert r.status_code in (200, 201), r.text
            assert r.json()["url"] == f"{PUBLIC_URL}/s/{code}"
        # An explicit list replaces the loopback default: localhost is not on it.
        _unknown_host(await http.get("/", headers={"Host": FORGED}))
        r = await http.get("/", headers={"Host": f"localhost:{server.port}"})
        assert r.status_code == 400
