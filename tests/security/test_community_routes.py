"""This round's routes (subscriptions, fan clubs, levels, paid messages, notifications, payout
decisions, reconciliation, responsible spending, thanks) tried by those who may not use them,
against a real `giftwave serve` on SQLite and PostgreSQL (one server per backend for the
module):

- without credentials every one of them is 401 problem+json, before its body is read;
- a viewer cannot use a creator's routes, a creator cannot read an admin's (403);
- a name megabytes long is refused before it is read (413, the body limit every route has:
  api/body_limit.py) and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import httpx
import pytest
from serverproc import ServerProcess, one_server, register_over_http

from giftwave.db.urls import DatabaseUrl

PASSWORD: Final = "correct horse battery staple"
PROBLEM: Final = "application/problem+json"

SIGNED_IN_ONLY: Final = [
    ("PUT", "/v1/me/subscription-price"),
    ("POST", "/v1/creators/1/subscription"),
    ("DELETE", "/v1/creators/1/subscription"),
    ("GET", "/v1/me/subscriptions"),
    ("GET", "/v1/me/subscribers"),
    ("POST", "/v1/streams/1/gifted-subscriptions"),
    ("GET", "/v1/me/gifted-subscriptions"),
    ("PUT", "/v1/me/gifted-subscriptions"),
    ("PUT", "/v1/creators/1/notify"),
    ("DELETE", "/v1/creators/1/notify"),
    ("POST", "/v1/me/push-subscriptions"),
    ("DELETE", "/v1/me/push-subscriptions/1"),
    ("PUT", "/v1/me/notify-settings"),
    ("GET", "/v1/me/inbox"),
    ("POST", "/v1/me/inbox/1/read"),
    ("POST", "/v1/me/inbox/read"),
    ("PATCH", "/v1/me/level"),
    ("POST", "/v1/streams/1/paid-messages/x/hide"),
    ("PUT", "/v1/me/club"),
    ("PUT", "/v1/me/club/chat"),
    ("GET", "/v1/me/club/members"),
    ("DELETE", "/v1/me/club/members/1"),
    ("POST", "/v1/creators/1/club/members"),
    ("GET", "/v1/creators/1/club/members/me"),
    ("DELETE", "/v1/creators/1/club/members/me"),
    ("GET", "/v1/admin/payout-decisions"),
    ("GET", "/v1/admin/reconciliation"),
    ("GET", "/v1/me/spending"),
    ("PUT", "/v1/me/spending/limits"),
    ("POST", "/v1/me/spending/exclusion"),
    ("GET", "/v1/me/spending/report"),
    ("GET", "/v1/me/spending/summary.txt"),
    ("GET", "/v1/users/1/spending"),
    ("GET", "/v1/streams/st_x/supporters"),
    ("POST", "/v1/streams/st_x/thanks"),
    ("DELETE", "/v1/streams/st_x/thanks"),
]
CREATORS_ONLY: Final = [
    ("PUT", "/v1/me/subscription-price", {"price_coins": 100}),
    ("GET", "/v1/me/subscribers", None),
    ("PUT", "/v1/me/club", {"name": "Not Mine"}),
    ("PUT", "/v1/me/club/chat", {"mode": "members"}),
    ("GET", "/v1/me/club/members", None),
]
ADMINS_ONLY: Final = ["/v1/admin/payout-decisions", "/v1/admin/reconciliation"]


@pytest.fixture(scope="module")
def server(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with one_server(module_bare_db_url, tmp_path_factory.mktemp("logs")) as proc:
        yield proc


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=15.0, trust_env=False) as c:
        yield c


def someone(client: httpx.Client, role: str) -> tuple[int, dict[str, str]]:
    return register_over_http(client, role, "cr", PASSWORD)


def refused(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, (r.request.method, r.request.url.path, r.text)
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    assert r.json()["code"], r.json()


@pytest.mark.parametrize(("method", "path"), SIGNED_IN_ONLY)
def test_no_credentials_no_entry(client: httpx.Client, method: str, path: str) -> None:
    refused(client.request(method, path, json={}), 401)
    refused(client.request(method, path, json={}, headers={"Authorization": "Bearer x"}), 401)


def test_a_viewer_uses_no_creators_route_and_a_creator_no_admins(client: httpx.Client) -> None:
    _, viewer = someone(client, "viewer")
    for method, path, body in CREATORS_ONLY:
        refused(client.request(method, path, json=body, headers=viewer), 403)
    _, creator = someone(client, "creator")
    for path in ADMINS_ONLY:
        refused(client.get(path, headers=creator), 403)


def test_a_name_megabytes_long_is_refused_whole(client: httpx.Client) -> None:
    creator_id, creator = someone(client, "creator")
    huge = '{"name": "' + "x" * (4 * 1024 * 1024) + '"}'
    r = client.put(
        "/v1/me/club", content=huge, headers={**creator, "Content-Type": "application/json"}
    )
    refused(r, 413)
    assert r.json()["code"] == "payload_too_large"
    assert client.get(f"/v1/creators/{creator_id}/club").status_code == 404  # nothing made


def test_a_thank_you_megabytes_long_is_refused_whole(client: httpx.Client) -> None:
    _, creator = someone(client, "creator")
    r = client.post("/v1/streams", json={"title": "tonight"}, headers=creator)
    assert r.status_code == 201, r.text
    stream = r.json()["id"]
    assert client.post(f"/v1/streams/{stream}/end", headers=creator).status_code == 200
    huge = '{"message": "' + "x" * (4 * 1024 * 1024) + '"}'
    r = client.post(
        f"/v1/streams/{stream}/thanks",
        content=huge,
        headers={**creator, "Content-Type": "application/json"},
    )
    refused(r, 413)
    assert r.json()["code"] == "payload_too_large"
    r = client.get(f"/v1/streams/{stream}/supporters", headers=creator)
    assert r.json()["thanks"] is None  # nothing made
