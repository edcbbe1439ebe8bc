"""``/me/reach``: a user's reach as a sharer (what ``GET /v1/me/reach`` says), with badges."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from giftwave.api.shares import reach
from giftwave.api.state import services
from giftwave.sharing.attribution import BADGES
from giftwave.web.pages.site import page, visitor

router = APIRouter(include_in_schema=False)


@router.get("/me/reach", response_class=HTMLResponse)
async def reach_page(request: Request) -> Response:
    who = await visitor(request)
    if who.user is None:
        return RedirectResponse(f"/login?next={quote('/me/reach')}", status_code=303)
    mine = await reach(services(request).sharing, who.user.id)
    return page(request, who, "reach.html", reach=mine, badges=BADGES)
