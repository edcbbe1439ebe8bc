"""The economy of a fault test: opened and spent over the HTTP ledger API, read back by SQL.

A gift of ``price`` is the pair the design names: ``{key}:c`` moves coins from the viewer to
``platform:gifts_spent`` (linked to the next), ``{key}:d`` moves as many diamonds from
``platform:diamonds_issued`` to the creator. Both or neither.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

import httpx
from serverproc import ADMIN_TOKEN
from sqlalchemy import text

from giftwave.db.engine import make_engine
from giftwave.db.urls import DatabaseUrl

OPEN_CONCURRENCY: Final = 8
REQUEST_TIMEOUT_S: Final = 10.0
GIFT_OK: Final = ["ok", "ok"]
GIFT_EXISTS: Final = ["exists", "exists"]
GIFT_BROKE: Final = ["insufficient_funds", "linked_event_failed"]

# Only plain HTTP to 127.0.0.1 here, but every httpx client builds a TLS context unless given
# one, and loading the CA bundle costs ~30 ms of CPU: a storm's clients share this one.
_TLS: Final = ssl.create_default_context()


def ledger_client(base_url: str, *, connections: int) -> httpx.AsyncClient:
    """An admin client for one server: bounded connections, a timeout on every phase.

    Keep ``connections`` small and make one client per few workers: httpcore's pool scans
    every connection on every request, which at 64 connections costs more than the request.
    """
    return httpx.AsyncClient(
        base_url=base_url,
        verify=_TLS,
        trust_env=False,  # no proxy from the environment ever sees this local traffic
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=httpx.Timeout(REQUEST_TIMEOUT_S),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


@dataclass(frozen=True, slots=True)
class Economy:
    """Account ids of one test economy: the platform's, one creator, the viewers."""

    coins_issued: int
    gifts_spent: int
    diamonds_issued: int
    creator: int
    creator_name: str
    viewers: tuple[int, ...]
    topups_coins: tuple[int, ...]


async def _open(client: httpx.AsyncClient, name: str, asset: str, *flags: str) -> int:
    response = await client.post(
        "/v1/ledger/accounts", json={"name": name, "asset": asset, "flags": list(flags)}
    )
    assert response.status_code == 200, f"opening {name}: {response.status_code} {response.text}"
    account_id = response.json()["id"]
    assert isinstance(account_id, int)
    return account_id


async def open_economy(base_url: str, topups_coins: list[int]) -> Economy:
    """Open the accounts (one no-overdraft viewer per top-up) and fund every viewer."""
    async with ledger_client(base_url, connections=OPEN_CONCURRENCY) as client:
        platform = [
            await _open(client, "platform:coins_issued", "COIN"),
            await _open(client, "platform:gifts_spent", "COIN"),
            await _open(client, "platform:diamonds_issued", "DIAMOND"),
        ]
        creator_name = "creator:1:diamonds"
        creator = await _open(client, creator_name, "DIAMOND", "no_overdraft")
        limit = asyncio.Semaphore(OPEN_CONCURRENCY)

        async def viewer(index: int) -> int:
            async with limit:
                return await _open(client, viewer_name(index), "COIN", "no_overdraft")

        viewers = await asyncio.gather(*(viewer(i) for i in range(len(topups_coins))))
        topups = [
            {
                "id": f"topup:{index}",
                "debit_account_id": platform[0],
                "credit_account_id": viewer_id,
                "amount": amount,
                "code": "topup",
            }
            for index, (viewer_id, amount) in enumerate(zip(viewers, topups_coins, strict=True))
        ]
        response = await client.post("/v1/ledger/transfers", json={"transfers": topups})
        assert response.status_code == 200, response.text
        assert {r["result"] for r in response.json()["results"]} == {"ok"}
    return Economy(
        platform[0],
        platform[1],
        platform[2],
        creator,
        creator_name,
        tuple(viewers),
        tuple(topups_coins),
    )


def gift_body(economy: Economy, key: str, viewer: int, price_coins: int) -> dict[str, Any]:
    """The request body of one gift from viewer number ``viewer`` to the creator."""
    return {
        "transfers": [
            {
                "id": f"{key}:c",
                "debit_account_id": economy.viewers[viewer],
                "credit_account_id": economy.gifts_spent,
                "amount": price_coins,
                "code": "gift",
                "linked": True,
            },
            {
                "id": f"{key}:d",
                "debit_account_id": economy.diamonds_issued,
                "credit_account_id": economy.creator,
                "amount": price_coins,
                "code": "gift",
            },
        ]
    }


async def send_gift(
    client: httpx.AsyncClient, economy: Economy, key: str, viewer: int, price_coins: int
) -> list[str]:
    """POST one gift; the results of its two legs. Anything but a 200 fails the caller."""
    response = await client.post(
        "/v1/ledger/transfers", json=gift_body(economy, key, viewer, price_coins)
    )
    assert response.status_code == 200, f"gift {key}: {response.status_code} {response.text}"
    results = response.json()["results"]
    assert [r["id"] for r in results] == [f"{key}:c", f"{key}:d"]
    return [str(r["result"]) for r in results]


async def account_balance(client: httpx.AsyncClient, name: str) -> int:
    response = await client.get(f"/v1/ledger/accounts/{name}")
    assert response.status_code == 200, response.text
    balance = response.json()["balance"]
    assert isinstance(balance, int)
    return balance


def viewer_name(index: int) -> str:
    return f"viewer:{index}:coins"


@dataclass(frozen=True, slots=True)
class StoredLedger:
    """What the database holds, read directly, not through the server."""

    gift_keys: frozenset[str]  # gifts with both legs stored
    half_gifts: frozenset[str]  # gifts with one leg stored: a linked pair split, never allowed
    duplicate_ids: list[tuple[str, int]]  # transfer ids stored more than once, never allowed
    balances: dict[str, int]  # account name -> posted credits minus posted debits


def read_ledger(db: DatabaseUrl) -> StoredLedger:
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            duplicates = conn.execute(
                text("SELECT id, COUNT(*) FROM transfers GROUP BY id HAVING COUNT(*) > 1")
            ).all()
            ids = conn.execute(text("SELECT id FROM transfers WHERE code = 'gift'")).scalars()
            legs = Counter(str(i).rsplit(":", 1)[0] for i in ids)
            balances = conn.execute(
                text("SELECT name, credits_posted - debits_posted FROM accounts")
            ).all()
    finally:
        engine.dispose()
    return StoredLedger(
        gift_keys=frozenset(key for key, count in legs.items() if count == 2),
        half_gifts=frozenset(key for key, count in legs.items() if count != 2),
        duplicate_ids=[(str(i), int(n)) for i, n in duplicates],
        balances={str(name): int(balance) for name, balance in balances},
    )
