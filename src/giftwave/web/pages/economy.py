"""The Economy pages: the admin console's Economy tab (/admin/economy: the whole economy, and
one creator or stream on request) and a creator's own figures (/studio/economy), as charts
rendered on the server (``web/charts.py``) with their data tables, and links to the JSON and
CSV the analytics API answers (``api/analytics.py``)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from giftwave.analytics.reports import CreatorReport, StreamReport
from giftwave.api.analytics import creator_figures, economy_figures, stream_figures
from giftwave.api.auth import economy_of
from giftwave.api.problems import Problem
from giftwave.identity.users import Role
from giftwave.web import charts
from giftwave.web.pages.site import page, visitor_in_role

router = APIRouter(include_in_schema=False)


@router.get("/admin/economy", response_class=HTMLResponse)
async def economy_tab(
    request: Request,
    creator: int | None = Query(default=None, ge=1, le=2**62),
    stream: str | None = Query(default=None, max_length=24, pattern=r"^[A-Za-z0-9_-]+$"),
) -> Response:
    who = await visitor_in_role(request, "/admin/economy", Role.ADMIN)
    if isinstance(who, Response):
        return who
    economy = await economy_of(request)
    report = await economy_figures(request, economy, 90)
    creator_report: CreatorReport | None = None
    if creator is not None:
        creator_report = await creator_figures(request, economy, creator, 90)
    stream_report: StreamReport | None = None
    stream_missing = False
    if stream is not None:
        try:
            stream_report = await stream_figures(request, economy, stream)
        except Problem:
            stream_missing = True
    return page(
        request,
        who,
        "economy.html",
        charts=charts,
        economy=report,
        creator=creator_report,
        stream=stream_report,
        stream_missing=stream_missing,
        payout_min_usd=economy.settings.payout_min_cents / 100,
    )


@router.get("/studio/economy", response_class=HTMLResponse)
async def my_economy(request: Request) -> Response:
    who = await visitor_in_role(request, "/studio/economy", Role.CREATOR)
    if isinstance(who, Response):
        return who
    assert who.user is not None
    economy = await economy_of(request)
    report = await creator_figures(request, economy, who.user.id, 90)
    return page(
        request,
        who,
        "economy.html",
        charts=charts,
        economy=None,
        creator=report,
        stream=None,
        stream_missing=False,
        payout_min_usd=economy.settings.payout_min_cents / 100,
    )
