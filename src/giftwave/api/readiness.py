"""``/readyz``: may a load balancer send this node work now?

Ready means: the database answers and its schema is this giftwave's, the ledger writer is
running, the broker answers (Redis, when the rooms go through it), and the node is not
draining. Not ready is 503 ``not_ready`` with a ``checks`` member naming each check's state,
so an operator reads what failed from the load balancer's log. ``/healthz`` stays static: a
process that answers it is alive, and restarting it would not mend a database that is away.

The answer is kept ``CACHE_S``: a load balancer (or several) polling every 100 ms costs one
check a second. Draining is never cached: it fails the next poll.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Final

from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text

from giftwave.api.drain import Drain
from giftwave.api.problems import problem_response
from giftwave.db.engine import SchemaOutOfDate, check_schema
from giftwave.errors import Code
from giftwave.ledger.engine import PostingEngine
from giftwave.realtime.broker import Broker

CACHE_S: Final = 1.0
# Each check answers within this long or counts as failed: a load balancer's probe has a
# timeout of its own (HAProxy's default: 2 s), and a hung database must read as "not ready".
CHECK_TIMEOUT_S: Final = 1.5
OK: Final = "ok"


@dataclass(frozen=True, slots=True)
class Parts:
    """What the checks look at, once the lifespan has started them."""

    db: Engine
    engine: PostingEngine
    broker: Broker


class Readiness:
    def __init__(self, drain: Drain) -> None:
        self._drain = drain
        self._parts: Parts | None = None
        self._checked_at_s = -CACHE_S
        self._checks: dict[str, str] = {"started": "starting"}
        self._lock = asyncio.Lock()
        self._schema = _Schema()

    def started(self, parts: Parts) -> None:
        self._parts = parts
        self._checked_at_s = -CACHE_S

    def stopped(self) -> None:
        self._parts = None

    async def answer(self) -> JSONResponse:
        checks = dict(await self._cached())
        checks["draining"] = "draining" if self._drain.draining else OK
        if all(state == OK for state in checks.values()):
            return JSONResponse({"status": "ready", "checks": checks})
        failed = ", ".join(name for name, state in checks.items() if state != OK)
        return problem_response(503, Code.NOT_READY, f"not ready: {failed}", checks=checks)

    async def _cached(self) -> dict[str, str]:
        async with self._lock:  # polls arriving together share one check
            if time.monotonic() - self._checked_at_s >= CACHE_S:
                self._checks = await self._check()
                self._checked_at_s = time.monotonic()
            return self._checks

    async def _check(self) -> dict[str, str]:
        parts = self._parts
        if parts is None:
            return {"started": "starting"}
        database, broker = await asyncio.gather(
            _database(parts.db, self._schema), _broker(parts.broker)
        )
        writer = OK if parts.engine.writer_alive else "stopped"
        return {"database": database, "ledger_writer": writer, "broker": broker}


class _Schema:
    """The schema revision this process checked at its first readiness check (Alembic's full
    check, which reads every migration script), then only compared with the database's: a
    ``giftwave migrate`` of a newer release makes this process's code out of date."""

    def __init__(self) -> None:
        self.revision: str | None = None

    def state(self, db: Engine) -> str:
        if self.revision is None:
            try:
                check_schema(db)
            except SchemaOutOfDate:
                return "schema_out_of_date"
            self.revision = _revision(db)
            return OK
        return OK if _revision(db) == self.revision else "schema_out_of_date"


def _revision(db: Engine) -> str | None:
    with db.connect() as conn:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if revision is None else str(revision)


async def _database(db: Engine, schema: _Schema) -> str:
    try:
        return await asyncio.wait_for(asyncio.to_thread(schema.state, db), CHECK_TIMEOUT_S)
    except Exception:  # any failure to answer is the same to a load balancer: not ready
        return "unreachable"


async def _broker(broker: Broker) -> str:
    try:
        await asyncio.wait_for(broker.ping(), CHECK_TIMEOUT_S)
    except Exception:  # refused, timed out, reset: not connected
        return "unreachable"
    return OK
