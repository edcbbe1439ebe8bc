"""SIGTERM in the middle of a gift storm: a drain loses nothing and refuses cleanly.

A real `giftwave serve` takes gifts over HTTP and over room sockets; SIGTERM lands mid-storm.
What a client may see, and why:

- HTTP 201: the gift is committed (it is answered only after its commit);
- HTTP 503 ``draining`` with ``Retry-After``: refused before anything was done; send the same
  request again, another node answers;
- a connection refused or closed before any answer: the request never started (uvicorn
  closes only idle keep-alive connections, and lets a request it has begun finish), so the
  gift is not in the ledger; resending it is safe either way (idempotency key);
- on a socket: an ``ok`` ack (committed), an error ``draining`` (refused), then the socket
  closed with 1001 and a reason telling the page to reconnect elsewhere.

After the exit, within GIFTWAVE_DRAIN_TIMEOUT_S and with uvicorn's graceful exit code (not the
watchdog's), and a restart: every acknowledged gift is stored exactly once, nothing refused
or never started is, and `giftwave ledger verify` is clean. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import orjson
import pytest
import websockets
from liveclient import as_user, go_live, person
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

DRAIN_TIMEOUT_S: Final = 10
HTTP_SENDERS: Final = 12
WS_SENDERS: Final = 4
WS_WINDOW: Final = 4  # gifts in flight per socket
GRANT_COINS: Final = 1_000_000
TERM_AFTER_ACKED: Final = 150  # SIGTERM once this many gifts were acknowledged, or at:
TERM_AT_MAX_S: Final = 4.0
WORKERS_SIGNALLED_S: Final = 3.0  # serve --workers: the supervisor passes SIGTERM on
MAX_GIFTS_PER_SENDER: Final = 3_000  # bounds the storm even if the signal never came
STORM_TIMEOUT_S: Final = 30.0


@dataclass
class Storm:
    acked: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)  # 503 draining, or the socket's "draining"
    refused_http: int = 0
    never_started: set[str] = field(default_factory=set)  # connection refused or closed idle
    unanswered: set[str] = field(default_factory=set)  # socket closed before its ack
    transport_errors: Counter[str] = field(default_factory=Counter)
    close_codes: list[tuple[int, str]] = field(default_factory=list)
    enough: asyncio.Event = field(default_factory=asyncio.Event)

    def ack(self, key: str) -> None:
        self.acked.add(key)
        if len(self.acked) >= TERM_AFTER_ACKED:
            self.enough.set()


def _env(db: DatabaseUrl) -> dict[str, str]:
    env = giftwave_env(db)
    env["GIFTWAVE_PASSWORD_TIME_COST"] = "1"
    env["GIFTWAVE_PASSWORD_MEMORY_KIB"] = "8"
    env["GIFTWAVE_GIFT_RATE_PER_S"] = "0"  # a storm, not a rate-limit test
    env["GIFTWAVE_GIFT_DAILY_SPEND_MAX_COINS"] = "0"
    env["GIFTWAVE_GIFT_CONFIRM_MIN_COINS"] = "0"
    env["GIFTWAVE_DRAIN_TIMEOUT_S"] = str(DRAIN_TIMEOUT_S)
    return env


def _client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        trust_env=False,
        timeout=httpx.Timeout(10.0),
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


async def _scene(base_url: str) -> tuple[str, list[str]]:
    """A live stream, and viewers with coins: their bearer tokens."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with _client(base_url) as http:
        _, creator_token = await person(http, "creator")
        stream_id = await go_live(http, creator_token, "drain")
        tokens = []
        for _ in range(HTTP_SENDERS + WS_SENDERS):
            user_id, token = await person(http, "viewer")
            r = await http.post(
                f"/v1/admin/users/{user_id}/coins",
                json={"coins": GRANT_COINS, "idempotency_key": f"grant-{user_id}"},
                headers=admin,
            )
            assert r.status_code == 200, r.text
            tokens.append(token)
    return stream_id, tokens


async def _http_sender(base_url: str, stream_id: str, token: str, index: int, storm: Storm) -> None:
    async with _client(base_url) as http:
        for n in range(MAX_GIFTS_PER_SENDER):
            key = f"h{index}-{n}"
            try:
                r = await http.post(
                    f"/v1/streams/{stream_id}/gifts",
                    json={"gift_id": "finger_heart", "count": 1, "idempotency_key": key},
                    headers={"Authorization": f"Bearer {token}"},
                )
            except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
                storm.never_started.add(key)
                storm.transport_errors[type(exc).__name__] += 1
                return
            if r.status_code == 503:
                assert r.headers["content-type"] == "application/problem+json", r.text
                assert r.json()["code"] == "draining", r.text
                assert int(r.headers["retry-after"]) > 0
                storm.refused.add(key)
                storm.refused_http += 1
                return
            assert r.status_code == 201, f"gift {key}: {r.status_code} {r.text}"
            storm.ack(key)


async def _ws_sender(url: str, index: int, storm: Storm) -> None:
    """Gifts as socket commands, WS_WINDOW in flight, until the server closes the socket."""
    sent: dict[int, str] = {}
    async with websockets.connect(url) as ws:
        next_id = 0

        async def send_one() -> None:
            nonlocal next_id
            key = f"w{index}-{next_id}"
            sent[next_id] = key
            command = {
                "id": next_id,
                "cmd": "send_gift",
                "gift_id": "finger_heart",
                "count": 1,
                "idempotency_key": key,
            }
            next_id += 1
            await ws.send(orjson.dumps(command).decode())

        try:
            for _ in range(WS_WINDOW):
                await send_one()
            while next_id < MAX_GIFTS_PER_SENDER:
                message: dict[str, Any] = orjson.loads(await ws.recv())
                if "ack" not in message:
                    continue  # a room frame
                key = sent.pop(message["ack"])
                if "error" in message:
                    assert message["error"]["code"] == "draining", message
                    storm.refused.add(key)
                    continue  # the socket closes soon: keep reading until it does
                assert message["result"]["send_id"], message
                storm.ack(key)
                await send_one()
        except websockets.ConnectionClosed as exc:
            closed = exc.rcvd  # None: cut off without a close frame
            storm.close_codes.append((-1, "") if closed is None else (closed.code, closed.reason))
        storm.unanswered.update(sent.values())


async def _storm_then_term(
    base_url: str, pid: int, stream_id: str, tokens: list[str], workers: int = 1
) -> Storm:
    storm = Storm()
    async with _client(base_url) as http:
        ws_base = base_url.replace("http://", "ws://") + f"/v1/streams/{stream_id}/ws"
        ws_urls = [await as_user(http, ws_base, t) for t in tokens[HTTP_SENDERS:]]
        senders = [
            asyncio.create_task(_http_sender(base_url, stream_id, tokens[i], i, storm))
            for i in range(HTTP_SENDERS)
        ] + [asyncio.create_task(_ws_sender(url, i, storm)) for i, url in enumerate(ws_urls)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(storm.enough.wait(), TERM_AT_MAX_S)
        os.kill(pid, signal.SIGTERM)
        ready = await http.get("/readyz")  # a kept-alive connection: still served
        # One process drains at once; uvicorn's supervisor passes the signal on to its
        # workers from its own loop, within a moment.
        deadline = time.monotonic() + (0 if workers == 1 else WORKERS_SIGNALLED_S)
        while ready.status_code != 503 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            ready = await http.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert ready.json()["code"] == "not_ready"
        assert ready.json()["checks"]["draining"] == "draining"
        # Any request that may move value is refused, not only gifts; reading still works.
        grant = await http.post(
            "/v1/admin/users/1/coins",
            json={"coins": 5, "idempotency_key": "grant-while-draining"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert grant.status_code == 503, grant.text
        assert grant.json()["code"] == "draining"
        assert (await http.get("/healthz")).status_code == 200
        await asyncio.wait_for(asyncio.gather(*senders), STORM_TIMEOUT_S)
    return storm


def _stored_gift_keys(db: DatabaseUrl) -> Counter[str]:
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            keys = conn.execute(text("SELECT idempotency_key FROM gift_sends")).scalars().all()
    finally:
        engine.dispose()
    return Counter(str(k) for k in keys)


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_mid_storm_drains_without_losing_a_gift(
    bare_db_url: DatabaseUrl, tmp_path: Path, workers: int
) -> None:
    """One process, and `serve --workers 2`: SIGTERM to the parent reaches every worker, and
    each drains its own requests and sockets."""
    env = _env(bare_db_url)
    migrate(env)
    with ServerGroup(tmp_path, env, ("--workers", str(workers))) as servers:
        [node] = servers.start("node")
        stream_id, tokens = asyncio.run(_scene(node.base_url))
        started = time.monotonic()
        storm = asyncio.run(_storm_then_term(node.base_url, node.pid, stream_id, tokens, workers))
        assert node._proc is not None
        node._proc.wait(timeout=DRAIN_TIMEOUT_S + 5)
        exited_after_s = time.monotonic() - started
        print(
            f"drain: {len(storm.acked)} acked, {len(storm.refused)} refused (draining), "
            f"{len(storm.never_started)} never started {dict(storm.transport_errors)}, "
            f"{len(storm.unanswered)} unanswered on sockets, exit {node.returncode} "
            f"{exited_after_s:.2f} s after the storm began"
        )
        assert node.returncode in GRACEFUL_EXIT_CODES, node.log_tail()
        assert len(storm.acked) >= TERM_AFTER_ACKED // 2
        assert storm.refused_http, "no HTTP gift refused with 503 draining: the drain not seen"
        # Every socket is told why (a close cut by a TCP reset would be -1 here).
        assert [code for code, _ in storm.close_codes] == [1001] * WS_SENDERS, storm.close_codes
        assert all("reconnect" in reason for _, reason in storm.close_codes)

        [again] = servers.start("again")
        stored = _stored_gift_keys(bare_db_url)
        assert [k for k, n in stored.items() if n > 1] == [], "a gift stored twice"
        assert storm.acked <= stored.keys(), "acknowledged gifts were lost"
        assert not storm.refused & stored.keys(), "a gift refused with draining was billed"
        assert not storm.never_started & stored.keys(), "a request never started was billed"
        attempted = storm.acked | storm.unanswered
        assert stored.keys() <= attempted
        again.stop()
        assert again.returncode in GRACEFUL_EXIT_CODES
        assert_ledger_verify_clean(env)
