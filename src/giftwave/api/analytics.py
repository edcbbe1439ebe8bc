"""Economy health as JSON or CSV: the whole economy (admins), a creator's own, one stream's.

    GET /v1/admin/analytics/economy      ?days=1..366 &format=json|csv &table=…
    GET /v1/creators/me/analytics        ?days=1..366 &format=json|csv &table=…
    GET /v1/streams/{id}/analytics       the stream's creator or an admin; &format &table

Every answer first brings the rollups up to the ledger (a bounded catch-up, at most once a
second per process, one at a time), then reads them only. CSV answers one of the report's
tables (``table``, default the first); an unknown table is a 400 naming the ones there are.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from functools import partial
from typing import Annotated, Any, Final, Literal, Protocol

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from giftwave.analytics import figures
from giftwave.analytics.reports import CreatorReport, EconomyReport, StreamReport, Table
from giftwave.analytics.rollup import Rollup
from giftwave.api.auth import AdminPrincipal, MaybePrincipal, SessionUser, economy_of
from giftwave.api.problems import Problem
from giftwave.api.state import services
from giftwave.clock import now_us
from giftwave.economy.services import Economy
from giftwave.errors import Code

router = APIRouter(tags=["analytics"])
Econ = Annotated[Economy, Depends(economy_of)]
Days = Annotated[int, Query(ge=1, le=366, description="the last N days with activity")]
Format = Literal["json", "csv"]
TableName = Annotated[str | None, Query(max_length=32, pattern=r"^[a-z_]+$")]
CATCH_UP_EVERY_S: Final = 1.0
CATCH_UP_MAX_CHUNKS: Final = 20  # 200,000 transfers per request at most; the rest next time


class _Report(Protocol):
    def tables(self) -> dict[str, Table]: ...
    def as_dict(self) -> dict[str, Any]: ...


class Freshness:
    """This process's rollup job: run before a read, bounded, one at a time."""

    def __init__(self, rollup: Rollup) -> None:
        self._rollup = rollup
        self._lock = asyncio.Lock()
        self._last = 0.0

    async def ensure(self) -> None:
        if time.monotonic() - self._last < CATCH_UP_EVERY_S:
            return
        async with self._lock:
            if time.monotonic() - self._last < CATCH_UP_EVERY_S:
                return
            await run_in_threadpool(self._rollup.catch_up, CATCH_UP_MAX_CHUNKS)
            self._last = time.monotonic()


def freshness_of(request: Request) -> Freshness:
    return services(request).analytics


async def economy_figures(request: Request, economy: Economy, days: int) -> EconomyReport:
    await freshness_of(request).ensure()
    settings = economy.settings
    return await run_in_threadpool(
        partial(
            figures.economy,
            economy.db,
            payout_min_cents=settings.payout_min_cents,
            diamond_value_usd_micros=settings.diamond_value_usd_micros,
            days=days,
        )
    )


async def creator_figures(
    request: Request, economy: Economy, creator_id: int, days: int
) -> CreatorReport:
    await freshness_of(request).ensure()
    return await run_in_threadpool(figures.creator, economy.db, creator_id, days)


async def stream_figures(request: Request, economy: Economy, stream_id: str) -> StreamReport:
    await freshness_of(request).ensure()
    return await run_in_threadpool(figures.stream, economy.db, stream_id, now_us())


def answer(report: _Report, format: Format, table: str | None, name: str) -> Any:
    if format == "json":
        return report.as_dict()
    tables = report.tables()
    chosen = table or next(iter(tables))
    if chosen not in tables:
        raise Problem(
            400,
            Code.UNKNOWN_TABLE,
            f"no table {chosen!r}; there are: {', '.join(tables)}",
            tables=list(tables),
        )
    headers, rows = tables[chosen]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows([[_csv_safe(c) for c in row] for row in rows])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="giftwave-{name}-{chosen}.csv"'},
    )


def _csv_safe(cell: object) -> object:
    """A text cell a spreadsheet would run as a formula is quoted (numbers pass as they are)."""
    if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + cell
    return cell


@router.get("/v1/admin/analytics/economy", responses={200: {"content": {"text/csv": {}}}})
async def economy_health(
    request: Request,
    economy: Econ,
    admin: AdminPrincipal,
    days: Days = 90,
    format: Format = "json",
    table: TableName = None,
) -> Any:
    """The whole economy's health (docs/analytics.md)."""
    report = await economy_figures(request, economy, days)
    return answer(report, format, table, "economy")


@router.get("/v1/creators/me/analytics", responses={200: {"content": {"text/csv": {}}}})
async def my_health(
    request: Request,
    economy: Econ,
    user: SessionUser,
    days: Days = 90,
    format: Format = "json",
    table: TableName = None,
) -> Any:
    """The logged-in creator's earnings over time and who they come from."""
    report = await creator_figures(request, economy, user.id, days)
    return answer(report, format, table, "creator")


@router.get("/v1/streams/{stream_id}/analytics", responses={200: {"content": {"text/csv": {}}}})
async def stream_health(
    request: Request,
    economy: Econ,
    who: MaybePrincipal,
    stream_id: Annotated[str, Path(max_length=24, pattern=r"^[A-Za-z0-9_-]+$")],
    format: Format = "json",
    table: TableName = None,
) -> Any:
    """One stream's viewers, gifts, gifters and spikes: for its creator and for admins."""
    if who is None:
        raise Problem(401, Code.UNAUTHORIZED, "log in or send a bearer token")
    await freshness_of(request).ensure()
    reader_id = who.user.id if who.user is not None and who.api_key is None else None
    report = await run_in_threadpool(
        partial(
            figures.stream_for,
            economy.db,
            stream_id,
            now_us(),
            reader_id=reader_id,
            admin=who.is_admin,
        )
    )
    return answer(report, format, table, "stream")
