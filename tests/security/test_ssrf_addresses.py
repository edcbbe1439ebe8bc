"""Server-side request forgery through address tricks, against a real `giftwave serve` on SQLite
and PostgreSQL (one server per backend for the module).

A creator registers webhook endpoints and asks for clips cut from recordings at URLs whose host
is, or resolves to, an address that reaches inside: NAT64 and 6to4 addresses embedding
loopback, private or metadata IPv4 addresses, IPv4-mapped and IPv4-compatible IPv6, Teredo,
local-use NAT64, 0.0.0.0/8, CGNAT, benchmarking, multicast and reserved blocks. Every one must
be refused up front (422 problem+json) and leave nothing behind.

The server resolves names with a stub (tests/security/stub_dns, on its PYTHONPATH): the names
below answer the addresses given, every other name is unknown, so nothing here ever asks a
DNS server or connects anywhere but 127.0.0.1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from serverproc import ServerProcess, one_server, register_over_http

from giftwave.db.urls import DatabaseUrl

PASSWORD: Final = "correct horse battery staple"
STUB_DNS: Final = Path(__file__).resolve().parent / "stub_dns"
HOOKS: Final = "/v1/creators/me/webhooks"

# name → the addresses the stub resolver answers for it
INSIDE: Final = {
    "nat64-loopback.attacker.test": ["64:ff9b::7f00:1"],  # 64:ff9b::127.0.0.1
    "nat64-metadata.attacker.test": ["64:ff9b::a9fe:a9fe"],  # 169.254.169.254
    "nat64-private.attacker.test": ["64:ff9b::a00:1"],  # 10.0.0.1
    "nat64-local-use.attacker.test": ["64:ff9b:1::a00:1"],  # the network's own NAT64
    "mapped.attacker.test": ["::ffff:127.0.0.1"],
    "compatible.attacker.test": ["::127.0.0.1"],
    "sixtofour.attacker.test": ["2002:c0a8:101::1"],  # 6to4 of 192.168.1.1
    "teredo.attacker.test": ["2001:0:4136:e378:8000:63bf:3fff:fdd2"],
    "zero.attacker.test": ["0.0.0.0"],
    "this-network.attacker.test": ["0.1.2.3"],
    "cgnat.attacker.test": ["100.64.0.1"],
    "benchmarking.attacker.test": ["198.18.0.1"],
    "multicast.attacker.test": ["224.0.0.251"],
    "multicast6.attacker.test": ["ff02::1"],
    "reserved.attacker.test": ["240.0.0.1"],
    "unique-local.attacker.test": ["fd12:3456::1"],
    # one public address and one inside: every address must be public
    "mixed.attacker.test": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c", "64:ff9b::7f00:1"],
}
# Public, for the webhook registrations that must still work (nothing is ever sent to them:
# no event happens on these creators' streams; a clip is never asked of them).
OUTSIDE: Final = {
    "public.example.test": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "nat64-public.example.test": ["64:ff9b::5db8:d70e"],  # NAT64 of 93.184.215.14
}
LITERALS: Final = [
    "[64:ff9b::7f00:1]",
    "[64:ff9b::a9fe:a9fe]",
    "[64:ff9b:1::a00:1]",
    "[::ffff:7f00:1]",
    "[::127.0.0.1]",
    "[2002:7f00:1::]",
    "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",
    "0.0.0.0",
    "100.100.100.100",
    "198.19.255.1",
    "239.1.2.3",
]
REFUSED_HOSTS: Final = [*INSIDE, *LITERALS]


@pytest.fixture(scope="module")
def server(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    path = os.pathsep.join(p for p in (str(STUB_DNS), os.environ.get("PYTHONPATH")) if p)
    with one_server(
        module_bare_db_url,
        tmp_path_factory.mktemp("logs"),
        PYTHONPATH=path,
        STUB_DNS_HOSTS=json.dumps(INSIDE | OUTSIDE),
        GIFTWAVE_CLIP_STORE=str(tmp_path_factory.mktemp("clips")),
        GIFTWAVE_CLIP_TMP_DIR=str(tmp_path_factory.mktemp("cliptmp")),
    ) as proc:
        yield proc


@pytest.fixture
def creator(server: ServerProcess) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    with httpx.Client(base_url=server.base_url, timeout=15.0, trust_env=False) as client:
        _, bearer = register_over_http(client, "creator", "ssrf", PASSWORD)
        yield client, bearer


def _refused(r: httpx.Response, code: str) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    return body


def test_webhook_endpoints_that_reach_inside_are_refused_at_registration(
    creator: tuple[httpx.Client, dict[str, str]],
) -> None:
    client, auth = creator
    for host in REFUSED_HOSTS:
        hook = {"url": f"https://{host}/hook", "events": ["gift"]}
        body = _refused(client.post(HOOKS, json=hook, headers=auth), "webhook_url_not_allowed")
        assert "does not resolve" not in body["detail"], body  # refused for its address
    unknown = {"url": "https://nowhere.attacker.test/hook", "events": ["gift"]}
    _refused(client.post(HOOKS, json=unknown, headers=auth), "webhook_url_not_allowed")
    assert client.get(HOOKS, headers=auth).json() == []  # nothing was written

    # Public names still register, a NAT64 address of a public IPv4 one included.
    for host in OUTSIDE:
        hook = {"url": f"https://{host}/hook", "events": ["gift"]}
        r = client.post(HOOKS, json=hook, headers=auth)
        assert r.status_code == 201, r.text
    assert len(client.get(HOOKS, headers=auth).json()) == len(OUTSIDE)


def test_recordings_that_reach_inside_are_refused(
    creator: tuple[httpx.Client, dict[str, str]],
) -> None:
    client, auth = creator
    cut = {"title": "from inside", "start_s": 0, "end_s": 2}
    for host in REFUSED_HOSTS:
        url = f"http://{host}/recording.mp4"
        r = client.post("/v1/clips", json=cut | {"recording_url": url}, headers=auth)
        _refused(r, "recording_url_not_allowed")
    nowhere = cut | {"recording_url": "http://nowhere.attacker.test/recording.mp4"}
    _refused(client.post("/v1/clips", json=nowhere, headers=auth), "recording_host_unknown")
    assert client.get("/v1/me/clips", headers=auth).json() == []  # no clip, no job
