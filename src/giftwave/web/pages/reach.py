"""``/me/reach``: a user's reach as a sharer (what ``GET /v1/me/reach`` says), with badges."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from giftwave.api.shares import reach
from giftwave.api.state import services
from giftwave.sharing.attribution import BADGES
from giftwave.web.pages.site import page, to_login, visitor

router = APIRouter(include_in_schema=False)


@router.get("/me/reach", response_class=HTMLResponse)
async def reach_page(request: Request) -> Response:
    who = await visitor(request)
    if who.user is None:
        return to_login("/me/reach")
    mine = await reach(services(request).sharing, who.user.id)
    return page(request, who, "reach.html", reach=mine, badges=BADGES)
