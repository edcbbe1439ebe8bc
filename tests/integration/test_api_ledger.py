"""The operator's ledger API over HTTP (in process), on SQLite and PostgreSQL.

Every error is RFC 9457 problem+json with a stable ``code``; bad input is never a 500.
ASGITransport does not run the lifespan, so each test runs it around the client itself.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest

from giftwave.api.app import create_app
from giftwave.config import Settings
from giftwave.db.urls import DatabaseUrl

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}


ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def make_client(db_url: DatabaseUrl) -> ClientFactory:
    """Start the app (lifespan included) with these settings and give a client on it."""

    @asynccontextmanager
    async def factory(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
        settings.setdefault("admin_token", TOKEN)
        settings.setdefault("allowed_hosts", ["giftwave.test"])  # the client's base URL below
        settings.setdefault("followers", "inline")  # no child process per test
        app = create_app(Settings(database_url=db_url.url, **settings))
        # raise_app_exceptions=False: a bug must show up as the 500 a client would get.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://giftwave.test") as client,
        ):
            yield client

    return factory


@pytest.fixture
async def client(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as c:
        yield c


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_FIELDS, body
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith("/" + code)
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    assert body["title"]
    assert body["detail"]
    return body


async def open_account(client: httpx.AsyncClient, name: str, asset: str, **kw: Any) -> int:
    response = await client.post(
        "/v1/ledger/accounts", json={"name": name, "asset": asset, **kw}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    account_id: int = response.json()["id"]
    return account_id


async def submit(client: httpx.AsyncClient, *transfers: dict[str, Any]) -> list[str]:
    response = await client.post(
        "/v1/ledger/transfers", json={"transfers": list(transfers)}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["id"] for r in results] == [t["id"] for t in transfers]
    return [r["result"] for r in results]


async def account(client: httpx.AsyncClient, key: str | int) -> dict[str, Any]:
    response = await client.get(f"/v1/ledger/accounts/{key}", headers=AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def gift(tid: str, debit: int, credit: int, amount: Any, **kw: Any) -> dict[str, Any]:
    return {
        "id": tid,
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": amount,
        "code": "gift",
        **kw,
    }


# --- authentication --------------------------------------------------------------------------


BAD_AUTH = {
    "missing": {},
    "wrong": {"Authorization": "Bearer wrong"},
    "longer": {"Authorization": f"Bearer {TOKEN}x"},
    "basic": {"Authorization": f"Basic {TOKEN}"},
    "no_scheme": {"Authorization": TOKEN},
    "empty": {"Authorization": "Bearer "},
}


async def test_a_valid_bearer_token_is_required(
    client: httpx.AsyncClient, subtests: pytest.Subtests
) -> None:
    for name, headers in BAD_AUTH.items():
        with subtests.test(name):
            answers = [
                await client.get("/v1/ledger/accounts/1", headers=headers),
                await client.post(
                    "/v1/ledger/accounts", json={"name": "a", "asset": "COIN"}, headers=headers
                ),
                await client.post("/v1/ledger/transfers", json={"transfers": []}, headers=headers),
            ]
            for answer in answers:
                assert_problem(answer, 401, "unauthorized")
    # Nothing was opened on the way.
    assert_problem(
        await client.get("/v1/ledger/accounts/a", headers=AUTH), 404, "account_not_found"
    )


async def test_scheme_is_case_insensitive(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/ledger/accounts",
        json={"name": "a", "asset": "COIN"},
        headers={"Authorization": f"bearer {TOKEN}"},
    )
    assert response.status_code == 200


async def test_the_ledger_api_is_off_without_an_admin_token(make_client: ClientFactory) -> None:
    async with make_client(admin_token=None) as client:
        for headers in ({}, AUTH, {"Authorization": "Bearer "}):
            response = await client.post(
                "/v1/ledger/accounts", json={"name": "a", "asset": "COIN"}, headers=headers
            )
            assert_problem(response, 403, "admin_api_disabled")
        assert_problem(
            await client.get("/v1/ledger/accounts/1", headers=AUTH), 403, "admin_api_disabled"
        )
        assert (await client.get("/healthz")).status_code == 200


# --- malformed requests ----------------------------------------------------------------------


BAD_BODIES = [b'{"transfers": [', b"", b"not json", b"[1, 2]", b'"text"', b"null", b"\xff\xfe"]


async def test_a_body_that_is_not_the_json_object_expected(
    client: httpx.AsyncClient, subtests: pytest.Subtests
) -> None:
    for content in BAD_BODIES:
        for path in ("/v1/ledger/transfers", "/v1/ledger/accounts"):
            with subtests.test(path=path, content=content):
                response = await client.post(
                    path, content=content, headers={**AUTH, "Content-Type": "application/json"}
                )
                assert_problem(response, 422, "invalid_request")


WRONG_TYPES: list[tuple[str, Any]] = [
    ("amount", "10"),
    ("amount", 1.5),
    ("amount", 10.0),
    ("amount", True),
    ("amount", None),
    ("amount", 2**63),
    ("amount", -(2**63) - 1),
    ("amount", [10]),
    ("debit_account_id", "1"),
    ("timeout_s", "5"),
    ("id", 5),
    ("id", None),
    ("id", "x" * 201),
    ("code", "tip"),
    ("code", "GIFT"),
    ("kind", "later"),
    ("pending_id", 7),
]


async def test_a_transfer_field_of_the_wrong_type(
    client: httpx.AsyncClient, subtests: pytest.Subtests
) -> None:
    for field, value in WRONG_TYPES:
        with subtests.test(field=field, value=value):
            transfer = {**gift("t", 1, 2, 10), field: value}
            response = await client.post(
                "/v1/ledger/transfers", json={"transfers": [transfer]}, headers=AUTH
            )
            body = assert_problem(response, 422, "invalid_request")
            assert any(e["loc"][-1] == field for e in body["errors"]), body["errors"]


async def test_a_missing_required_field(client: httpx.AsyncClient) -> None:
    for field in ("id", "amount", "code"):
        transfer = gift("t", 1, 2, 10)
        del transfer[field]
        response = await client.post(
            "/v1/ledger/transfers", json={"transfers": [transfer]}, headers=AUTH
        )
        body = assert_problem(response, 422, "invalid_request")
        assert ["body", "transfers", "0", field] in [e["loc"] for e in body["errors"]]


async def test_unknown_fields_are_refused(client: httpx.AsyncClient) -> None:
    cases = [
        ("/v1/ledger/transfers", {"transfers": [{**gift("t", 1, 2, 10), "memo": "hi"}]}),
        ("/v1/ledger/transfers", {"transfers": [gift("t", 1, 2, 10)], "dry_run": True}),
        ("/v1/ledger/accounts", {"name": "a", "asset": "COIN", "balance": 10**6}),
    ]
    for path, payload in cases:
        body = assert_problem(
            await client.post(path, json=payload, headers=AUTH), 422, "invalid_request"
        )
        assert any(e["type"] == "extra_forbidden" for e in body["errors"])
    # And nothing came of them.
    assert_problem(
        await client.get("/v1/ledger/accounts/a", headers=AUTH), 404, "account_not_found"
    )


async def test_a_submission_holds_one_to_8190_transfers(client: httpx.AsyncClient) -> None:
    for count in (0, 8191):
        transfers = [gift(f"t{i}", 1, 2, 1) for i in range(count)]
        response = await client.post(
            "/v1/ledger/transfers", json={"transfers": transfers}, headers=AUTH
        )
        assert_problem(response, 422, "invalid_request")
    response = await client.post(
        "/v1/ledger/transfers", json={"transfers": [gift("t", 1, 2, 1)]}, headers=AUTH
    )
    assert response.json()["results"] == [{"id": "t", "result": "debit_account_not_found"}]


async def test_a_submission_larger_than_the_configured_batch_is_a_4xx(
    make_client: ClientFactory,
) -> None:
    async with make_client(ledger_batch_max_transfers=10) as client:
        transfers = [gift(f"t{i}", 1, 2, 1) for i in range(11)]
        response = await client.post(
            "/v1/ledger/transfers", json={"transfers": transfers}, headers=AUTH
        )
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/nope", headers=AUTH), 404, "not_found")
    assert_problem(await client.get("/v1/ledger/accounts", headers=AUTH), 405, "method_not_allowed")
    assert_problem(
        await client.delete("/v1/ledger/accounts/1", headers=AUTH), 405, "method_not_allowed"
    )


# --- accounts --------------------------------------------------------------------------------


async def test_open_and_read_an_account(client: httpx.AsyncClient) -> None:
    payload = {"name": "viewer:1:coins", "asset": "COIN", "flags": ["no_overdraft"], "owner": "u1"}
    first = await client.post("/v1/ledger/accounts", json=payload, headers=AUTH)
    assert first.status_code == 200
    body = first.json()
    assert body["name"] == "viewer:1:coins"
    assert (body["asset"], body["owner"], body["flags"]) == ("COIN", "u1", ["no_overdraft"])
    assert (body["balance"], body["available"]) == (0, 0)
    # Idempotent by name.
    again = await client.post("/v1/ledger/accounts", json=payload, headers=AUTH)
    assert again.json() == body
    assert await account(client, body["id"]) == body
    assert await account(client, "viewer:1:coins") == body


async def test_unknown_account(client: httpx.AsyncClient) -> None:
    for key in ["nope", "999999", "viewer:9", "0", "-1"]:
        response = await client.get(f"/v1/ledger/accounts/{key}", headers=AUTH)
        body = assert_problem(response, 404, "account_not_found")
        assert key in body["detail"]


@pytest.mark.parametrize("key", ["\u00b2", "99999999999999999999999"], ids=["superscript", "huge"])
async def test_odd_numeric_account_keys_are_not_found(client: httpx.AsyncClient, key: str) -> None:
    assert_problem(
        await client.get(f"/v1/ledger/accounts/{key}", headers=AUTH), 404, "account_not_found"
    )


async def test_account_name_conflict(client: httpx.AsyncClient) -> None:
    await open_account(client, "creator:1", "DIAMOND", flags=["no_overdraft"])
    for payload in (
        {"name": "creator:1", "asset": "COIN", "flags": ["no_overdraft"]},
        {"name": "creator:1", "asset": "DIAMOND"},
        {"name": "creator:1", "asset": "DIAMOND", "flags": ["no_overdraft", "frozen"]},
    ):
        response = await client.post("/v1/ledger/accounts", json=payload, headers=AUTH)
        assert_problem(response, 409, "account_conflict")
    assert (await account(client, "creator:1"))["asset"] == "DIAMOND"


INVALID_ACCOUNTS = [
    {"name": "a", "asset": "coin"},
    {"name": "a", "asset": "EURO"},
    {"name": "a", "asset": "US"},
    {"name": "a", "asset": ""},
    {"name": "Viewer", "asset": "COIN"},
    {"name": "has space", "asset": "COIN"},
    {"name": "", "asset": "COIN"},
    {"name": "-a", "asset": "COIN"},
    {"name": "a\u0000", "asset": "COIN"},
    {"name": "b", "asset": "C\u0000N"},
]


async def test_invalid_account(client: httpx.AsyncClient, subtests: pytest.Subtests) -> None:
    for payload in INVALID_ACCOUNTS:
        with subtests.test(**payload):
            response = await client.post("/v1/ledger/accounts", json=payload, headers=AUTH)
            assert_problem(response, 422, "invalid_account")


OFF_SCHEMA_ACCOUNTS: list[dict[str, Any]] = [
    {"name": "a", "asset": "TOOLONGASSET"},
    {"name": "a" * 129, "asset": "COIN"},
    {"name": "a", "asset": "COIN", "flags": ["bogus"]},
    {"name": "a", "asset": "COIN", "flags": "frozen"},
    {"name": "a", "asset": "COIN", "owner": "o" * 129},
    {"name": 5, "asset": "COIN"},
    {"asset": "COIN"},
]


async def test_account_request_off_the_schema(
    client: httpx.AsyncClient, subtests: pytest.Subtests
) -> None:
    for payload in OFF_SCHEMA_ACCOUNTS:
        with subtests.test(payload=payload):
            response = await client.post("/v1/ledger/accounts", json=payload, headers=AUTH)
            assert_problem(response, 422, "invalid_request")


@pytest.mark.parametrize("name", ["777", "1"])
async def test_an_all_digit_account_name(client: httpx.AsyncClient, name: str) -> None:
    await open_account(client, "platform:first", "COIN")  # account #1
    response = await client.post(
        "/v1/ledger/accounts", json={"name": name, "asset": "COIN"}, headers=AUTH
    )
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert response.json()["name"] == name


# --- transfers -------------------------------------------------------------------------------


async def test_transfers_get_per_transfer_results_and_are_idempotent(
    client: httpx.AsyncClient,
) -> None:
    issued = await open_account(client, "platform:coins_issued", "COIN")
    viewer = await open_account(client, "viewer:1:coins", "COIN", flags=["no_overdraft"])
    spent = await open_account(client, "platform:gifts_spent", "COIN")
    d_issued = await open_account(client, "platform:diamonds_issued", "DIAMOND")
    creator = await open_account(client, "creator:1:diamonds", "DIAMOND")

    top = {**gift("top", issued, viewer, 100), "code": "topup"}
    pair = [
        gift("g1:c", viewer, spent, 30, linked=True),
        gift("g1:d", d_issued, creator, 30),
    ]
    assert await submit(client, top, *pair) == ["ok", "ok", "ok"]
    assert await submit(client, top, *pair) == ["exists", "exists", "exists"]
    too_much = [gift("g2:c", viewer, spent, 71, linked=True), gift("g2:d", d_issued, creator, 71)]
    assert await submit(client, *too_much) == ["insufficient_funds", "linked_event_failed"]
    assert await submit(client, {**pair[0], "amount": 31}, pair[1]) == [
        "id_reused_with_different_fields",
        "linked_event_failed",
    ]
    assert await submit(client, gift("x", viewer, creator, 1)) == ["asset_mismatch"]
    assert await submit(client, gift("", viewer, spent, 1)) == ["invalid_id"]

    v = await account(client, viewer)
    assert (v["credits_posted"], v["debits_posted"], v["balance"], v["available"]) == (
        100,
        30,
        70,
        70,
    )
    assert (await account(client, creator))["balance"] == 30


async def test_pending_payout_through_the_api(client: httpx.AsyncClient) -> None:
    issued = await open_account(client, "platform:diamonds_issued", "DIAMOND")
    creator = await open_account(client, "creator:1", "DIAMOND", flags=["no_overdraft"])
    payouts = await open_account(client, "platform:payouts", "DIAMOND")
    assert await submit(client, gift("earn", issued, creator, 100)) == ["ok"]
    hold = {**gift("hold", creator, payouts, 80), "code": "payout", "kind": "pending"}
    assert await submit(client, {**hold, "timeout_s": 3600}) == ["ok"]
    c = await account(client, creator)
    assert (c["debits_pending"], c["balance"], c["available"]) == (80, 100, 20)
    post = {"id": "hold:post", "amount": 50, "code": "payout", "kind": "post_pending"}
    assert await submit(client, {**post, "pending_id": "hold"}) == ["ok"]
    assert await submit(client, {**post, "id": "again", "pending_id": "hold"}) == [
        "pending_transfer_already_posted"
    ]
    c = await account(client, creator)
    assert (c["debits_pending"], c["balance"], c["available"]) == (0, 50, 50)


async def test_replaying_a_post_answers_exists(client: httpx.AsyncClient) -> None:
    issued = await open_account(client, "platform:diamonds_issued", "DIAMOND")
    creator = await open_account(client, "creator:1", "DIAMOND", flags=["no_overdraft"])
    payouts = await open_account(client, "platform:payouts", "DIAMOND")
    hold = {**gift("hold", creator, payouts, 80), "code": "payout", "kind": "pending"}
    post = {"id": "post", "amount": 80, "code": "payout", "kind": "post_pending"}
    assert await submit(client, gift("earn", issued, creator, 100), hold) == ["ok", "ok"]
    assert await submit(client, {**post, "pending_id": "hold"}) == ["ok"]
    # A client that lost the first answer retries: it must learn the post went through.
    assert await submit(client, {**post, "pending_id": "hold"}) == ["exists"]
    assert await submit(client, hold) == ["exists"]


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("GET", "/v1/ledger/accounts/%00", None),
        ("POST", "/v1/ledger/accounts", {"name": "c", "asset": "COIN", "owner": "\u0000"}),
    ],
    ids=["lookup", "owner"],
)
async def test_a_nul_character_is_not_a_500(
    request: pytest.FixtureRequest,
    db_url: DatabaseUrl,
    client: httpx.AsyncClient,
    method: str,
    path: str,
    payload: Any,
) -> None:
    assert await _answers(client, method, path, payload) == ""


async def test_a_nul_in_an_id_is_a_result_not_an_outage(
    request: pytest.FixtureRequest, db_url: DatabaseUrl, client: httpx.AsyncClient
) -> None:
    post = {"id": "p", "amount": 5, "code": "payout", "kind": "post_pending"}
    assert await submit(client, {**post, "pending_id": "a\u0000b"}) == [
        "pending_transfer_not_found"
    ]


def _transfers(*transfers: dict[str, Any]) -> dict[str, Any]:
    return {"transfers": list(transfers)}


TX, ACCOUNTS = "/v1/ledger/transfers", "/v1/ledger/accounts"
ODD_REQUESTS: list[tuple[str, str, Any]] = [
    ("GET", f"{ACCOUNTS}/" + "a" * 5000, None),
    ("GET", f"{ACCOUNTS}/-1", None),
    ("GET", f"{ACCOUNTS}/%20", None),
    ("GET", f"{ACCOUNTS}/9223372036854775807", None),
    ("POST", ACCOUNTS, {"name": "a", "asset": "COIN", "flags": ["frozen"] * 50}),
    ("POST", ACCOUNTS, {"name": "a\u0000", "asset": "COIN"}),
    ("POST", ACCOUNTS, {"name": "b", "asset": "C\u0000N"}),
    ("POST", TX, _transfers(gift("t", 2**63 - 1, 1, 1))),
    ("POST", TX, _transfers(gift("t", -(2**63), 1, 1))),
    ("POST", TX, _transfers(gift("t", 1, 2, 2**63 - 1))),
    ("POST", TX, _transfers(gift("t", 1, 2, 1, timeout_s=2**63 - 1))),
    ("POST", TX, _transfers(gift("t", 1, 2, 1, kind="pending", timeout_s=2**40))),
    ("POST", TX, _transfers(gift("t", 1, 2, 1, kind="pending", timeout_s=-1))),
    ("POST", TX, _transfers(gift("t", 1, 2, 1, reverses_id="x" * 200))),
    ("POST", TX, _transfers(gift("t", 1, 2, 1, linked=True))),
    ("POST", TX, _transfers(*[gift("t", 1, 2, 1)] * 50)),
    ("POST", TX, _transfers(gift("v", 0, 0, 0, kind="void_pending", pending_id="x" * 200))),
    ("POST", TX, _transfers(gift("v", 0, 0, -1, kind="post_pending", pending_id="x"))),
    ("POST", TX, _transfers(gift("\u00e9", 1, 2, 1))),
    ("PUT", TX, {}),
]


async def _answers(client: httpx.AsyncClient, method: str, path: str, payload: Any) -> str:
    """'' when the answer is fine, else what is wrong with it."""
    content = None if payload is None else json.dumps(payload).encode()
    response = await client.request(
        method, path, content=content, headers={**AUTH, "Content-Type": "application/json"}
    )
    if response.status_code >= 500:
        return f"{method} {path} {payload!r:.120} -> {response.status_code}"
    if response.status_code >= 400 and not (
        response.headers["content-type"].startswith("application/problem+json")
        and response.json().keys() >= PROBLEM_FIELDS
    ):
        return f"{method} {path} -> {response.status_code} without a problem document"
    return ""


async def test_nothing_answers_500(client: httpx.AsyncClient) -> None:
    """A sweep of odd requests: each a problem document or a success, never a 5xx."""
    await open_account(client, "viewer", "COIN", flags=["no_overdraft"])
    await open_account(client, "platform", "COIN")
    wrong = [await _answers(client, *request) for request in ODD_REQUESTS]
    assert [w for w in wrong if w] == []
