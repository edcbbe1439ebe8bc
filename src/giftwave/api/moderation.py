"""Moderation beyond one room (live/moderation.py): a creator's moderators, bans from all of a
creator's rooms, viewers' reports of chat lines.

    GET/POST /v1/me/moderators, DELETE /v1/me/moderators/{user_id}     the creator's team
    GET/POST /v1/creators/{id}/bans, DELETE /v1/creators/{id}/bans/{user_id}
    POST /v1/streams/{id}/reports                                         a viewer flags a line
    GET /v1/me/moderates/{creator_id}                                     may I moderate there
    GET /v1/creators/{id}/reports, GET /v1/admin/reports

Bans and reports are for the creator, their moderators and admins (403 ``not_moderator``);
every change is limited per user across nodes (429). A ban or unban tells every node at once
(the broker's notices), so a banned user's next chat line, like or gift is refused anywhere.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import AdminPrincipal, SessionUser
from giftwave.api.problems import Problem
from giftwave.api.state import services
from giftwave.clock import now_us
from giftwave.errors import Code, RateLimited
from giftwave.live import moderation_service
from giftwave.live.moderation import (
    LIST_MAX,
    MAX_MODERATORS,
    REASON_MAX_CHARS,
    Ban,
    ChatLine,
    Moderator,
    Report,
    ReportReason,
)
from giftwave.ratelimit import Rate, RateLimiter
from giftwave.realtime.hub import Hub
from giftwave.realtime.notices import BanChanged

router = APIRouter(prefix="/v1", tags=["moderation"])

UserId = Annotated[int, Path(ge=1, le=2**62)]
# A person cleaning up a room bans or appoints a few people a minute; a script is refused.
CHANGES_RATE: Final = Rate(1.0, 20)
# A viewer flags the odd line; a flood of reports would bury the real ones.
REPORTS_RATE: Final = Rate(1 / 30, 10)


async def _limit(request: Request, key: str, rate: Rate, what: str) -> None:
    limiter: RateLimiter = services(request).rate_limiter
    wait_s = await limiter.hit(key, rate)
    if wait_s:
        raise RateLimited(Code.RATE_LIMITED, f"too many {what}; slow down", retry_after_s=wait_s)


# ---- moderators ---------------------------------------------------------------------------


class ModeratorOut(BaseModel):
    user_id: int
    handle: str
    since_us: int

    @classmethod
    def of(cls, m: Moderator) -> ModeratorOut:
        return cls(user_id=m.user_id, handle=m.handle, since_us=m.created_at_us)


class ModeratorsOut(BaseModel):
    max_moderators: int = MAX_MODERATORS
    moderators: list[ModeratorOut] = Field(description="longest-serving first")


class AppointIn(BaseModel):
    """Who: by ``user_id``, or by ``handle`` (what a creator knows of a regular)."""

    model_config = ConfigDict(extra="forbid")
    user_id: int | None = Field(default=None, ge=1, le=2**62)
    handle: str | None = Field(default=None, min_length=1, max_length=32)

    @model_validator(mode="after")
    def _one(self) -> AppointIn:
        if (self.user_id is None) == (self.handle is None):
            raise ValueError("give user_id or handle, one of them")
        return self


@router.get("/me/moderators", response_model=ModeratorsOut)
async def my_moderators(request: Request, user: SessionUser) -> ModeratorsOut:
    """The people who moderate every room of yours."""
    found = await run_in_threadpool(moderation_service.team, services(request).db, user)
    return ModeratorsOut(moderators=[ModeratorOut.of(m) for m in found])


@router.post("/me/moderators", status_code=201, response_model=ModeratorOut)
async def appoint_moderator(
    body: AppointIn, request: Request, response: Response, user: SessionUser
) -> ModeratorOut:
    """Make someone a moderator of all your rooms: 201, or 200 when they are one already.
    Creators only; at most ``max_moderators``."""
    await _limit(request, f"moderation-change:{user.id}", CHANGES_RATE, "changes")
    moderator, made = await run_in_threadpool(
        moderation_service.appoint_moderator,
        services(request).db,
        user,
        body.user_id,
        body.handle,
        now_us(),
    )
    response.status_code = 201 if made else 200
    return ModeratorOut.of(moderator)


@router.delete("/me/moderators/{user_id}", status_code=204, response_class=Response)
async def dismiss_moderator(user_id: UserId, request: Request, user: SessionUser) -> Response:
    """They stop moderating your rooms at once, on every node (204, a moderator or not)."""
    await _limit(request, f"moderation-change:{user.id}", CHANGES_RATE, "changes")
    await run_in_threadpool(
        moderation_service.dismiss_moderator, services(request).db, user, user_id
    )
    return Response(status_code=204)


# ---- bans ---------------------------------------------------------------------------------


class BanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: int = Field(ge=1, le=2**62)
    reason: str | None = Field(default=None, max_length=REASON_MAX_CHARS)


class BanOut(BaseModel):
    creator_id: int
    user_id: int
    handle: str
    banned_by: int
    reason: str | None
    created_at_us: int

    @classmethod
    def of(cls, b: Ban) -> BanOut:
        return cls.model_validate(b, from_attributes=True)


class BansOut(BaseModel):
    bans: list[BanOut] = Field(description=f"newest first, at most {LIST_MAX}")


async def _tell_nodes(request: Request, creator_id: int, user_id: int) -> None:
    await services(request).broker.notify(BanChanged(creator_id=creator_id, user_id=user_id))


@router.get("/creators/{creator_id}/bans", response_model=BansOut)
async def creator_bans(creator_id: UserId, request: Request, user: SessionUser) -> BansOut:
    """Who is banned from the creator's rooms: for the creator, their moderators, admins."""
    found = await run_in_threadpool(moderation_service.bans, services(request).db, creator_id, user)
    return BansOut(bans=[BanOut.of(b) for b in found])


@router.post("/creators/{creator_id}/bans", status_code=201, response_model=BanOut)
async def ban_user(
    creator_id: UserId, body: BanIn, request: Request, response: Response, user: SessionUser
) -> BanOut:
    """Ban someone from every room of the creator: no chat, likes or gifts there, on any node,
    from now on. 201, or 200 when they were banned already."""
    await _limit(request, f"moderation-change:{user.id}", CHANGES_RATE, "changes")
    reason = (body.reason or "").strip() or None
    if reason is not None and not reason.isprintable():
        raise Problem(422, Code.INVALID_REASON, "a reason may not contain control characters")
    found, made = await run_in_threadpool(
        moderation_service.ban_user,
        services(request).db,
        creator_id,
        body.user_id,
        user,
        reason,
        now_us(),
    )
    await _tell_nodes(request, creator_id, body.user_id)
    response.status_code = 201 if made else 200
    return BanOut.of(found)


@router.delete("/creators/{creator_id}/bans/{user_id}", status_code=204, response_class=Response)
async def unban_user(
    creator_id: UserId, user_id: UserId, request: Request, user: SessionUser
) -> Response:
    """Lift a ban (204, banned or not); every node knows at once."""
    await _limit(request, f"moderation-change:{user.id}", CHANGES_RATE, "changes")
    await run_in_threadpool(
        moderation_service.unban_user, services(request).db, creator_id, user_id, user
    )
    await _tell_nodes(request, creator_id, user_id)
    return Response(status_code=204)


# ---- reports ------------------------------------------------------------------------------


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message_id: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")
    reason: ReportReason


class ReportOut(BaseModel):
    id: int
    stream_id: str
    creator_id: int
    message_id: str
    user_id: int = Field(description="who wrote the line")
    handle: str
    text: str = Field(description="the line as the room showed it")
    reason: ReportReason
    reporter_id: int
    reporter_handle: str
    created_at_us: int

    @classmethod
    def of(cls, r: Report) -> ReportOut:
        return cls(
            id=r.id,
            stream_id=r.stream_id,
            creator_id=r.creator_id,
            message_id=r.message_id,
            user_id=r.reported_user_id,
            handle=r.reported_handle,
            text=r.text,
            reason=r.reason,
            reporter_id=r.reporter_id,
            reporter_handle=r.reporter_handle,
            created_at_us=r.created_at_us,
        )


class ReportsOut(BaseModel):
    reports: list[ReportOut] = Field(description="newest first")


async def _line(request: Request, stream_id: str, message_id: str) -> ChatLine | None:
    """The line as this node's copy of the room has it (followed first if needed: with a
    Redis broker, the room's recent events are read back)."""
    hub: Hub = services(request).hub
    if hub.peek(stream_id) is None:
        await hub.follow(stream_id)
    room = hub.peek(stream_id)
    found = None if room is None else room.chat_line(message_id)
    if found is None:
        return None
    return ChatLine(message_id, found.user_id, found.handle, found.text)


@router.post("/streams/{stream_id}/reports", status_code=201, response_model=ReportOut)
async def report_line(
    stream_id: str, body: ReportIn, request: Request, response: Response, user: SessionUser
) -> ReportOut:
    """Flag a chat line for the creator, their moderators and admins: 201, or 200 with the
    first report when you reported this line already. The line must be one of the room's
    recent ones (404 ``message_not_found``)."""
    await _limit(request, f"report:{user.id}", REPORTS_RATE, "reports")
    db = services(request).db
    creator_id = await run_in_threadpool(moderation_service.creator_of_stream, db, stream_id)
    line = await _line(request, stream_id, body.message_id)
    if line is None:
        raise Problem(404, Code.MESSAGE_NOT_FOUND, "no such message among the room's recent chat")

    found, made = await run_in_threadpool(
        moderation_service.report_line,
        db,
        stream_id,
        creator_id,
        line,
        user,
        body.reason,
        now_us(),
    )
    response.status_code = 201 if made else 200
    return ReportOut.of(found)


@router.get("/creators/{creator_id}/reports", response_model=ReportsOut)
async def creator_reports(
    creator_id: UserId,
    request: Request,
    user: SessionUser,
    limit: Annotated[int, Query(ge=1, le=LIST_MAX)] = 50,
) -> ReportsOut:
    """Reported lines of the creator's rooms: for the creator, their moderators, admins."""
    found = await run_in_threadpool(
        moderation_service.reports, services(request).db, creator_id, user, limit
    )
    return ReportsOut(reports=[ReportOut.of(r) for r in found])


@router.get("/admin/reports", response_model=ReportsOut, tags=["admin"])
async def all_reports(
    request: Request, _admin: AdminPrincipal, limit: Annotated[int, Query(ge=1, le=LIST_MAX)] = 50
) -> ReportsOut:
    """Reported lines of every room, newest first."""
    found = await run_in_threadpool(
        moderation_service.reports, services(request).db, None, None, limit
    )
    return ReportsOut(reports=[ReportOut.of(r) for r in found])


class ModeratesOut(BaseModel):
    creator_id: int
    moderator: bool = Field(description="the caller may delete, mute and ban in its rooms")


@router.get("/me/moderates/{creator_id}", response_model=ModeratesOut)
async def i_moderate(creator_id: UserId, request: Request, user: SessionUser) -> ModeratesOut:
    """Whether you moderate this creator's rooms (you are them, their moderator, or an admin):
    the room page shows each line's moderation actions then."""
    moderator = await run_in_threadpool(
        moderation_service.moderates, services(request).db, creator_id, user
    )
    return ModeratesOut(creator_id=creator_id, moderator=moderator)
