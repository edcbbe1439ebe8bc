"""The sandbox providers' side of the books: their own tables, read back as records."""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine

from giftwave.payments.records import Record
from giftwave.payments.sandbox import payment_records
from giftwave.payments.sandbox_payouts import transfer_records


class SandboxRecords:
    """Payments (payments/sandbox.py) and payout transfers (payments/sandbox_payouts.py)."""

    name = "sandbox"

    def __init__(self, db: Engine) -> None:
        self._db = db

    async def records(self, since_us: int) -> list[Record]:
        return await asyncio.to_thread(self._read, since_us)

    def _read(self, since_us: int) -> list[Record]:
        with self._db.connect() as conn:
            return payment_records(conn, since_us) + transfer_records(conn, since_us)
