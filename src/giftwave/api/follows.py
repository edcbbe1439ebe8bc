"""Follows (``/v1/me/following``), a user's follower count, and the social proof of a room:
"K of the people you follow are watching" (``/v1/streams/{id}/friends-watching``).

Who is watching comes from this node's hub: the logged-in people with the room's socket open
here (docs/sharing.md, "Social proof", says what that means with several nodes). The viewer
page and the home page's cards compute it with the same function, server-side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Final

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import SessionUser
from giftwave.api.state import services
from giftwave.clock import now_us
from giftwave.identity.users import User
from giftwave.live import stream_service
from giftwave.ratelimit import UserLimit
from giftwave.realtime.hub import Hub
from giftwave.social.follows import (
    MAX_FOLLOWING,
    Followed,
    FollowedLive,
    creator_followed,
    follow_and_count,
    follower_total,
    following_page,
    ids_followed_by,
    unfollow,
)
from giftwave.social.follows import following_now as following_now_of
from giftwave.social.follows import handles as handles_of_users

router = APIRouter(tags=["follows"])

SHOWN_HANDLES: Final = 3
# The home page's "Following": everyone live (a page of cards), fewer of the others.
HOME_FOLLOWED_LIVE: Final = 24
HOME_FOLLOWED_OFFLINE: Final = 8


def _limiter(request: Request) -> UserLimit:
    limiter: UserLimit = services(request).follow_limiter
    return limiter


class FollowOut(BaseModel):
    user_id: int
    handle: str
    following: bool = True
    followers: int = Field(description="the followee's follower count, after this change")


@router.put("/v1/me/following/{user_id}", status_code=201, response_model=FollowOut)
async def follow_user(
    user_id: int, request: Request, response: Response, user: SessionUser
) -> FollowOut:
    """Follow a user: 201 when this started it, 200 when already following. Limited per
    user together with unfollowing (429)."""
    await _limiter(request).take(user.id)
    followee, made, count = await run_in_threadpool(
        follow_and_count, services(request).db, user, user_id, now_us()
    )
    response.status_code = 201 if made else 200
    return FollowOut(user_id=followee.id, handle=followee.handle, followers=count)


@router.delete("/v1/me/following/{user_id}", status_code=204, response_class=Response)
async def unfollow_user(user_id: int, request: Request, user: SessionUser) -> Response:
    """Stop following a user (204, followed or not)."""
    await _limiter(request).take(user.id)
    await run_in_threadpool(unfollow, services(request).db, user, user_id)
    return Response(status_code=204)


class FollowedOut(BaseModel):
    user_id: int
    handle: str
    followed_at: datetime


class FollowingOut(BaseModel):
    total: int
    following: list[FollowedOut] = Field(description="most recently followed first")


@router.get("/v1/me/following", response_model=FollowingOut)
async def my_following(
    request: Request,
    user: SessionUser,
    limit: Annotated[int, Query(ge=1, le=MAX_FOLLOWING)] = 100,
) -> FollowingOut:
    """The people the caller follows, with their handles."""
    total, rows = await run_in_threadpool(following_page, services(request).db, user.id, limit)
    return FollowingOut(
        total=total,
        following=[
            FollowedOut(
                user_id=f.user_id,
                handle=f.handle,
                followed_at=datetime.fromtimestamp(f.followed_at_us / 1e6, tz=UTC),
            )
            for f in rows
        ],
    )


class FollowerCountOut(BaseModel):
    user_id: int
    followers: int


@router.get("/v1/users/{user_id}/followers/count", response_model=FollowerCountOut)
async def followers_of(user_id: int, request: Request) -> FollowerCountOut:
    """How many people follow a user (public)."""
    count = await run_in_threadpool(follower_total, services(request).db, user_id)
    return FollowerCountOut(user_id=user_id, followers=count)


async def friends_watching(
    request: Request, user: User, stream_ids: list[str]
) -> dict[str, list[int]]:
    """For each stream, the people ``user`` follows who have its room open on this node now
    (most recently followed first). One query for the following list, none per stream."""
    hub: Hub = services(request).hub
    if not any(hub.peek(s) is not None for s in stream_ids):
        return {s: [] for s in stream_ids}
    ids = await run_in_threadpool(ids_followed_by, services(request).db, user.id)
    return {s: hub.watching(s, ids) if ids else [] for s in stream_ids}


class FriendsWatchingOut(BaseModel):
    count: int = Field(description="people the caller follows who have the room open now")
    handles: list[str] = Field(description=f"up to {SHOWN_HANDLES} of them")


@router.get("/v1/streams/{stream_id}/friends-watching", response_model=FriendsWatchingOut)
async def stream_friends_watching(
    stream_id: str, request: Request, user: SessionUser
) -> FriendsWatchingOut:
    """How many of the people the caller follows are watching this stream now, and who
    (up to three, most recently followed first)."""
    db = services(request).db
    await run_in_threadpool(stream_service.stream, db, stream_id)  # 404 stream_not_found
    watching = (await friends_watching(request, user, [stream_id]))[stream_id]
    shown = watching[:SHOWN_HANDLES]

    handles = await run_in_threadpool(handles_of_users, db, shown) if shown else {}
    return FriendsWatchingOut(
        count=len(watching), handles=[handles[i] for i in shown if i in handles]
    )


async def social_of_stream(request: Request, user: User, stream_id: str) -> tuple[int, bool]:
    """For the viewer page: how many people ``user`` follows are watching the stream now,
    and whether they follow its creator."""
    hub: Hub = services(request).hub
    creator_id, ids = await run_in_threadpool(
        creator_followed, services(request).db, user.id, stream_id
    )
    return len(hub.watching(stream_id, ids)), creator_id is not None and creator_id in ids


@dataclass(frozen=True, slots=True)
class FollowingNow:
    """The home page's "Following": who is live now, some of the others, and how many."""

    live: list[FollowedLive]
    offline: list[Followed]
    total: int


async def following_now(request: Request, user: User) -> FollowingNow:
    """Who ``user`` follows that is live now, and the most recently followed of the others:
    three bounded queries, none per person."""
    live, offline, total = await run_in_threadpool(
        following_now_of, services(request).db, user.id, HOME_FOLLOWED_LIVE, HOME_FOLLOWED_OFFLINE
    )
    return FollowingNow(live, offline, total)
