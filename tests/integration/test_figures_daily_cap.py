"""The daily spend cap holds to the coin across nodes (issue #20): two real `giftwave serve`
processes on one database (SQLite and PostgreSQL), one viewer sending 1-coin gifts through both
at once, far past the cap. Exactly the cap is committed, every other gift is 429
`daily_spend_limit`, the coins and the ledger agree (`ledger verify`); a reversal made on one
node gives its coins back to the cap on the other, once."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Iterator
from typing import Final

import httpx
import pytest
from liveclient import go_live, person
from serverproc import (
    ADMIN_TOKEN,
    ServerGroup,
    ServerProcess,
    assert_ledger_verify_clean,
    giftwave_env,
    migrate,
)

from giftwave.db.urls import DatabaseUrl

ADMIN: Final = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CAP_COINS: Final = 25
GIFTS_PER_NODE: Final = 30  # 60 one-coin gifts at once against a cap of 25
_keys = itertools.count(1)


@pytest.fixture(scope="module")
def nodes(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[list[ServerProcess], dict[str, str]]]:
    env = giftwave_env(module_bare_db_url)
    env.update(
        GIFTWAVE_PASSWORD_TIME_COST="1",
        GIFTWAVE_PASSWORD_MEMORY_KIB="8",
        GIFTWAVE_GIFT_DAILY_SPEND_MAX_COINS=str(CAP_COINS),
        GIFTWAVE_GIFT_RATE_PER_S="10000",  # the cap is under test here, not the rate
        GIFTWAVE_GIFT_RATE_BURST="10000",
    )
    migrate(env)
    with ServerGroup(tmp_path_factory.mktemp("cap"), env) as servers:
        yield servers.start("a", "b"), env


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _gift(http: httpx.AsyncClient, token: str, stream_id: str) -> httpx.Response:
    return await http.post(
        f"/v1/streams/{stream_id}/gifts",
        json={"gift_id": "rose", "count": 1, "idempotency_key": f"cap{next(_keys)}"},
        headers=_auth(token),
    )


async def _coins(http: httpx.AsyncClient, token: str) -> int:
    r = await http.get("/v1/me/wallet", headers=_auth(token))
    assert r.status_code == 200, r.text
    return int(r.json()["coins"])


async def test_concurrent_gifts_on_two_nodes_stop_at_the_cap_to_the_coin(
    nodes: tuple[list[ServerProcess], dict[str, str]],
) -> None:
    (a, b), env = nodes
    async with (
        httpx.AsyncClient(base_url=a.base_url, timeout=30) as on_a,
        httpx.AsyncClient(base_url=b.base_url, timeout=30) as on_b,
    ):
        viewer_id, viewer = await person(on_a, "viewer")
        r = await on_a.post(
            f"/v1/admin/users/{viewer_id}/coins",
            json={"coins": 1_000, "idempotency_key": f"cap-grant-{viewer_id}"},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
        _, creator = await person(on_b, "creator")
        stream_id = await go_live(on_b, creator, "cap")

        # Both nodes start cold for this viewer and serve the gifts interleaved, at once.
        sends = [
            _gift(node, viewer, stream_id) for _ in range(GIFTS_PER_NODE) for node in (on_a, on_b)
        ]
        answers = await asyncio.gather(*sends)
        outcomes = Counter(
            r.status_code if r.status_code == 201 else r.json().get("code") for r in answers
        )
        assert outcomes == {201: CAP_COINS, "daily_spend_limit": 2 * GIFTS_PER_NODE - CAP_COINS}
        assert await _coins(on_b, viewer) == 1_000 - CAP_COINS
        refused = next(r for r in answers if r.status_code == 429).json()
        assert refused["limit_coins"] == CAP_COINS

        # A reversal on node b gives its coin back to the cap: one more gift, on node a.
        sent = next(r for r in answers if r.status_code == 201).json()["send_id"]
        r = await on_b.post(f"/v1/admin/gift-sends/{sent}/reverse", headers=ADMIN)
        assert r.status_code == 200, r.text
        again = await asyncio.gather(*(_gift(node, viewer, stream_id) for node in (on_a, on_b)))
        assert sorted(r.status_code for r in again) == [201, 429]
        refused = next(r for r in again if r.status_code == 429).json()
        assert (refused["code"], refused["spent_coins"]) == ("daily_spend_limit", CAP_COINS)
        # A replayed reversal gives nothing back a second time.
        r = await on_a.post(f"/v1/admin/gift-sends/{sent}/reverse", headers=ADMIN)
        assert r.status_code == 200, r.text
        r = await _gift(on_a, viewer, stream_id)
        assert r.status_code == 429, r.text
        assert await _coins(on_a, viewer) == 1_000 - CAP_COINS
    assert_ledger_verify_clean(env)


async def test_a_retry_of_a_gift_within_the_cap_answers_its_receipt_once_the_cap_is_reached(
    nodes: tuple[list[ServerProcess], dict[str, str]],
) -> None:
    """The cap is checked in the gift's own chain: a retry of a committed gift is a replay
    (its receipt) even on a day whose allowance is spent, on either node."""
    (a, b), env = nodes
    async with (
        httpx.AsyncClient(base_url=a.base_url, timeout=30) as on_a,
        httpx.AsyncClient(base_url=b.base_url, timeout=30) as on_b,
    ):
        viewer_id, viewer = await person(on_a, "viewer")
        r = await on_a.post(
            f"/v1/admin/users/{viewer_id}/coins",
            json={"coins": 100, "idempotency_key": f"cap-grant-{viewer_id}"},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
        _, creator = await person(on_b, "creator")
        stream_id = await go_live(on_b, creator, "cap retry")
        body = {"gift_id": "rose", "count": CAP_COINS, "idempotency_key": "whole-day"}
        first = await on_a.post(f"/v1/streams/{stream_id}/gifts", json=body, headers=_auth(viewer))
        assert first.status_code == 201, first.text
        retry = await on_b.post(f"/v1/streams/{stream_id}/gifts", json=body, headers=_auth(viewer))
        assert retry.status_code == 201, retry.text
        assert retry.json()["send_id"] == first.json()["send_id"]
        r = await _gift(on_b, viewer, stream_id)
        assert r.json()["code"] == "daily_spend_limit", r.text
        assert await _coins(on_a, viewer) == 100 - CAP_COINS
    assert_ledger_verify_clean(env)
