"""``/me/spending``: what the viewer spent (this month and last, per creator, per day as a
chart, in money as well as coins), their own limits with a raise's cooling-off shown, and a
break from spending behind a confirmation (docs/economy.md, "Responsible spending"). The forms
call the JSON API (spending.js); the figures are the API's own (economy/spending.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from giftwave.api.state import services
from giftwave.web import charts
from giftwave.web.pages.site import page, to_login, visitor

router = APIRouter(include_in_schema=False)


@router.get("/me/spending", response_class=HTMLResponse)
async def spending_page(request: Request) -> Response:
    who = await visitor(request)
    if who.user is None:
        return to_login("/me/spending")
    spending = services(request).economy.spending
    user = who.user
    overview = await run_in_threadpool(spending.overview, user)
    report = await run_in_threadpool(spending.report, user)
    return page(
        request,
        who,
        "spending.html",
        overview=overview,
        report=report,
        charts=charts,
        at=lambda at_us: datetime.fromtimestamp(at_us / 1e6, tz=UTC),
    )
