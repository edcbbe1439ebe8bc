"""Many small inserts from many requests, one transaction per batch.

A request that must record a row before it answers (a gift's intent) awaits ``insert(row)``;
one task gathers everything waiting into a single ``INSERT … ON CONFLICT DO NOTHING`` and one
commit, on a worker thread. Each caller learns whether its own row went in or a row with the
same unique key was already there. Bounded: at most ``queue_max`` rows wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from giftwave.errors import Unavailable

_Waiter = tuple[dict[str, Any], "asyncio.Future[bool]"]


class BatchInserter:
    def __init__(
        self,
        db: Engine,
        table: Table,
        key_columns: Sequence[str],
        *,
        batch_max_rows: int = 500,
        queue_max_rows: int = 20_000,
    ) -> None:
        assert batch_max_rows >= 1
        assert queue_max_rows >= batch_max_rows
        self._db = db
        self._table = table
        self._keys = tuple(key_columns)
        self._batch_max = batch_max_rows
        self._queue_max = queue_max_rows
        self._waiting: list[_Waiter] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        insert_fn = pg_insert if db.dialect.name == "postgresql" else sqlite_insert
        self._statement = (
            insert_fn(table)
            .on_conflict_do_nothing(index_elements=None)
            .returning(*(table.c[k] for k in self._keys))
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"batch-insert-{self._table.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _, future in self._waiting:
            if not future.done():
                future.set_exception(Unavailable("shutting_down", "the server is stopping"))
        self._waiting.clear()

    async def insert(self, row: dict[str, Any]) -> bool:
        """True if this row was inserted, False if its unique key was already taken."""
        if len(self._waiting) >= self._queue_max:
            raise Unavailable("overloaded", "too many writes are waiting; retry shortly")
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, future))
        self._wakeup.set()
        return await future

    async def _loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._waiting:
                batch = self._waiting[: self._batch_max]
                del self._waiting[: self._batch_max]
                try:
                    inserted = await asyncio.to_thread(self._write, [row for row, _ in batch])
                except Exception as exc:  # the database refused: nothing in this batch stuck
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(
                                Unavailable("database_unavailable", f"could not record: {exc}")
                            )
                    continue
                claimed: set[tuple[Any, ...]] = set()
                for row, future in batch:
                    key = tuple(row[k] for k in self._keys)
                    # Two rows with one key in a batch: the first went in, the second did not.
                    mine = key in inserted and key not in claimed
                    claimed.add(key)
                    if not future.done():
                        future.set_result(mine)

    def _write(self, rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
        with self._db.begin() as conn:
            result = conn.execute(self._statement, rows)
            return {tuple(r) for r in result.all()}
