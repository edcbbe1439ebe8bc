"""A creator's OBS overlay link: ``/overlay/live?key=…`` shows their room, whichever stream they
are live on. The key is theirs alone; rotating it retires every old link at once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import StreamingUser, economy_of
from giftwave.api.shop import site_url
from giftwave.economy.services import Economy
from giftwave.errors import Code, Forbidden
from giftwave.identity.users import Role, User
from giftwave.live.overlay_keys import overlay_key, rotate_overlay_key

router = APIRouter(prefix="/v1/creators/me/overlay", tags=["overlay"])
Econ = Annotated[Economy, Depends(economy_of)]


class OverlayOut(BaseModel):
    key: str
    url: str


def _creator(user: User) -> User:
    if user.role is not Role.CREATOR:
        raise Forbidden(Code.NOT_A_CREATOR, "overlays are for creators")
    return user


def _out(request: Request, economy: Economy, key: str) -> OverlayOut:
    return OverlayOut(key=key, url=f"{site_url(request, economy)}/overlay/live?key={key}")


@router.get("", response_model=OverlayOut)
async def my_overlay(request: Request, economy: Econ, user: StreamingUser) -> OverlayOut:
    """The link to paste into OBS as a browser source (1280 by 720, transparent)."""
    creator = _creator(user)

    def work() -> str:
        with economy.db.begin() as conn:
            return overlay_key(conn, creator.id)

    return _out(request, economy, await run_in_threadpool(work))


@router.post("/rotate", response_model=OverlayOut)
async def rotate(request: Request, economy: Econ, user: StreamingUser) -> OverlayOut:
    """A new link; the old one stops working."""
    creator = _creator(user)

    def work() -> str:
        with economy.db.begin() as conn:
            return rotate_overlay_key(conn, creator.id)

    return _out(request, economy, await run_in_threadpool(work))
