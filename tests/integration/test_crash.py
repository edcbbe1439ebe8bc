"""kill -9 in the middle of a storm of gifts, then restart: nothing acknowledged is lost.

A real `giftwave serve` takes concurrent gifts over HTTP; after a moment it is killed with
SIGKILL while requests are in flight. What the client saw acknowledged ("ok", HTTP 200) must
be in the ledger exactly once after a restart, each gift whole (both legs or neither), the
balances must add up to what committed, and `giftwave ledger verify` must find nothing wrong.
Requests that were in flight were never acknowledged: they may or may not have committed, and
retrying them with the same ids must settle each one exactly once.

The second test storms the gift API itself: every gift the crash left committed has its
gift_sends row (written in the transfers' transaction) and every row its gift.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx
import pytest
from giftledger import (
    GIFT_EXISTS,
    GIFT_OK,
    Economy,
    StoredLedger,
    account_balance,
    ledger_client,
    open_economy,
    read_ledger,
    send_gift,
    viewer_name,
)
from serverproc import (
    ADMIN_TOKEN,
    GRACEFUL_EXIT_CODES,
    ServerGroup,
    assert_ledger_verify_clean,
    giftwave_env,
    migrate,
)
from sqlalchemy import text

from giftwave.db.engine import make_engine
from giftwave.db.urls import DatabaseUrl

VIEWERS: Final = 100
TOPUP_COINS: Final = 1_000_000  # nobody runs out: every gift the server takes is an "ok"
PRICE_COINS: Final = 5
WORKERS: Final = 32  # each with its own connection, a request in flight all the time
MIN_ACKED_GIFTS: Final = 200  # fewer and the test would prove little
# The kill comes after STORM_MIN_S, once the storm has acknowledged KILL_AFTER_ACKED gifts
# (the machine may be shared and slow), and at STORM_MAX_S whatever happened.
STORM_MIN_S: Final = 1.2
STORM_MAX_S: Final = 6.0
KILL_AFTER_ACKED: Final = 300
MAX_GIFTS_PER_WORKER: Final = 2_000  # bounds the storm even if the kill never came
STORM_TIMEOUT_S: Final = 30.0


def viewer_of(key: str) -> int:
    """Gift keys are ``g{worker}-{n}``; the viewer follows from them, so nothing is stored."""
    worker, n = key.removeprefix("g").split("-")
    return (int(worker) * 7 + int(n)) % VIEWERS


@dataclass
class Storm:
    acked: list[str] = field(default_factory=list)  # both legs "ok" with HTTP 200
    in_flight: list[str] = field(default_factory=list)  # failed by the kill: outcome unknown
    errors: Counter[str] = field(default_factory=Counter)
    enough: asyncio.Event = field(default_factory=asyncio.Event)  # KILL_AFTER_ACKED reached


async def _worker(base_url: str, economy: Economy, worker: int, storm: Storm) -> None:
    async with ledger_client(base_url, connections=1) as client:
        for n in range(MAX_GIFTS_PER_WORKER):
            key = f"g{worker}-{n}"
            try:
                results = await send_gift(client, economy, key, viewer_of(key), PRICE_COINS)
            except httpx.TransportError as exc:
                # The server died under this request: it may have committed or not; stop.
                storm.in_flight.append(key)
                storm.errors[type(exc).__name__] += 1
                return
            assert results == GIFT_OK, f"gift {key} before the kill: {results}"
            storm.acked.append(key)
            if len(storm.acked) >= KILL_AFTER_ACKED:
                storm.enough.set()


async def _storm_then_kill(base_url: str, economy: Economy, pid: int) -> tuple[Storm, float]:
    """Storm, SIGKILL the server mid-storm, let every request finish; and when it died."""
    storm = Storm()
    workers = [
        asyncio.create_task(_worker(base_url, economy, worker, storm)) for worker in range(WORKERS)
    ]
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.sleep(STORM_MIN_S)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(storm.enough.wait(), STORM_MAX_S - STORM_MIN_S)
    os.kill(pid, signal.SIGKILL)
    killed_after_s = loop.time() - started
    await asyncio.wait_for(asyncio.gather(*workers), STORM_TIMEOUT_S)
    return storm, killed_after_s


async def _resend(base_url: str, economy: Economy, keys: list[str]) -> dict[str, list[str]]:
    """Send these gifts again, the same ids and fields, ``WORKERS`` at a time."""
    results: dict[str, list[str]] = {}

    async def worker(share: list[str]) -> None:
        async with ledger_client(base_url, connections=1) as client:
            for key in share:
                results[key] = await send_gift(client, economy, key, viewer_of(key), PRICE_COINS)

    shares = [keys[i::WORKERS] for i in range(WORKERS)]
    await asyncio.wait_for(asyncio.gather(*(worker(s) for s in shares)), STORM_TIMEOUT_S)
    assert results.keys() == set(keys)
    return results


async def _creator_balance(base_url: str, economy: Economy) -> int:
    async with ledger_client(base_url, connections=1) as client:
        return await account_balance(client, economy.creator_name)


def _assert_balances(base_url: str, economy: Economy, stored: StoredLedger) -> None:
    """The creator holds what the stored gifts paid; each viewer its top-up minus its gifts."""
    creator = asyncio.run(_creator_balance(base_url, economy))
    assert creator == len(stored.gift_keys) * PRICE_COINS
    spent = Counter(viewer_of(key) for key in stored.gift_keys)
    expected = [TOPUP_COINS - spent[i] * PRICE_COINS for i in range(VIEWERS)]
    assert [stored.balances[viewer_name(i)] for i in range(VIEWERS)] == expected


@pytest.mark.slow
@pytest.mark.parametrize("writer", [pytest.param("thread", marks=pytest.mark.long), "process"])
def test_acked_gifts_survive_sigkill_mid_storm(
    bare_db_url: DatabaseUrl, tmp_path: Path, writer: str
) -> None:
    env = giftwave_env(bare_db_url)
    env["GIFTWAVE_LEDGER_WRITER"] = writer  # with "process", the kill leaves an orphan writer
    migrate(env)
    with ServerGroup(tmp_path, env) as servers:
        [first] = servers.start("first")
        economy = asyncio.run(open_economy(first.base_url, [TOPUP_COINS] * VIEWERS))
        storm, killed_after_s = asyncio.run(_storm_then_kill(first.base_url, economy, first.pid))
        first.kill()
        assert first.returncode == -signal.SIGKILL
        print(
            f"storm: killed after {killed_after_s:.2f} s, {len(storm.acked)} gifts acked,"
            f" {len(storm.in_flight)} failed by the kill ({dict(storm.errors)})"
        )
        assert len(storm.acked) > MIN_ACKED_GIFTS
        # ConnectError: the next request after the death. Anything else: cut off mid-request.
        cut_off = sum(n for name, n in storm.errors.items() if name != "ConnectError")
        assert cut_off > 0, "the kill landed between requests, not in the middle of them"

        # As the crash left it, before anything touched the database again.
        assert_ledger_verify_clean(env)

        [restarted] = servers.start("restarted")
        stored = read_ledger(bare_db_url)
        assert stored.duplicate_ids == []
        assert stored.half_gifts == frozenset(), "a linked pair was stored without its other half"
        attempted = set(storm.acked) | set(storm.in_flight)
        assert stored.gift_keys <= attempted
        assert set(storm.acked) <= stored.gift_keys, "acknowledged gifts were lost"
        committed_in_flight = stored.gift_keys & set(storm.in_flight)
        print(f"in flight at the kill and committed anyway: {len(committed_in_flight)}")
        _assert_balances(restarted.base_url, economy, stored)

        # A client that never heard back resends with the same ids; an acked one is a no-op.
        replayed = asyncio.run(_resend(restarted.base_url, economy, storm.acked))
        assert {key: r for key, r in replayed.items() if r != GIFT_EXISTS} == {}
        retried = asyncio.run(_resend(restarted.base_url, economy, storm.in_flight))
        for key, results in retried.items():
            assert results == (GIFT_EXISTS if key in committed_in_flight else GIFT_OK), key

        after = read_ledger(bare_db_url)
        assert after.duplicate_ids == []
        assert after.half_gifts == frozenset()
        assert after.gift_keys == attempted
        _assert_balances(restarted.base_url, economy, after)
        restarted.stop()
        assert restarted.returncode in GRACEFUL_EXIT_CODES, "no graceful shutdown"
        assert_ledger_verify_clean(env)


# The same storm through the gift API: the ledger writes each gift's gift_sends row in its
# transfers' transaction, so after a kill every committed gift has its row and every row its
# gift, and a resend of what was in flight settles it once.
GIFT_VIEWERS: Final = 32
GIFT_GRANT_COINS: Final = 1_000_000


def _gift_env(db: DatabaseUrl, writer: str) -> dict[str, str]:
    env = giftwave_env(db)
    env["GIFTWAVE_LEDGER_WRITER"] = writer
    env["GIFTWAVE_PASSWORD_TIME_COST"] = "1"
    env["GIFTWAVE_PASSWORD_MEMORY_KIB"] = "8"
    env["GIFTWAVE_GIFT_RATE_PER_S"] = "0"  # a storm, not a rate-limit test
    env["GIFTWAVE_GIFT_DAILY_SPEND_MAX_COINS"] = "0"
    return env


def _client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        verify=False,
        trust_env=False,
        timeout=httpx.Timeout(10.0),
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


@dataclass(frozen=True)
class GiftScene:
    stream_id: str
    viewer_tokens: tuple[str, ...]


async def _gift_scene(base_url: str) -> GiftScene:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with _client(base_url) as client:

        async def register(n: int, role: str) -> tuple[int, str]:
            r = await client.post(
                "/v1/auth/register",
                json={
                    "handle": f"{role[:4]}{n}",
                    "email": f"{role}{n}@example.org",
                    "password": "correct horse battery",
                    "birth_date": "1990-05-17",
                    "country": "US",
                    "role": role,
                },
            )
            assert r.status_code == 201, r.text
            return int(r.json()["user"]["id"]), str(r.json()["token"])

        _, creator_token = await register(0, "creator")
        r = await client.post(
            "/v1/streams",
            json={"title": "storm"},
            headers={"Authorization": f"Bearer {creator_token}"},
        )
        assert r.status_code == 201, r.text
        stream_id = str(r.json()["id"])
        tokens = []
        for n in range(GIFT_VIEWERS):
            user_id, token = await register(n, "viewer")
            r = await client.post(
                f"/v1/admin/users/{user_id}/coins",
                json={"coins": GIFT_GRANT_COINS, "idempotency_key": f"grant-{user_id}"},
                headers=admin,
            )
            assert r.status_code == 200, r.text
            tokens.append(token)
    return GiftScene(stream_id, tuple(tokens))


def _gift_sender(key: str) -> int:
    """Keys are ``w{worker}-{n}``: the worker's viewer sends it, before and after the kill."""
    return int(key.removeprefix("w").split("-")[0]) % GIFT_VIEWERS


async def _post_gift(client: httpx.AsyncClient, scene: GiftScene, key: str) -> httpx.Response:
    token = scene.viewer_tokens[_gift_sender(key)]
    return await client.post(
        f"/v1/streams/{scene.stream_id}/gifts",
        json={"gift_id": "finger_heart", "count": 1, "idempotency_key": key},
        headers={"Authorization": f"Bearer {token}"},
    )


async def _gift_storm_then_kill(base_url: str, scene: GiftScene, pid: int) -> Storm:
    storm = Storm()

    async def worker(index: int) -> None:
        async with _client(base_url) as client:
            for n in range(MAX_GIFTS_PER_WORKER):
                key = f"w{index}-{n}"
                try:
                    r = await _post_gift(client, scene, key)
                except httpx.TransportError as exc:
                    storm.in_flight.append(key)
                    storm.errors[type(exc).__name__] += 1
                    return
                assert r.status_code == 201, f"gift {key} before the kill: {r.text}"
                storm.acked.append(key)
                if len(storm.acked) >= KILL_AFTER_ACKED:
                    storm.enough.set()

    workers = [asyncio.create_task(worker(i)) for i in range(WORKERS)]
    await asyncio.sleep(STORM_MIN_S)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(storm.enough.wait(), STORM_MAX_S - STORM_MIN_S)
    os.kill(pid, signal.SIGKILL)
    await asyncio.wait_for(asyncio.gather(*workers), STORM_TIMEOUT_S)
    return storm


async def _resend_gifts(base_url: str, scene: GiftScene, keys: list[str]) -> dict[str, int]:
    statuses: dict[str, int] = {}

    async def worker(share: list[str]) -> None:
        async with _client(base_url) as client:
            for key in share:
                statuses[key] = (await _post_gift(client, scene, key)).status_code

    shares = [keys[i::WORKERS] for i in range(WORKERS)]
    await asyncio.wait_for(asyncio.gather(*(worker(s) for s in shares)), STORM_TIMEOUT_S)
    return statuses


def _stored_gifts(db: DatabaseUrl) -> frozenset[str]:
    """The keys of the stored gifts, each checked whole: both transfers and its row."""
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT idempotency_key, transfer_id, coins, diamonds FROM gift_sends")
            ).all()
            ids = set(conn.execute(text("SELECT id FROM transfers WHERE code = 'gift'")).scalars())
    finally:
        engine.dispose()
    by_transfer = {str(row[1]): str(row[0]) for row in rows}
    assert len(by_transfer) == len(rows)
    assert {i for i in ids if i.endswith(":c")} == set(by_transfer), "a gift without its row"
    assert {i for i in ids if i.endswith(":d")} == {t[:-2] + ":d" for t in by_transfer}
    assert all((row[2], row[3]) == (5, 5) for row in rows)
    return frozenset(by_transfer.values())


@pytest.mark.slow
@pytest.mark.parametrize("writer", [pytest.param("thread", marks=pytest.mark.long), "process"])
def test_every_committed_gift_has_its_row_after_sigkill(
    bare_db_url: DatabaseUrl, tmp_path: Path, writer: str
) -> None:
    env = _gift_env(bare_db_url, writer)
    migrate(env)
    with ServerGroup(tmp_path, env) as servers:
        [first] = servers.start("first")
        scene = asyncio.run(_gift_scene(first.base_url))
        storm = asyncio.run(_gift_storm_then_kill(first.base_url, scene, first.pid))
        first.kill()
        print(f"gift storm: {len(storm.acked)} acked, {len(storm.in_flight)} cut off")
        assert len(storm.acked) > MIN_ACKED_GIFTS
        assert_ledger_verify_clean(env)

        stored = _stored_gifts(bare_db_url)  # as the crash left it
        attempted = set(storm.acked) | set(storm.in_flight)
        assert set(storm.acked) <= stored <= attempted
        committed_in_flight = stored & set(storm.in_flight)
        print(f"in flight at the kill and committed anyway: {len(committed_in_flight)}")

        [restarted] = servers.start("restarted")
        resent = asyncio.run(_resend_gifts(restarted.base_url, scene, sorted(attempted)))
        assert set(resent.values()) == {201}, resent
        assert _stored_gifts(bare_db_url) == attempted  # each exactly once, each with its row
        restarted.stop()
        assert restarted.returncode in GRACEFUL_EXIT_CODES, "no graceful shutdown"
        assert_ledger_verify_clean(env)
