"""Payee routes tried by those who may not use them, against a real `giftwave serve` with the
sandbox payout provider, on SQLite and PostgreSQL (one server per backend for the module).

- Only a creator has a payee; a viewer, a stranger and a cross-site form cannot start one.
- An onboarding link is its creator's (or an admin's): another creator who has it, a forged
  or expired one, finds nothing there, and cannot approve, reject or ask for documents.
- The provider's form answers only a post from this site's own pages (``Origin``).
- The operator's view of a payee is for admins only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import pytest
from serverproc import ADMIN_TOKEN, ServerProcess, one_server, registered_over_http

from giftwave.db.urls import DatabaseUrl

ADMIN: Final = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PASSWORD: Final = "correct horse battery staple"


@pytest.fixture(scope="module")
def server(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with one_server(
        module_bare_db_url,
        tmp_path_factory.mktemp("logs"),
        GIFTWAVE_PAYOUT_PROVIDER="sandbox",
        GIFTWAVE_SANDBOX_WEBHOOK_SECRET="whsec_attack_suite",
    ) as proc:
        yield proc


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=15.0, trust_env=False) as c:
        yield c


class Someone:
    def __init__(self, client: httpx.Client, role: str) -> None:
        body = registered_over_http(client, role, "py", PASSWORD)
        client.cookies.clear()
        self.id: int = body["user"]["id"]
        self.token: str = body["token"]
        self.csrf: str = body["csrf_token"]
        self.bearer = {"Authorization": f"Bearer {self.token}"}

    def cookies(self) -> dict[str, str]:
        return {"gw_session": self.token, "gw_csrf": self.csrf}


def _problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    return body


def _as(client: httpx.Client, who: Someone | None) -> httpx.Client:
    client.cookies.clear()
    if who is not None:
        for name, value in who.cookies().items():
            client.cookies.set(name, value)
    return client


def _link(client: httpx.Client, creator: Someone) -> str:
    r = client.post("/v1/creators/me/payee/onboarding", headers=creator.bearer)
    assert r.status_code == 200, r.text
    return urlsplit(r.json()["url"]).path


def _state(client: httpx.Client, creator: Someone) -> str:
    r = client.get("/v1/creators/me/payee", headers=creator.bearer)
    assert r.status_code == 200, r.text
    state: str = r.json()["state"]
    return state


def test_only_a_creator_starts_onboarding_and_never_from_another_site(
    client: httpx.Client,
) -> None:
    viewer, creator = Someone(client, "viewer"), Someone(client, "creator")
    _problem(_as(client, None).post("/v1/creators/me/payee/onboarding"), 401, "unauthorized")
    r = client.post("/v1/creators/me/payee/onboarding", headers=viewer.bearer)
    _problem(r, 403, "not_a_creator")
    # The creator's cookie without the CSRF header: what a cross-site form would send.
    _problem(_as(client, creator).post("/v1/creators/me/payee/onboarding"), 403, "csrf_failed")
    assert _state(_as(client, None), creator) == "none"


def test_an_onboarding_link_is_its_creators_only(client: httpx.Client) -> None:
    owner, other = Someone(client, "creator"), Someone(client, "creator")
    path = _link(client, owner)
    _link(client, other)  # a payee of their own, so "a payee" is not the check
    for who in (None, other):
        _problem(_as(client, who).get(path), 404, "onboarding_not_found")
        for action in ("approve", "reject", "more_documents"):
            r = _as(client, who).post(f"{path}/{action}", data={"bank": "pays"})
            _problem(r, 404, "onboarding_not_found")
    account, expires, mac = path.rsplit("/", 1)[1].split(".")
    base = path.rsplit("/", 1)[0]
    for forged in (f"{account}.{int(expires) + 1}.{mac}", f"{account}.{expires}.{'0' * 32}"):
        _problem(_as(client, owner).get(f"{base}/{forged}"), 404, "onboarding_not_found")
        r = _as(client, owner).post(f"{base}/{forged}/approve")
        _problem(r, 404, "onboarding_not_found")
    assert _state(_as(client, None), owner) == "pending"
    # The owner may; so may an admin (support looks at it), who sees the same page.
    assert _as(client, owner).get(path).status_code == 200
    admin = Someone(client, "viewer")
    r = _as(client, None).patch(
        f"/v1/admin/users/{admin.id}", json={"role": "admin"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert _as(client, admin).get(path).status_code == 200


def test_the_provider_form_answers_only_this_sites_pages(
    client: httpx.Client, server: ServerProcess
) -> None:
    creator = Someone(client, "creator")
    path = _link(client, creator)
    for origin in ("http://evil.example", "null", f"{server.base_url.rsplit(':', 1)[0]}:1"):
        r = _as(client, creator).post(
            f"{path}/approve", data={"bank": "pays"}, headers={"Origin": origin}
        )
        _problem(r, 403, "origin_not_allowed")
    assert _state(_as(client, None), creator) == "pending"
    r = _as(client, creator).post(
        f"{path}/approve", data={"bank": "pays"}, headers={"Origin": server.base_url}
    )
    assert r.status_code == 303, r.text
    assert _state(_as(client, None), creator) == "verified"


def test_the_operators_view_of_a_payee_is_for_admins(client: httpx.Client) -> None:
    creator, viewer = Someone(client, "creator"), Someone(client, "viewer")
    _link(client, creator)
    path = f"/v1/admin/payees/{creator.id}"
    _problem(_as(client, None).get(path), 401, "unauthorized")
    for who in (creator, viewer):
        _problem(client.get(path, headers=who.bearer), 403, "admin_required")
    r = client.get(path, headers=ADMIN)
    assert (r.status_code, r.json()["state"]) == (200, "pending")
