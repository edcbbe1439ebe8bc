"""The store in a child process (ProcessStore): same rules, and a dead writer acknowledges nothing.

kill -9 of the writer process while gifts are in flight: each caller gets either its outcomes
(committed) or LedgerUnavailable (unknown); the next batch starts a new writer; retrying the
unknown gifts with the same ids settles each exactly once; the ledger verifies clean.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

from serverproc import wait_dead
from sqlalchemy import Engine, func, select
from writer_kill import KillsWriterMidBatch

from giftwave.db.tables import transfers
from giftwave.db.urls import DatabaseUrl
from giftwave.ledger.accounts import get_account, open_account
from giftwave.ledger.engine import LedgerUnavailable, PostingEngine
from giftwave.ledger.model import AccountFlags, Outcome, Transfer, TransferCode, TransferKind
from giftwave.ledger.verify import verify_ledger
from giftwave.ledger.writer_process import ProcessStore, decode_batch, encode_batch

GIFT = TransferCode.GIFT
OK2 = [Outcome.OK, Outcome.OK]


def _open(sa_engine: Engine) -> dict[str, int]:
    no_od = AccountFlags.NO_OVERDRAFT
    with sa_engine.begin() as conn:
        return {
            "issued": open_account(conn, "platform:coins_issued", "COIN").id,
            "spent": open_account(conn, "platform:gifts_spent", "COIN").id,
            "d_issued": open_account(conn, "platform:diamonds_issued", "DIAMOND").id,
            "creator": open_account(conn, "creator:1:diamonds", "DIAMOND", flags=no_od).id,
            "viewer": open_account(conn, "viewer:1:coins", "COIN", flags=no_od).id,
        }


def _gift(a: dict[str, int], key: str, price: int) -> list[Transfer]:
    return [
        Transfer(f"{key}:c", a["viewer"], a["spent"], price, GIFT, linked=True),
        Transfer(f"{key}:d", a["d_issued"], a["creator"], price, GIFT),
    ]


def test_batch_encoding_round_trips_every_field() -> None:
    requests = [
        [Transfer("a", 1, 2, 3, GIFT, True), Transfer("b", 4, 5, 6, TransferCode.REFUND)],
        [Transfer("p", 0, 0, 0, GIFT, kind=TransferKind.VOID_PENDING, pending_id="x")],
        [Transfer("r", 1, 2, 1, GIFT, reverses_id="a", timeout_s=5)],
        [Transfer(None, 1.5, "2", -1, "nope")],  # type: ignore[arg-type]  # the planner refuses
    ]
    decoded = decode_batch(*encode_batch(requests))
    assert decoded == requests
    assert all(type(t) is Transfer for r in decoded for t in r)


async def test_process_store_applies_the_same_rules(db_url: DatabaseUrl, sa_engine: Engine) -> None:
    a = _open(sa_engine)
    async with PostingEngine(ProcessStore(db_url)) as engine:
        top = Transfer("top", a["issued"], a["viewer"], 100, TransferCode.TOPUP)
        assert await engine.submit([top]) == [Outcome.OK]
        assert await engine.submit(_gift(a, "g1", 30)) == OK2
        assert await engine.submit(_gift(a, "g1", 30)) == [Outcome.EXISTS, Outcome.EXISTS]
        assert await engine.submit(_gift(a, "g2", 71)) == [
            Outcome.INSUFFICIENT_FUNDS,
            Outcome.LINKED_EVENT_FAILED,
        ]
        assert await engine.submit(_gift(a, "g3", 70)) == OK2
    with sa_engine.connect() as conn:
        assert get_account(conn, a["viewer"]).balance == 0
        assert get_account(conn, a["creator"]).balance == 100
        assert verify_ledger(conn).ok


async def test_writer_killed_mid_storm_acknowledges_nothing_it_lost(
    db_url: DatabaseUrl, sa_engine: Engine
) -> None:
    a = _open(sa_engine)
    store = KillsWriterMidBatch(db_url, kill_after_batches=8)
    async with PostingEngine(store, batch_max_transfers=64, expiry_interval_s=3600) as engine:
        top = Transfer("top", a["issued"], a["viewer"], 1_000_000, TransferCode.TOPUP)
        assert await engine.submit([top]) == [Outcome.OK]
        keys = [f"s{n}" for n in range(3000)]
        storm = [asyncio.ensure_future(engine.submit(_gift(a, k, 1))) for k in keys]
        results = await asyncio.gather(*storm, return_exceptions=True)
        pid = store.killed_pid  # killed with its eighth batch (32 gifts each) in its hands
        assert pid is not None
        wait_dead(pid)
        acked = [k for k, r in zip(keys, results, strict=True) if r == OK2]
        unknown = [k for k, r in zip(keys, results, strict=True) if r != OK2]
        assert all(r == OK2 or isinstance(r, LedgerUnavailable) for r in results)
        assert acked, "the kill landed before the storm"
        assert unknown, "the kill lost no batch in flight"
        assert store.pid not in (None, pid)  # a new writer took over
        for k in unknown:  # a retry settles each unknown gift exactly once
            assert await engine.submit(_gift(a, k, 1)) in (OK2, [Outcome.EXISTS] * 2)
    with sa_engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(transfers)).scalar_one()
        assert stored == 1 + 2 * len(keys)
        assert get_account(conn, a["creator"]).balance == len(keys)
        assert get_account(conn, a["viewer"]).balance == 1_000_000 - len(keys)
        assert verify_ledger(conn).ok


async def test_writer_killed_between_batches_is_replaced(
    db_url: DatabaseUrl, sa_engine: Engine
) -> None:
    """Nothing was in flight: the next batch goes to a new writer (or, if it was sent before
    the death was noticed, fails unacknowledged and its retry goes to the new writer)."""
    a = _open(sa_engine)
    store = ProcessStore(db_url)
    async with PostingEngine(store, expiry_interval_s=3600) as engine:
        pid = store.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_dead(pid)
        top = Transfer("top", a["issued"], a["viewer"], 10, TransferCode.TOPUP)
        try:
            assert await engine.submit([top]) == [Outcome.OK]
        except LedgerUnavailable:
            assert await engine.submit([top]) in ([Outcome.OK], [Outcome.EXISTS])
        assert store.pid not in (None, pid)
    with sa_engine.connect() as conn:
        assert get_account(conn, a["viewer"]).balance == 10
        assert verify_ledger(conn).ok


def test_writer_exits_when_its_parent_is_killed(db_url: DatabaseUrl) -> None:
    """kill -9 of the process that owns the writer: the writer reads EOF and exits."""
    script = (
        "import sys, time\n"
        "from giftwave.db.urls import parse_database_url\n"
        "from giftwave.ledger.writer_process import ProcessStore\n"
        "store = ProcessStore(parse_database_url(sys.argv[1]))\n"
        "print(store.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, db_url.url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        writer_pid = int(parent.stdout.readline())
    finally:
        parent.kill()
        parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()
    wait_dead(writer_pid)
