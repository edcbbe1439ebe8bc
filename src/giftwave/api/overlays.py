"""A creator's OBS overlay link: ``/overlay/live?key=…`` shows their room, whichever stream they
are live on. The key is theirs alone; rotating it retires every old link at once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import StreamingUser, economy_of
from giftwave.api.state import public_base
from giftwave.economy.services import Economy
from giftwave.live.overlay_keys import creator_key, rotate_creator_key

router = APIRouter(prefix="/v1/creators/me/overlay", tags=["overlay"])
Econ = Annotated[Economy, Depends(economy_of)]


class OverlayOut(BaseModel):
    key: str
    url: str


def _out(request: Request, economy: Economy, key: str) -> OverlayOut:
    return OverlayOut(key=key, url=f"{public_base(request)}/overlay/live?key={key}")


@router.get("", response_model=OverlayOut)
async def my_overlay(request: Request, economy: Econ, user: StreamingUser) -> OverlayOut:
    """The link to paste into OBS as a browser source (1280 by 720, transparent)."""
    key = await run_in_threadpool(creator_key, economy.db, user)
    return _out(request, economy, key)


@router.post("/rotate", response_model=OverlayOut)
async def rotate(request: Request, economy: Econ, user: StreamingUser) -> OverlayOut:
    """A new link; the old one stops working."""
    key = await run_in_threadpool(rotate_creator_key, economy.db, user)
    return _out(request, economy, key)
