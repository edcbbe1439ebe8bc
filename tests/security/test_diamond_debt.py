"""Diamonds owed are never paid out, and a reversal's receipt never lies, against a real
`giftwave serve` on SQLite and PostgreSQL (one server per backend for the module).

- A creator asks to cash out diamonds; before an admin approves, the gift that earned them is
  reversed (fraud, a chargeback): the creator now owes diamonds that sit in the pending
  payout. Approving must settle that debt first, from the diamonds not reserved and then from
  the reservation, in one ledger transaction, and pay only the rest (or nothing).
- An admin (or a retrying script) reverses the same gift twice: the second answer must be the
  first receipt (what was taken, what became a debt), not a plan made from today's balances.

When every flow has run on a backend, `giftwave ledger verify` must say the ledger is clean.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, Final

import httpx
import pytest
from serverproc import (
    ADMIN_TOKEN,
    ServerProcess,
    assert_ledger_verify_clean,
    one_server,
    register_over_http,
)

from giftwave.db.urls import DatabaseUrl

ADMIN: Final = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PASSWORD: Final = "correct horse battery staple"
_names = itertools.count(1)


class Api:
    """One user's view of the server: a bearer token and JSON in, the response out."""

    def __init__(self, client: httpx.Client, headers: dict[str, str], user_id: int = 0) -> None:
        self.client, self.headers, self.id = client, headers, user_id

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.client.post(path, json=body, headers=self.headers)

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path, headers=self.headers)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        r = self.client.request(method, path, json=body, headers=self.headers)
        assert r.status_code in (200, 201), r.text
        return r.json()


@pytest.fixture(scope="module")
def server(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    # $1 minimum payout (200 diamonds at half a cent each): small gifts are enough.
    with one_server(
        module_bare_db_url, tmp_path_factory.mktemp("logs"), GIFTWAVE_PAYOUT_MIN_CENTS="100"
    ) as proc:
        yield proc
        # Once per backend, after every flow (a `giftwave` process of its own costs seconds).
        assert_ledger_verify_clean(proc.env)


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=15.0, trust_env=False) as c:
        yield c


def _register(client: httpx.Client, role: str) -> Api:
    user_id, bearer = register_over_http(client, role, "dd", PASSWORD)
    return Api(client, bearer, user_id)


def _economy(client: httpx.Client) -> tuple[Api, Api, Api, str]:
    """A viewer with coins, a creator live, and the operator."""
    admin = Api(client, ADMIN)
    viewer, creator = _register(client, "viewer"), _register(client, "creator")
    admin.ok(
        "POST",
        f"/v1/admin/users/{viewer.id}/coins",
        {"coins": 10_000, "idempotency_key": f"grant-{viewer.id}"},
    )
    stream = creator.ok("POST", "/v1/streams", {"title": "debts and receipts"})["id"]
    return admin, viewer, creator, stream


def _gift(viewer: Api, stream: str, count: int) -> str:
    """``count`` Hand Hearts (100 coins, 100 diamonds each); the send id."""
    sent = viewer.ok(
        "POST",
        f"/v1/streams/{stream}/gifts",
        {"gift_id": "hand_hearts", "count": count, "idempotency_key": f"g{next(_names)}"},
    )
    return str(sent["send_id"])


def _diamonds(creator: Api) -> tuple[int, int, int]:
    """(available, reserved in pending payouts, owed)."""
    w = creator.ok("GET", "/v1/me/wallet")
    return w["diamonds"], w["diamonds_reserved"], w["diamonds_debt"]


def _payout(creator: Api, diamonds: int) -> dict[str, Any]:
    body = {"diamonds": diamonds, "idempotency_key": f"p{next(_names)}"}
    made: dict[str, Any] = creator.ok("POST", "/v1/payouts", body)
    assert made["status"] == "pending", made
    return made


def _reverse(admin: Api, send_id: str) -> tuple[int, int]:
    done = admin.ok("POST", f"/v1/admin/gift-sends/{send_id}/reverse")
    return done["diamonds_taken"], done["diamonds_debt"]


def test_an_approval_settles_the_debt_from_the_reservation_and_pays_the_rest(
    client: httpx.Client,
) -> None:
    admin, viewer, creator, stream = _economy(client)
    _gift(viewer, stream, 10)
    fraud = _gift(viewer, stream, 3)
    payout = _payout(creator, 1_300)  # every diamond: $6.50
    assert _diamonds(creator) == (0, 1_300, 0)

    # The 300 diamonds of the reversed gift are all in the pending payout: owed.
    assert _reverse(admin, fraud) == (0, 300)
    _gift(viewer, stream, 1)  # 100 new diamonds, not reserved
    assert _diamonds(creator) == (100, 1_300, 300)

    approved = admin.ok("POST", f"/v1/admin/payouts/{payout['id']}/approve")
    # Owed 300: 100 from the new diamonds, 200 from the reservation; 1,100 paid ($5.50).
    assert (approved["status"], approved["amount_minor"]) == ("approved", 550)
    assert _diamonds(creator) == (0, 0, 0)
    # Approving again answers the same and moves nothing.
    assert admin.ok("POST", f"/v1/admin/payouts/{payout['id']}/approve") == approved
    assert creator.ok("GET", f"/v1/payouts/{payout['id']}") == approved
    assert _diamonds(creator) == (0, 0, 0)


def test_a_payout_the_debt_takes_whole_fails_and_settles_it(
    client: httpx.Client,
) -> None:
    admin, viewer, creator, stream = _economy(client)
    fraud = _gift(viewer, stream, 4)
    payout = _payout(creator, 400)
    assert _reverse(admin, fraud) == (0, 400)

    r = admin.post(f"/v1/admin/payouts/{payout['id']}/approve")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["amount_minor"]) == ("failed", 0)
    assert _diamonds(creator) == (0, 0, 0)
    again = admin.post(f"/v1/admin/payouts/{payout['id']}/approve")
    assert (again.status_code, again.json()) == (200, r.json())
    rejected = admin.post(f"/v1/admin/payouts/{payout['id']}/reject")
    assert rejected.status_code == 409, rejected.text
    assert rejected.headers["content-type"].startswith("application/problem+json")
    assert rejected.json()["code"] == "payout_not_pending"
    assert _diamonds(creator) == (0, 0, 0)


def test_a_replayed_reversal_answers_the_first_receipt(
    client: httpx.Client,
) -> None:
    admin, viewer, creator, stream = _economy(client)
    fraud = _gift(viewer, stream, 5)
    payout = _payout(creator, 400)
    assert _diamonds(creator) == (100, 400, 0)

    first = admin.ok("POST", f"/v1/admin/gift-sends/{fraud}/reverse")
    assert (first["coins_returned"], first["diamonds_taken"], first["diamonds_debt"]) == (
        500,
        100,
        400,
    )
    for _ in range(2):  # a retry, a double click: the same receipt, nothing moves
        assert admin.ok("POST", f"/v1/admin/gift-sends/{fraud}/reverse") == first
        assert _diamonds(creator) == (0, 400, 400)
    # Still the first receipt after the debt was settled by the approval.
    failed = admin.ok("POST", f"/v1/admin/payouts/{payout['id']}/approve")
    assert (failed["status"], _diamonds(creator)) == ("failed", (0, 0, 0))
    assert admin.ok("POST", f"/v1/admin/gift-sends/{fraud}/reverse") == first
