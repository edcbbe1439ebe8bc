"""How far the risk rules run behind the ledger during ``giftwave bench cluster``.

A thread samples, twice a second, the rules' position (``risk_rules`` watermark) against the
ledger's head: the lag is how long ago the oldest transfer not yet evaluated was committed (0
when the rules are up to date). Read from the database, so it covers every node's engine; after
the gifts stop, ``caught_up_s`` is how long the rules took to reach the head.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import Engine, func, select

from giftwave.db import watermarks
from giftwave.db.tables import transfers
from giftwave.economy.risk_follower import WATERMARK

SAMPLE_EVERY_S: Final = 0.5
CATCH_UP_MAX_S: Final = 60.0


def lag_s(db: Engine) -> float:
    """Now minus the commit time of the first transfer past the rules' position (0: none)."""
    with db.connect() as conn:
        position = watermarks.position_in(conn, WATERMARK) or 0
        oldest = conn.execute(
            select(func.min(transfers.c.created_at_us)).where(transfers.c.seq == position + 1)
        ).scalar()
    return 0.0 if oldest is None else max(0.0, time.time() - int(oldest) / 1e6)


@dataclass(slots=True)
class RiskLagSampler:
    db: Engine
    samples_s: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="risk-lag", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.samples_s.append(lag_s(self.db))

    def caught_up_s(self) -> float:
        """After the load: seconds until the rules reached the ledger's head (bounded)."""
        started = time.perf_counter()
        while lag_s(self.db) > 0 and time.perf_counter() - started < CATCH_UP_MAX_S:
            time.sleep(0.1)
        return round(time.perf_counter() - started, 2)
