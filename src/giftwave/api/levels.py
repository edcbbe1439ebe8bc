"""Gifter levels (docs/economy.md, "Gifter levels"): the published curve, one person's level,
and hiding one's own.

    GET   /v1/levels                 the curve: the coins each level 1..50 needs (public)
    GET   /v1/users/{user_id}/level  level, progress, top 5 creators supported (403
                                     level_hidden when the person hides it from the caller)
    PATCH /v1/me/level               {"hidden": true|false}: the caller's own (a session)
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import MaybePrincipal, SessionUser
from giftwave.api.state import services
from giftwave.realtime.notices import LevelChanged
from giftwave.social.level_service import GifterLevel, Levels

router = APIRouter(tags=["levels"])

UserId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _levels(request: Request) -> Levels:
    levels: Levels = services(request).levels
    return levels


class LevelStep(BaseModel):
    level: int
    coins: int = Field(description="lifetime coins gifted that reach this level")


class CurveOut(BaseModel):
    levels: list[LevelStep]


class SupportedOut(BaseModel):
    creator_id: int
    handle: str
    coins: int


class LevelOut(BaseModel):
    user_id: int
    handle: str
    level: int = Field(description="0: nothing gifted yet (no badge)")
    coins: int = Field(description="lifetime coins gifted, net of reversed gifts")
    next_level: int | None
    next_level_coins: int | None
    coins_to_next: int | None
    hidden: bool = Field(description="hidden from everybody else (only its owner sees this)")
    top_creators: list[SupportedOut]


class LevelVisibilityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hidden: StrictBool


def _out(found: GifterLevel) -> LevelOut:
    p = found.progress
    return LevelOut(
        user_id=found.user_id,
        handle=found.handle,
        level=p.level,
        coins=p.coins,
        next_level=p.next_level,
        next_level_coins=p.next_level_coins,
        coins_to_next=p.coins_to_next,
        hidden=found.hidden,
        top_creators=[
            SupportedOut(creator_id=s.creator_id, handle=s.handle, coins=s.coins)
            for s in found.top_creators
        ],
    )


@router.get("/v1/levels", response_model=CurveOut)
async def level_curve(request: Request) -> CurveOut:
    """The published curve (GIFTWAVE_LEVEL_THRESHOLDS_COINS, or the default)."""
    thresholds = _levels(request).curve.thresholds
    return CurveOut(levels=[LevelStep(level=i, coins=c) for i, c in enumerate(thresholds, start=1)])


@router.get("/v1/users/{user_id}/level", response_model=LevelOut)
async def user_level(user_id: UserId, request: Request, who: MaybePrincipal) -> LevelOut:
    """A person's level, progress to the next and the creators they support most."""
    asking = None if who is None else who.user
    found = await run_in_threadpool(_levels(request).level_of, user_id, asking)
    return _out(found)


@router.patch("/v1/me/level", response_model=LevelOut)
async def set_level_visibility(
    body: LevelVisibilityIn, request: Request, user: SessionUser
) -> LevelOut:
    """Hide one's level from everybody else (profile, JSON, room badges), or show it again."""
    levels = _levels(request)
    await levels.visibility_limit.take(user.id)
    found = await run_in_threadpool(levels.set_hidden, user, body.hidden)
    badge = levels.badge_after(found)
    await services(request).broker.notify(LevelChanged(user_id=user.id, level=badge))
    return _out(found)
