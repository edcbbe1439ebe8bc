"""`giftwave backup` while a real server takes a storm of gifts: the copy is one instant.

The copy, restored as a fresh database (the file copied), passes `giftwave ledger verify`
(every balance equals the sums of its own transfers; the hash chain unbroken), and it is a
prefix of the source: its batches are the source's first ones, hash for hash, and its
transfers and gift rows exactly the source's up to that batch. So its balances are the
source's balances at the backup's instant. The storm goes on after the copy (the source has
more batches), so the copy was taken mid-storm, not before or after it.

PostgreSQL is refused with a pointer to pg_dump.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from liveclient import go_live, person
from serverproc import (
    ADMIN_TOKEN,
    ServerGroup,
    assert_ledger_verify_clean,
    giftwave_env,
    migrate,
    run_cli,
)
from sqlalchemy import text

from giftwave.db.engine import make_engine
from giftwave.db.urls import Backend, DatabaseUrl

SENDERS: Final = 8
GRANT_COINS: Final = 1_000_000
BACKUP_AFTER_GIFTS: Final = 100
MAX_GIFTS_PER_SENDER: Final = 2_000


def _env(db: DatabaseUrl) -> dict[str, str]:
    env = giftwave_env(db)
    env["GIFTWAVE_PASSWORD_TIME_COST"] = "1"
    env["GIFTWAVE_PASSWORD_MEMORY_KIB"] = "8"
    env["GIFTWAVE_GIFT_RATE_PER_S"] = "0"
    env["GIFTWAVE_GIFT_DAILY_SPEND_MAX_COINS"] = "0"
    return env


def _client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=httpx.Timeout(10.0))


async def _storm_with_backup(
    base_url: str, env: dict[str, str], copy: Path
) -> tuple[set[str], set[str]]:
    """Gifts from SENDERS viewers; `giftwave backup` once BACKUP_AFTER_GIFTS are acked; the
    storm stops a moment after the backup. The gifts acknowledged before the backup began,
    and those sent before it ended: the copy holds all of the first, none beyond the second."""
    acked: set[str] = set()
    sent: set[str] = set()
    enough = asyncio.Event()
    stop = asyncio.Event()
    async with _client(base_url) as http:
        _, creator_token = await person(http, "creator")
        stream_id = await go_live(http, creator_token, "backup")
        tokens = []
        for _ in range(SENDERS):
            user_id, token = await person(http, "viewer")
            r = await http.post(
                f"/v1/admin/users/{user_id}/coins",
                json={"coins": GRANT_COINS, "idempotency_key": f"grant-{user_id}"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert r.status_code == 200, r.text
            tokens.append(token)

        async def sender(index: int) -> None:
            async with _client(base_url) as own:
                for n in range(MAX_GIFTS_PER_SENDER):
                    if stop.is_set():
                        return
                    key = f"b{index}-{n}"
                    sent.add(key)
                    r = await own.post(
                        f"/v1/streams/{stream_id}/gifts",
                        json={"gift_id": "rose", "count": 1, "idempotency_key": key},
                        headers={"Authorization": f"Bearer {tokens[index]}"},
                    )
                    assert r.status_code == 201, r.text
                    acked.add(key)
                    if len(acked) >= BACKUP_AFTER_GIFTS:
                        enough.set()

        senders = [asyncio.create_task(sender(i)) for i in range(SENDERS)]
        try:
            await asyncio.wait_for(enough.wait(), 30)
            acked_before = set(acked)
            done = await asyncio.to_thread(run_cli, ["backup", str(copy)], env)
            sent_by_end = set(sent)
            assert done.returncode == 0, done.stdout + done.stderr
            assert "written to" in done.stdout
            await asyncio.sleep(0.5)  # the storm goes on after the copy
        finally:
            stop.set()
            for task in senders:
                with contextlib.suppress(Exception):
                    await task
        for task in senders:
            task.result()  # every gift of the storm was a 201
    return acked_before, sent_by_end


def _ledger(db: DatabaseUrl) -> dict[str, Any]:
    engine = make_engine(db)
    try:
        with engine.connect() as conn:

            def rows(sql: str) -> list[tuple[Any, ...]]:
                return [tuple(r) for r in conn.execute(text(sql)).all()]

            return {
                "batches": rows("SELECT seq, hash FROM ledger_batches ORDER BY seq"),
                "transfers": rows(
                    "SELECT seq, id, debit_account_id, credit_account_id, amount, batch_seq"
                    " FROM transfers ORDER BY seq"
                ),
                "gifts": rows("SELECT idempotency_key, transfer_id FROM gift_sends ORDER BY 1"),
            }
    finally:
        engine.dispose()


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
def test_backup_mid_storm_is_one_consistent_instant(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    env = _env(bare_db_url)
    migrate(env)
    backup = tmp_path / "backup.db"
    with ServerGroup(tmp_path, env) as servers:
        [node] = servers.start("node")
        acked_before, sent_by_end = asyncio.run(_storm_with_backup(node.base_url, env, backup))
    assert not (tmp_path / "backup.db.partial").exists()

    restored = tmp_path / "restored.db"  # restore: the copy, as a fresh database
    shutil.copyfile(backup, restored)
    restored_env = dict(env, GIFTWAVE_DATABASE_URL=f"sqlite:///{restored}")
    assert_ledger_verify_clean(restored_env)
    assert run_cli(["ledger", "balance", "1"], restored_env).returncode == 0

    source = _ledger(bare_db_url)
    copy = _ledger(DatabaseUrl(Backend.SQLITE, f"sqlite:///{restored}"))
    head = len(copy["batches"])
    assert 0 < head < len(source["batches"]), "the copy was not taken mid-storm"
    assert copy["batches"] == source["batches"][:head], "the copy's chain is not a prefix"
    last_batch = copy["batches"][-1][0]
    assert copy["transfers"] == [t for t in source["transfers"] if t[5] <= last_batch]
    copied_transfers = {t[1] for t in copy["transfers"]}
    assert copy["gifts"] == [g for g in source["gifts"] if g[1] in copied_transfers]
    # The backup's instant: after every gift acknowledged before it began (a stale copy, as
    # a plain file copy of a WAL database gives, fails here), before any sent after it ended.
    copied_gifts = {g[0] for g in copy["gifts"]}
    assert acked_before <= copied_gifts, "the copy misses gifts acknowledged before it began"
    assert copied_gifts <= sent_by_end

    # A second backup to the same name is refused (never overwritten).
    again = run_cli(["backup", str(backup)], env)
    assert again.returncode == 2
    assert "exists already" in again.stderr


@pytest.mark.parametrize("bare_db_url", ["postgresql"], indirect=True)
def test_backup_refuses_postgresql_naming_pg_dump(bare_db_url: DatabaseUrl, tmp_path: Path) -> None:
    done = run_cli(["backup", str(tmp_path / "copy.db")], giftwave_env(bare_db_url))
    assert done.returncode == 2
    assert "pg_dump" in done.stderr
    assert not (tmp_path / "copy.db").exists()
