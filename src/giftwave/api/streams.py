"""Streams: go live, the live list, one stream, its end; gifts sent to them (a hot route,
answered by ``Giftwave.__call__`` before the router); a stream's goal."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Final, Literal

import msgspec
import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from giftwave.api.auth import (
    GiftingUser,
    MaybePrincipal,
    StreamingUser,
    acting_user,
    economy_of,
    principal,
)
from giftwave.api.problems import sane_path_param
from giftwave.api.state import services
from giftwave.economy.gifting import IDEMPOTENCY_KEY_RE, GiftSent, SendGift
from giftwave.economy.services import Economy
from giftwave.economy.spending_reminders import Reminder
from giftwave.identity.sessions import Scope
from giftwave.identity.users import User
from giftwave.live import stream_service
from giftwave.live.events import GoalCleared, StreamEnded
from giftwave.live.goals import GoalKind
from giftwave.live.streams import Stream

router = APIRouter(prefix="/v1/streams", tags=["streams"])
GIFT_BODY_MAX_BYTES: Final = 4096  # smaller than the default body limit (api/body_limit.py)
Econ = Annotated[Economy, Depends(economy_of)]


class StreamOut(BaseModel):
    id: str
    creator_id: int
    title: str
    language: str
    playback_url: str | None
    status: str
    started_at_us: int
    ended_at_us: int | None

    @classmethod
    def of(cls, s: Stream) -> StreamOut:
        # The fields are the domain object's own, by name (the status as its string value).
        return cls.model_validate(s, from_attributes=True)


class StartStream(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=140)
    language: str = Field(default="en", max_length=8)
    playback_url: str | None = Field(default=None, max_length=1024)


@router.post("", status_code=201, response_model=StreamOut)
async def go_live(
    body: StartStream, economy: Econ, user: StreamingUser, request: Request
) -> StreamOut:
    started = await run_in_threadpool(
        partial(
            stream_service.go_live,
            economy.db,
            user,
            title=body.title,
            language=body.language,
            playback_url=body.playback_url,
            notices=services(request).notifications,
        )
    )
    return StreamOut.of(started)


class LiveStreamOut(StreamOut):
    creator_handle: str = Field(description="who is live: what viewers and other creators know")


@router.get("", response_model=list[LiveStreamOut])
async def live_now(economy: Econ) -> list[LiveStreamOut]:
    """The live streams, newest first, each with its creator's handle."""
    return [
        LiveStreamOut(**StreamOut.of(s).model_dump(), creator_handle=handle)
        for s, handle in await run_in_threadpool(stream_service.live_now, economy.db)
    ]


@router.get("/{stream_id}", response_model=StreamOut)
async def stream(stream_id: str, economy: Econ) -> StreamOut:
    return StreamOut.of(await run_in_threadpool(stream_service.stream, economy.db, stream_id))


@router.post("/{stream_id}/end", response_model=StreamOut)
async def end(
    stream_id: str, request: Request, economy: Econ, user: StreamingUser, who: MaybePrincipal
) -> StreamOut:
    admin = who is not None and who.is_admin
    ended = await run_in_threadpool(
        partial(stream_service.end, economy.db, stream_id, user, admin=admin)
    )
    economy.gifting.forget_stream(stream_id)
    await services(request).broker.publish(stream_id, StreamEnded())
    await services(request).referee.stream_ended(stream_id)  # and its battle, if any
    return StreamOut.of(ended)


class SendGiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gift_id: str = Field(min_length=1, max_length=32)
    count: int = Field(default=1, ge=1, le=10_000)
    idempotency_key: str = Field(
        min_length=1, max_length=64, pattern=f"^{IDEMPOTENCY_KEY_RE.pattern}$"
    )
    # A paid highlighted message (docs/economy.md); its rules are chat's (live.chat_rules),
    # checked by the economy with a stable code, so no length here.
    message: str | None = None


class ReminderOut(BaseModel):
    """A gentle reminder this gift made due: the socket's ``spending_reminder`` event, field
    for field (docs/economy.md, "Responsible spending")."""

    type: Literal["spending_reminder"] = "spending_reminder"
    reason: Literal["gifting_time", "above_average"]
    minutes: int  # of continuous gifting (gifting_time)
    month_coins: int  # this month's gifts (above_average)
    average_month_coins: int


class GiftSentOut(BaseModel):
    """The receipt of a gift: the same fields over REST and as a socket's ``send_gift`` ack;
    ``reminder`` only in the answer of a gift that made one due."""

    send_id: str
    stream_id: str
    creator_id: int
    sender_id: int
    gift_id: str
    gift_version: int
    count: int
    coins: int
    diamonds: int
    balance_coins: int
    created_at_us: int
    reminder: ReminderOut | None = None  # left out of the JSON when None

    @classmethod
    def of(cls, g: GiftSent, reminder: Reminder | None = None) -> GiftSentOut:
        # The fields are the domain object's own, by name: no copy to keep in step.
        out = cls.model_validate(g, from_attributes=True)
        if reminder is not None:
            out.reminder = ReminderOut.model_validate(reminder, from_attributes=True)
        return out


def receipt(sent: GiftSent, reminder: Reminder | None) -> dict[str, object]:
    """A gift's receipt as ``GiftSentOut`` answers it (field for field, in its order, no
    ``reminder`` when there is none: tests/unit/test_gift_receipt.py holds them equal), built
    without validating what the economy built: the REST answer and the socket's ack."""
    answer = sent.as_dict()
    if reminder is not None:
        answer["reminder"] = reminder.as_dict()
    return answer


GIFTS_PREFIX: Final = "/v1/streams/"
GIFTS_SUFFIX: Final = "/gifts"


def gift_path(path: str) -> str | None:
    """The stream of a ``/v1/streams/{stream_id}/gifts`` path, as the router would match it
    (one segment, not empty, no control character); None for any other path."""
    if not (path.startswith(GIFTS_PREFIX) and path.endswith(GIFTS_SUFFIX)):
        return None
    stream_id = path[len(GIFTS_PREFIX) : -len(GIFTS_SUFFIX)]
    if not stream_id or "/" in stream_id or not sane_path_param(stream_id):
        return None
    return stream_id


def _is_json(content_type: str) -> bool:
    mime = content_type.partition(";")[0].strip().lower()
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


async def send_gift_by_hand(request: Request) -> Response:
    """The gift route, the hottest by far, answered by hand (``Giftwave.__call__``).

    FastAPI documents it from ``send_gift``'s signature like any route, and the same
    ``send_gift`` serves it; what this skips is the framework's routing, middleware and
    generic per-request machinery (dependency solving, body validation through the dependant,
    response serialization through ``jsonable_encoder``): most of a gift's cost on the event
    loop, measured (docs/benchmarks.md). Errors are raised as the generic path raises them,
    and the app's own handlers answer them."""
    user = acting_user(await principal(request), Scope.GIFTS_SEND)
    raw = await request.body()  # at most GIFT_BODY_MAX_BYTES (api/body_limit.py)
    try:
        # As FastAPI reads a body: JSON only when it says it is JSON.
        if raw and _is_json(request.headers.get("content-type", "")):
            body = SendGiftIn.model_validate_json(raw)
        else:
            body = SendGiftIn.model_validate(raw or None)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None
    economy = services(request).economy
    sent, reminder = await _send_gift(request.path_params["stream_id"], body, economy, user)
    return Response(orjson.dumps(receipt(sent, reminder)), 201, media_type="application/json")


async def send_gift(
    stream_id: str, body: SendGiftIn, economy: Econ, user: GiftingUser
) -> GiftSentOut:
    """Send a gift: charged once per idempotency key, answered after the ledger committed."""
    return GiftSentOut.of(*await _send_gift(stream_id, body, economy, user))


async def _send_gift(
    stream_id: str, body: SendGiftIn, economy: Economy, user: User
) -> tuple[GiftSent, Reminder | None]:
    sent = await economy.gifting.send(
        SendGift(
            sender=user,
            stream_id=stream_id,
            gift_id=body.gift_id,
            count=body.count,
            idempotency_key=body.idempotency_key,
            message=body.message,
        )
    )
    # Counted for the viewer's gentle reminders as a socket's gift is (once: not a retry's).
    return sent, await economy.reminders.after_gift(sent)


# For the documentation and the route table (a wrong method is a 405): ``Giftwave.__call__``
# answers every POST to this path by hand before the router sees it.
router.add_api_route(
    "/{stream_id}/gifts",
    send_gift,
    methods=["POST"],
    status_code=201,
    response_model=GiftSentOut,
    response_model_exclude_none=True,
)


class GoalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: GoalKind
    target: int = Field(ge=1, le=10**12)
    title: str = Field(min_length=1, max_length=80)
    gift_id: str | None = Field(default=None, min_length=1, max_length=32)


class GoalOut(BaseModel):
    goal_id: int
    kind: GoalKind
    gift_id: str | None
    target: int
    title: str
    created_at_us: int


@router.put("/{stream_id}/goal", response_model=GoalOut)
async def set_stream_goal(
    stream_id: str, body: GoalIn, request: Request, economy: Econ, user: StreamingUser
) -> GoalOut:
    """Set the stream's goal (replacing any other); viewers see its progress live."""
    if body.gift_id is not None:
        economy.catalog.get(body.gift_id)  # 404 for a gift that does not exist

    goal = await run_in_threadpool(
        partial(
            stream_service.set_stream_goal,
            economy.db,
            stream_id,
            user,
            kind=body.kind,
            target=body.target,
            title=body.title,
            gift_id=body.gift_id,
        )
    )
    news = goal.set_event()
    await services(request).broker.publish(stream_id, news)
    return GoalOut(**msgspec.structs.asdict(news))


@router.delete("/{stream_id}/goal", status_code=204)
async def clear_stream_goal(
    stream_id: str, request: Request, economy: Econ, user: StreamingUser
) -> None:
    await run_in_threadpool(stream_service.clear_stream_goal, economy.db, stream_id, user)
    await services(request).broker.publish(stream_id, GoalCleared())
