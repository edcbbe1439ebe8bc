"""Fan clubs (social/clubs.py) and the chat mode of a creator's rooms (social/chat_settings.py),
docs/community.md.

    GET    /v1/creators/{id}/club                       the club, its points table and levels
    PUT    /v1/me/club                                  a creator names (or renames) their club
    GET    /v1/creators/{id}/chat-mode                  who may chat in the creator's rooms
    PUT    /v1/me/chat-mode                             who may chat: everyone | members |
                                                        members_level (with min_level) |
                                                        subscribers (no club needed)
    PUT    /v1/me/club/chat                             the same, as before (needs a club)
    GET    /v1/me/club/members, DELETE …/{user_id}      the creator's members; remove one
    POST   /v1/creators/{id}/club/members               join (free, or with the entry gift)
    GET    /v1/creators/{id}/club/members/me            my membership
    DELETE /v1/creators/{id}/club/members/me            leave (204, also when not a member)

Every change is limited per user across nodes (429) and tells every node (the broker's
notices), so a chat mode or a membership counts on the next chat line anywhere.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import SessionUser
from giftwave.api.state import services
from giftwave.realtime.notices import ClubChanged, ClubMemberChanged
from giftwave.social import club_service
from giftwave.social.chat_settings import ChatMode, ChatSetting
from giftwave.social.clubs import (
    LEVELS,
    LIST_MAX,
    NAME_MAX_CHARS,
    POINTS_PER_COIN,
    POINTS_PER_LIKE,
    POINTS_PER_WATCH_MINUTE,
    Club,
    Member,
)

router = APIRouter(prefix="/v1", tags=["fan clubs"])

UserId = Annotated[int, Path(ge=1, le=2**62)]
Key = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class PointsTable(BaseModel):
    per_coin: int = POINTS_PER_COIN
    per_like: int = POINTS_PER_LIKE
    per_watch_minute: int = POINTS_PER_WATCH_MINUTE


class ClubOut(BaseModel):
    creator_id: int
    name: str
    entry_gift_id: str | None
    chat_mode: ChatMode
    chat_min_level: int
    members: int
    points: PointsTable = PointsTable()
    level_points: list[int] = Field(
        default=list(LEVELS.points), description="points needed for level 1, 2, …"
    )

    @classmethod
    def of(cls, club: Club, members: int, chat: ChatSetting) -> ClubOut:
        return cls(
            creator_id=club.creator_id,
            name=club.name,
            entry_gift_id=club.entry_gift_id,
            chat_mode=chat.mode,
            chat_min_level=chat.min_level,
            members=members,
        )


class ChatModeOut(BaseModel):
    creator_id: int
    mode: ChatMode
    min_level: int = Field(description="the club level members_level asks for")


class MembersOut(BaseModel):
    total: int
    members: list[Member] = Field(description=f"most points first, at most {LIST_MAX}")


class ClubIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Checked again by the rule (trimmed length, control characters): 422 invalid_club_name.
    name: str = Field(max_length=NAME_MAX_CHARS * 4)
    entry_gift_id: str | None = Field(default=None, min_length=1, max_length=32)


class ChatModeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: ChatMode
    min_level: int = Field(default=1, ge=1, le=1000)


class JoinIn(BaseModel):
    """``stream_id`` and ``idempotency_key``: for a club whose entry is a gift (sent there)."""

    model_config = ConfigDict(extra="forbid")
    stream_id: str | None = Field(default=None, min_length=1, max_length=24)
    idempotency_key: Key = "join"


async def _changed(request: Request, creator_id: int, user_id: int | None = None) -> None:
    notice = (
        ClubChanged(creator_id=creator_id)
        if user_id is None
        else ClubMemberChanged(creator_id=creator_id, user_id=user_id)
    )
    await services(request).broker.notify(notice)


@router.get("/creators/{creator_id}/club", response_model=ClubOut)
async def get_club(creator_id: UserId, request: Request) -> ClubOut:
    """A creator's fan club: name, entry gift, chat mode, members, the points table, levels."""
    found = await run_in_threadpool(club_service.club, services(request).db, creator_id)
    return ClubOut.of(*found)


@router.put("/me/club", status_code=201, response_model=ClubOut)
async def name_club(
    body: ClubIn, request: Request, response: Response, user: SessionUser
) -> ClubOut:
    """Name your fan club (201), or rename it (200; members and points stay). Creators only."""
    await services(request).clubs.changes.take(user.id)
    db = services(request).db
    club, made = await run_in_threadpool(
        club_service.name_club, db, user, body.name, body.entry_gift_id
    )
    await _changed(request, user.id)
    response.status_code = 201 if made else 200
    _, members, chat = await run_in_threadpool(club_service.club, db, user.id)
    return ClubOut.of(club, members, chat)


@router.put("/me/club/chat", response_model=ClubOut)
async def switch_chat(body: ChatModeIn, request: Request, user: SessionUser) -> ClubOut:
    """Who may chat in your rooms from now on, on every node at once: ``PUT /v1/me/chat-mode``
    answered with your club (404 ``club_not_found`` without one), as this route always did."""
    await services(request).clubs.changes.take(user.id)
    db = services(request).db
    await run_in_threadpool(club_service.switch_chat, db, user, body.mode, body.min_level)
    await _changed(request, user.id)
    found = await run_in_threadpool(club_service.club, db, user.id)
    return ClubOut.of(*found)


@router.get("/creators/{creator_id}/chat-mode", response_model=ChatModeOut)
async def get_chat_mode(creator_id: UserId, request: Request) -> ChatModeOut:
    """Who may chat in a creator's rooms (everyone when they never chose; public, as the
    refusal a chat line gets tells it anyway)."""
    chat = await run_in_threadpool(club_service.chat_mode, services(request).db, creator_id)
    return ChatModeOut(creator_id=creator_id, mode=chat.mode, min_level=chat.min_level)


@router.put("/me/chat-mode", response_model=ChatModeOut)
async def set_chat_mode(body: ChatModeIn, request: Request, user: SessionUser) -> ChatModeOut:
    """Who may chat in your rooms from now on, on every node at once. ``subscribers`` needs no
    fan club; ``members`` and ``members_level`` do (409 ``chat_mode_needs_club``). Creators
    only."""
    await services(request).clubs.changes.take(user.id)
    chat = await run_in_threadpool(
        club_service.set_chat, services(request).db, user, body.mode, body.min_level
    )
    await _changed(request, user.id)
    return ChatModeOut(creator_id=user.id, mode=chat.mode, min_level=chat.min_level)


@router.get("/me/club/members", response_model=MembersOut)
async def my_members(
    request: Request,
    user: SessionUser,
    limit: Annotated[int, Query(ge=1, le=LIST_MAX)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> MembersOut:
    """Your fan club's members with points, level and last seen, most points first."""
    total, found = await run_in_threadpool(
        club_service.members, services(request).db, user, limit, offset
    )
    return MembersOut(total=total, members=found)


@router.delete("/me/club/members/{user_id}", status_code=204, response_class=Response)
async def remove_member(user_id: UserId, request: Request, user: SessionUser) -> Response:
    """Remove a member (404 when they are not one). They may join again; a ban keeps them out."""
    await services(request).clubs.changes.take(user.id)
    await run_in_threadpool(club_service.remove, services(request).db, user, user_id)
    await _changed(request, user.id, user_id)
    return Response(status_code=204)


@router.post("/creators/{creator_id}/club/members", status_code=201, response_model=Member)
async def join_club(
    creator_id: UserId, body: JoinIn, request: Request, response: Response, user: SessionUser
) -> Member:
    """Join: 201, or 200 with the same membership when you are one already. A club with an
    entry gift takes it in ``stream_id`` (one of the creator's live streams) in the same
    request: both or neither, idempotent by ``idempotency_key``."""
    await services(request).clubs.changes.take(user.id)
    s = services(request)
    joined = await club_service.join(
        s.db, s.economy.gifting, user, creator_id, body.stream_id, body.idempotency_key
    )
    await _changed(request, creator_id, user.id)
    response.status_code = 201 if joined.new else 200
    return joined.member


@router.get("/creators/{creator_id}/club/members/me", response_model=Member)
async def my_membership(creator_id: UserId, request: Request, user: SessionUser) -> Member:
    found = await run_in_threadpool(
        club_service.my_membership, services(request).db, creator_id, user
    )
    return found


@router.delete("/creators/{creator_id}/club/members/me", status_code=204, response_class=Response)
async def leave_club(creator_id: UserId, request: Request, user: SessionUser) -> Response:
    """Leave (one click; 204 whether you were a member or not). Your points go with you."""
    await services(request).clubs.changes.take(user.id)
    await run_in_threadpool(club_service.leave, services(request).db, creator_id, user)
    await _changed(request, creator_id, user.id)
    return Response(status_code=204)
