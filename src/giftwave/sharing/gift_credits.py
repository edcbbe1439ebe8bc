"""Gifts credited to the shares that brought their senders, from the ledger, exactly once.

    transfers (seq > position, ≤ chunk) ⋈ gift_sends, gifts of touched senders only
        ─► their touches (one query) ─► credit rows (``attribution.credit_rows``)
        ─► the credits and the new position, in ONE transaction

The position is a ``db/watermarks.py`` one, like the analytics rollups': a gift committed is
credited by the next run on any node, even when the node that took it crashed an instant
later; two nodes never credit one gift twice (and the credits' unique key would refuse it).
Each node runs ``credit_thread`` about once a second, off every request: gifts are credited
within a second or so, in batches, and the gift path does nothing for it. The database leaves
out the gifts of senders no share touched (most of them), so a chunk of thousands of gifts is
usually two index reads and a one-row write.

Before this, each node queued its own gifts' credits in memory (``batch_thread``) and a crash
lost the last ~50 ms of them for good.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, Final

from sqlalchemy import Connection, Engine, and_, select

from giftwave.db import watermarks
from giftwave.db.tables import gift_sends, share_touches, transfers
from giftwave.economy.gifting import send_id_of
from giftwave.periodic import PeriodicThread, Schedule
from giftwave.sharing.attribution import Event, credit_rows, record_credits, touches_of_users

WATERMARK: Final = "share_gift_credits"
CHUNK_MAX_TRANSFERS: Final = 10_000
INTERVAL_S: Final = 1.0
# Up to 100,000 transfers a second while behind; stop() waits for one run at most.
CHUNKS_PER_RUN: Final = 10
STOP_GRACE_S: Final = 10.0


class GiftCredits(watermarks.LedgerFollower):
    """Credits committed gifts to their senders' touches, one bounded chunk per transaction."""

    def __init__(
        self, db: Engine, window_us: int, *, chunk_max_transfers: int = CHUNK_MAX_TRANSFERS
    ) -> None:
        super().__init__(db, WATERMARK, chunk_max_transfers)
        self._window_us = window_us

    def read(self, conn: Connection, last: int, head: int) -> Sequence[Any]:
        """The chunk's gifts whose sender was touched inside the window before the gift."""
        in_chunk = and_(transfers.c.seq > last, transfers.c.seq <= head)
        gs, st = gift_sends.c, share_touches.c
        touched = (
            select(st.user_id)
            .where(
                st.user_id == gs.sender_id,
                st.touched_at_us >= gs.created_at_us - self._window_us,
                st.touched_at_us <= gs.created_at_us,
            )
            .exists()
        )
        return conn.execute(
            select(gs.sender_id, gs.idempotency_key, gs.stream_id, gs.coins, gs.created_at_us)
            .select_from(transfers.join(gift_sends, gs.transfer_id == transfers.c.id))
            .where(in_chunk, touched)
            .order_by(transfers.c.seq)
        ).all()

    def apply(self, conn: Connection, rows: Sequence[Any]) -> None:
        if not rows:
            return
        since = min(int(g.created_at_us) for g in rows) - self._window_us
        touched = touches_of_users(conn, {int(g.sender_id) for g in rows}, since)
        record_credits(
            conn,
            [
                row
                for g in rows
                for row in credit_rows(
                    int(g.sender_id),
                    touched.get(int(g.sender_id), []),
                    Event.GIFT,
                    send_id_of(int(g.sender_id), g.idempotency_key),
                    at_us=int(g.created_at_us),
                    window_us=self._window_us,
                    stream_id=g.stream_id,
                    coins=int(g.coins),
                )
            ],
        )


def credit_thread(credits: GiftCredits, interval_s: float = INTERVAL_S) -> PeriodicThread:
    """Runs ``credits.catch_up`` about every ``interval_s`` on a thread of its own; a run that
    fails (the database away) is tried again, and starts where the last one stopped."""
    return PeriodicThread(
        "share-gift-credits",
        partial(credits.catch_up, CHUNKS_PER_RUN),
        Schedule(interval_s),
        stop_grace_s=STOP_GRACE_S,
    )
