"""Annex rows (a gift's gift_sends row) written by the ledger in its transfers' transaction.

On SQLite and PostgreSQL, with the store on the engine's thread and in a writer process: the
row is there exactly when every transfer of its submission was newly committed, never for a
replay or a refusal; a batch whose annex cannot be written commits none of its transfers; two
different gifts with one key in one batch leave one row; a writer killed mid-storm leaves
every committed gift with its row and every row with its gift.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from serverproc import wait_dead
from sqlalchemy import Engine, func, insert, select
from writer_kill import KillsWriterMidBatch

from giftwave.db.tables import gift_sends, transfers
from giftwave.db.urls import DatabaseUrl
from giftwave.ledger.accounts import get_account, open_account
from giftwave.ledger.annex import GIFT_SENDS, GIFT_SENDS_MESSAGE, Annex
from giftwave.ledger.engine import LedgerUnavailable, PostingEngine
from giftwave.ledger.model import AccountFlags, Outcome, Transfer, TransferCode
from giftwave.ledger.stores import open_store
from giftwave.ledger.verify import verify_ledger
from giftwave.ledger.writer_process import ProcessStore

GIFT = TransferCode.GIFT
OK2 = [Outcome.OK, Outcome.OK]
EXISTS2 = [Outcome.EXISTS, Outcome.EXISTS]
SENDER = 7


@pytest.fixture(params=["thread", "process"])
async def engine(
    request: pytest.FixtureRequest, db_url: DatabaseUrl
) -> AsyncIterator[PostingEngine]:
    store = ProcessStore(db_url) if request.param == "process" else open_store(db_url)
    async with PostingEngine(store, expiry_interval_s=3600) as posting:
        yield posting


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


async def _fund(engine: PostingEngine, a: dict[str, int], coins: int) -> None:
    top = Transfer("top", a["issued"], a["viewer"], coins, TransferCode.TOPUP)
    assert await engine.submit([top]) == [Outcome.OK]


def _pair(a: dict[str, int], key: str, coins: int) -> list[Transfer]:
    return [
        Transfer(f"gift:{SENDER}:{key}:c", a["viewer"], a["spent"], coins, GIFT, linked=True),
        Transfer(f"gift:{SENDER}:{key}:d", a["d_issued"], a["creator"], coins, GIFT),
    ]


def _row(key: str, coins: int, gift_id: str = "rose", stream_id: str = "s1") -> Annex:
    values = (SENDER, key, stream_id, 1, gift_id, 1, coins, coins, coins)
    return (GIFT_SENDS.name, (*values, f"gift:{SENDER}:{key}:c", 1_000 + coins))


def _rows(sa_engine: Engine) -> dict[str, dict[str, Any]]:
    """gift_sends by idempotency key."""
    with sa_engine.connect() as conn:
        rows = conn.execute(select(gift_sends)).mappings().all()
    return {row["idempotency_key"]: dict(row) for row in rows}


def _transfer_ids(sa_engine: Engine) -> set[str]:
    with sa_engine.connect() as conn:
        return set(conn.execute(select(transfers.c.id)).scalars())


def test_the_registry_matches_the_table() -> None:
    columns = {c.name for c in gift_sends.columns}
    message = {"message", "message_tier", "message_colour", "message_pinned_until_us"}
    assert (
        set(GIFT_SENDS.column_names) == columns - {"id", "reversed", "message_hidden_by"} - message
    )
    assert set(GIFT_SENDS.key) == {"sender_id", "idempotency_key"}
    # A gift with a paid message fills the same row, with the message's columns too.
    assert GIFT_SENDS_MESSAGE.table_name == gift_sends.name
    assert set(GIFT_SENDS_MESSAGE.column_names) == set(GIFT_SENDS.column_names) | message


async def test_a_message_row_is_written_with_its_gift_and_only_then(
    engine: PostingEngine, sa_engine: Engine
) -> None:
    a = _open(sa_engine)
    await _fund(engine, a, 100)
    plain = _row("k1", 30)[1]
    annex = (GIFT_SENDS_MESSAGE.name, (*plain, "hello ana", 2, "teal", 9_000))
    assert await engine.submit(_pair(a, "k1", 30), annex) == OK2
    row = _rows(sa_engine)["k1"]
    assert (row["message"], row["message_tier"], row["message_colour"]) == ("hello ana", 2, "teal")
    assert row["message_pinned_until_us"] == 9_000
    assert row["coins"] == 30
    # Refused (not enough coins): no transfer, no row, no message.
    refused = (GIFT_SENDS_MESSAGE.name, (*_row("k2", 500)[1], "hi", 1, "blue", 9_000))
    outcomes = await engine.submit(_pair(a, "k2", 500), refused)
    assert Outcome.OK not in outcomes
    assert "k2" not in _rows(sa_engine)
    # A plain gift's row has none of the message's columns.
    assert await engine.submit(_pair(a, "k3", 10), _row("k3", 10)) == OK2
    assert _rows(sa_engine)["k3"]["message"] is None


async def test_row_only_with_newly_committed_transfers(
    engine: PostingEngine, sa_engine: Engine
) -> None:
    a = _open(sa_engine)
    await _fund(engine, a, 100)
    assert await engine.submit(_pair(a, "k1", 30), _row("k1", 30)) == OK2
    assert _rows(sa_engine)["k1"]["coins"] == 30
    assert _rows(sa_engine)["k1"]["transfer_id"] == f"gift:{SENDER}:k1:c"

    # A replay answers "exists" and writes nothing, not even its own (different) row.
    assert await engine.submit(_pair(a, "k1", 30), _row("k1", 30, "panda")) == EXISTS2
    assert _rows(sa_engine)["k1"]["gift_id"] == "rose"
    # The same ids with other amounts: refused, nothing written.
    reused = await engine.submit(_pair(a, "k1", 31), _row("k1", 31))
    assert reused[0] is Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS
    # Refused for want of coins: neither transfers nor row.
    assert await engine.submit(_pair(a, "k2", 71), _row("k2", 71)) == [
        Outcome.INSUFFICIENT_FUNDS,
        Outcome.LINKED_EVENT_FAILED,
    ]
    assert set(_rows(sa_engine)) == {"k1"}
    # Without an annex, transfers go as before and leave no row.
    assert await engine.submit(_pair(a, "k3", 10)) == OK2
    assert set(_rows(sa_engine)) == {"k1"}
    with sa_engine.connect() as conn:
        assert get_account(conn, a["viewer"]).balance == 60
        assert verify_ledger(conn).ok


async def test_two_gifts_with_one_key_in_one_batch_leave_one_row(
    engine: PostingEngine, sa_engine: Engine
) -> None:
    a = _open(sa_engine)
    await _fund(engine, a, 100)
    batches = engine.stats.batches
    # The same transfers (same price), different gifts: queued in one turn, one batch.
    first, second = await asyncio.gather(
        engine.submit(_pair(a, "same", 5), _row("same", 5, "rose")),
        engine.submit(_pair(a, "same", 5), _row("same", 5, "panda")),
    )
    assert engine.stats.batches == batches + 1
    assert (first, second) == (OK2, EXISTS2)
    assert _rows(sa_engine)["same"]["gift_id"] == "rose"  # the caller with EXISTS reads this
    # Different prices: the second's ids are reused with other fields.
    first, second = await asyncio.gather(
        engine.submit(_pair(a, "dear", 5), _row("dear", 5, "rose")),
        engine.submit(_pair(a, "dear", 10), _row("dear", 10, "perfume")),
    )
    assert first == OK2
    assert second[0] is Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS
    assert _rows(sa_engine)["dear"]["gift_id"] == "rose"
    with sa_engine.connect() as conn:
        assert get_account(conn, a["viewer"]).balance == 90


async def test_a_partial_replay_commits_nothing(engine: PostingEngine, sa_engine: Engine) -> None:
    """A key first used for a coins-only gift, then for a pair: the new leg must not land."""
    a = _open(sa_engine)
    await _fund(engine, a, 100)
    coins_only = [_pair(a, "k", 5)[0]._replace(linked=False)]
    assert await engine.submit(coins_only, _row("k", 5)) == [Outcome.OK]
    # In a later batch, and in the same batch as the first use.
    assert await engine.submit(_pair(a, "k", 5), _row("k", 5)) == [
        Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS,
        Outcome.LINKED_EVENT_FAILED,
    ]
    coins_only_2 = [_pair(a, "k2", 5)[0]._replace(linked=False)]
    first, second = await asyncio.gather(
        engine.submit(coins_only_2, _row("k2", 5)), engine.submit(_pair(a, "k2", 5), _row("k2", 5))
    )
    assert first == [Outcome.OK]
    assert second == [Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS, Outcome.LINKED_EVENT_FAILED]
    ids = _transfer_ids(sa_engine)
    assert f"gift:{SENDER}:k:d" not in ids
    assert f"gift:{SENDER}:k2:d" not in ids
    with sa_engine.connect() as conn:
        assert get_account(conn, a["creator"]).balance == 0
        assert get_account(conn, a["viewer"]).balance == 90


async def test_an_intent_row_left_by_the_old_scheme_is_replaced(
    engine: PostingEngine, sa_engine: Engine
) -> None:
    """Older versions wrote the row first: one whose transfers never came is an orphan."""
    a = _open(sa_engine)
    await _fund(engine, a, 100)
    orphan = dict(zip(GIFT_SENDS.column_names, _row("old", 50, "lion")[1], strict=True))
    with sa_engine.begin() as conn:
        conn.execute(insert(gift_sends).values(**orphan))
    assert await engine.submit(_pair(a, "old", 5), _row("old", 5, "rose")) == OK2
    row = _rows(sa_engine)["old"]
    assert (row["gift_id"], row["coins"], row["reversed"]) == ("rose", 5, False)
    with sa_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(gift_sends)).scalar_one() == 1


async def test_a_row_that_cannot_be_written_fails_its_transfers_too(
    engine: PostingEngine, sa_engine: Engine
) -> None:
    a = _open(sa_engine)
    await _fund(engine, a, 100)
    _, values = _row("bad", 5)
    broken: Annex = (GIFT_SENDS.name, (values[0], values[1], None, *values[3:]))  # NOT NULL
    with pytest.raises(LedgerUnavailable):
        await engine.submit(_pair(a, "bad", 5), broken)
    assert f"gift:{SENDER}:bad:c" not in _transfer_ids(sa_engine)
    assert _rows(sa_engine) == {}
    # The engine goes on: the same gift with a proper row commits, once.
    assert await engine.submit(_pair(a, "bad", 5), _row("bad", 5)) == OK2
    with sa_engine.connect() as conn:
        assert get_account(conn, a["viewer"]).balance == 95
        assert verify_ledger(conn).ok


async def test_an_annex_of_an_unknown_table_is_refused(engine: PostingEngine) -> None:
    transfer = Transfer("x", 1, 2, 1, GIFT)
    with pytest.raises(ValueError, match="no annex table"):
        await engine.submit([transfer], ("transfers", (1, 2)))
    with pytest.raises(ValueError, match="11 values"):
        await engine.submit([transfer], (GIFT_SENDS.name, (1, 2)))


async def test_writer_killed_mid_storm_leaves_every_gift_with_its_row(
    db_url: DatabaseUrl, sa_engine: Engine
) -> None:
    a = _open(sa_engine)
    store = KillsWriterMidBatch(db_url, kill_after_batches=8)
    async with PostingEngine(store, batch_max_transfers=64, expiry_interval_s=3600) as engine:
        await _fund(engine, a, 1_000_000)
        keys = [f"s{n}" for n in range(3000)]
        storm = [asyncio.ensure_future(engine.submit(_pair(a, k, 1), _row(k, 1))) for k in keys]
        results = await asyncio.gather(*storm, return_exceptions=True)
        pid = store.killed_pid  # killed with its eighth batch in its hands
        assert pid is not None
        wait_dead(pid)
        acked = {k for k, r in zip(keys, results, strict=True) if r == OK2}
        unknown = [k for k, r in zip(keys, results, strict=True) if r != OK2]
        assert all(r == OK2 or isinstance(r, LedgerUnavailable) for r in results)
        assert acked, "the kill landed before the storm"
        assert unknown, "the kill lost no batch in flight"

        # As the kill left it: each gift whole with its row, or nothing of it.
        ids = _transfer_ids(sa_engine)
        committed = {k for k in keys if f"gift:{SENDER}:{k}:c" in ids}
        assert {k for k in keys if f"gift:{SENDER}:{k}:d" in ids} == committed
        assert set(_rows(sa_engine)) == committed
        assert acked <= committed

        for k in unknown:  # a retry settles each unknown gift exactly once
            assert await engine.submit(_pair(a, k, 1), _row(k, 1)) in (OK2, EXISTS2)
    assert set(_rows(sa_engine)) == set(keys)
    with sa_engine.connect() as conn:
        assert get_account(conn, a["creator"]).balance == len(keys)
        assert verify_ledger(conn).ok
