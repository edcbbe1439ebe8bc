"""Paid highlighted messages (economy/paid_messages.py): the published tier table, and a
moderator's hide.

    GET  /v1/paid-messages/tiers                          public: what each price buys
    POST /v1/streams/{id}/paid-messages/{send_id}/hide    the creator, their moderators, admins

A message is sent with its gift (``message`` in ``POST /v1/streams/{id}/gifts`` or the socket's
``send_gift``). A hide takes it off every screen on every node; the gift stands (no refund).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import SessionUser
from giftwave.api.live import MODERATION_RATE, moderation_rate_key
from giftwave.api.state import services
from giftwave.economy.paid_messages import published
from giftwave.errors import Code, RateLimited
from giftwave.live import paid_message_service
from giftwave.live.paid_message_service import SEND_ID_MAX_CHARS
from giftwave.ratelimit import RateLimiter
from giftwave.realtime.hub import Hub

router = APIRouter(prefix="/v1", tags=["paid messages"])

SendId = Annotated[str, Path(min_length=1, max_length=SEND_ID_MAX_CHARS)]


class TierOut(BaseModel):
    tier: int
    min_coins: int
    pinned_s: int
    colour: str


class TiersOut(BaseModel):
    tiers: list[TierOut]


class HiddenOut(BaseModel):
    hidden: str


@router.get("/paid-messages/tiers", response_model=TiersOut)
async def paid_message_tiers(request: Request) -> TiersOut:
    """The published table: a gift of ``min_coins`` or more pins its message ``pinned_s``
    seconds in ``colour``; a message with a smaller gift is refused (nothing charged)."""
    tiers = services(request).economy.settings.paid_message_tiers
    return TiersOut(tiers=[TierOut.model_validate(t) for t in published(tiers)])


@router.post("/streams/{stream_id}/paid-messages/{send_id}/hide", response_model=HiddenOut)
async def hide_paid_message(
    stream_id: str, send_id: SendId, request: Request, user: SessionUser
) -> HiddenOut:
    """Take a paid message off the room (every node, every screen, late joiners too); the
    gift and its coins stand. Hiding it again answers the same."""
    limiter: RateLimiter = services(request).rate_limiter
    wait_s = await limiter.hit(moderation_rate_key(user.id), MODERATION_RATE)
    if wait_s:
        raise RateLimited(
            Code.RATE_LIMITED, "too many moderation commands; slow down", retry_after_s=wait_s
        )
    news = await run_in_threadpool(
        paid_message_service.hide, services(request).db, stream_id, send_id, user
    )
    hub: Hub = services(request).hub
    assert hub.broker is not None
    await hub.broker.publish(stream_id, news)
    return HiddenOut(hidden=send_id)
