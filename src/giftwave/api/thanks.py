"""Thanks (live/thanks.py, docs/community.md "Thanks"): after a stream, its creator thanks its
top supporters once.

    GET    /v1/streams/{id}/supporters   the ended stream's top supporters and its thank-you
                                         (its creator only)
    POST   /v1/streams/{id}/thanks       send it: one message, to every supporter shown or to
                                         chosen ones; once per stream (a retry answers 200)
    DELETE /v1/streams/{id}/thanks       take it down: the creator, their moderators, admins

A thank-you sent while the creator's next stream is live reaches that room at once
(``thanks_shown``); a room opened later reads it from the database (its snapshot's ``thanks``).
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import SessionUser
from giftwave.api.live import MODERATION_RATE, moderation_rate_key
from giftwave.api.state import services
from giftwave.errors import Code, RateLimited
from giftwave.live import thanks_service
from giftwave.live.chat_rules import CHAT_MAX_CHARS
from giftwave.live.events import ThanksHidden, ThanksPosted
from giftwave.live.thanks import SUPPORTERS_MAX, THANKS_RATE, Supporter, Thanks
from giftwave.live.thanks_service import Evening

router = APIRouter(prefix="/v1/streams", tags=["thanks"])

RECIPIENT_IDS_MAX = 100  # the body's bound; past SUPPORTERS_MAX the domain says why


class SupporterOut(BaseModel):
    rank: int
    user_id: int
    handle: str
    coins: int = Field(description="committed, unreversed coins gifted in this stream")
    level: int | None = Field(description="the gifter level badge (null: none or hidden)")

    @classmethod
    def of(cls, s: Supporter) -> SupporterOut:
        return cls.model_validate(s, from_attributes=True)


class RecipientOut(BaseModel):
    user_id: int
    handle: str


class ThanksOut(BaseModel):
    stream_id: str
    stream_title: str
    message: str
    to_all: bool = Field(description="sent to every supporter shown (not to chosen ones)")
    recipients: list[RecipientOut] = Field(description="in the stream's ranking, best first")
    created_at_us: int
    hidden: bool = Field(description="taken down by the creator or a moderator")

    @classmethod
    def of(cls, t: Thanks) -> ThanksOut:
        return cls(
            stream_id=t.stream_id,
            stream_title=t.stream_title,
            message=t.message,
            to_all=t.to_all,
            recipients=[RecipientOut(user_id=r.user_id, handle=r.handle) for r in t.recipients],
            created_at_us=t.created_at_us,
            hidden=t.hidden,
        )


class SupportersOut(BaseModel):
    stream_id: str
    title: str
    ended_at_us: int | None
    supporters: list[SupporterOut] = Field(description=f"the top {SUPPORTERS_MAX}, best first")
    thanks: ThanksOut | None = Field(description="the thank-you sent, if any")

    @classmethod
    def of(cls, e: Evening) -> SupportersOut:
        return cls(
            stream_id=e.stream.id,
            title=e.stream.title,
            ended_at_us=e.stream.ended_at_us,
            supporters=[SupporterOut.of(s) for s in e.supporters],
            thanks=None if e.thanks is None else ThanksOut.of(e.thanks),
        )


class ThanksIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Chat's rules (live.chat_rules), checked by the domain with a stable code: no length here.
    message: str = Field(description=f"1..{CHAT_MAX_CHARS} characters, no control characters")
    recipient_ids: list[int] | None = Field(
        default=None,
        max_length=RECIPIENT_IDS_MAX,
        description=f"some of the supporters shown (at most {SUPPORTERS_MAX}); null: all of them",
    )


@router.get("/{stream_id}/supporters", response_model=SupportersOut)
async def supporters(stream_id: str, request: Request, user: SessionUser) -> SupportersOut:
    """The ended stream's top supporters (coins from the ledger's committed gifts, as its room
    ranked them) and its thank-you: for its creator only."""
    parts = services(request)
    found = await run_in_threadpool(
        thanks_service.evening, parts.db, user, stream_id, parts.levels.curve
    )
    return SupportersOut.of(found)


@router.post(
    "/{stream_id}/thanks",
    status_code=201,
    response_model=ThanksOut,
    responses={200: {"model": ThanksOut, "description": "the same request again"}},
)
async def send_thanks(
    stream_id: str, body: ThanksIn, request: Request, response: Response, user: SessionUser
) -> ThanksOut:
    """Thank the ended stream's top supporters, once: the same request again answers 200 with
    the stored thank-you, another one 409 ``thanks_already_sent``."""
    parts = services(request)
    wait_s = await parts.rate_limiter.hit(f"thanks:{user.id}", THANKS_RATE)
    if wait_s:
        raise RateLimited(
            Code.THANKS_RATE_LIMITED, "too many thank-yous too fast", retry_after_s=wait_s
        )
    sent = await run_in_threadpool(
        partial(
            thanks_service.send,
            parts.db,
            user,
            stream_id,
            body.message,
            body.recipient_ids,
            observers=(parts.webhooks.thanks_sent,),  # thanks.sent, in the same transaction
        )
    )
    if sent.new:
        parts.webhooks.wake()
    else:
        response.status_code = 200
    if sent.live_next is not None and not sent.thanks.hidden:
        shown = sent.thanks.news_fields()
        await parts.broker.publish(
            sent.live_next,
            ThanksPosted(
                stream_id=shown.stream_id,
                title=shown.title,
                text=shown.text,
                recipients=shown.recipients,
                at_us=shown.at_us,
            ),
        )
    return ThanksOut.of(sent.thanks)


@router.delete("/{stream_id}/thanks", status_code=204)
async def hide_thanks(stream_id: str, request: Request, user: SessionUser) -> Response:
    """Take the thank-you down (profiles and the next room): the creator, their moderators or
    an admin. Again: 204 all the same. Limited with the other moderation commands."""
    parts = services(request)
    wait_s = await parts.rate_limiter.hit(moderation_rate_key(user.id), MODERATION_RATE)
    if wait_s:
        raise RateLimited(
            Code.RATE_LIMITED, "too many moderation commands; slow down", retry_after_s=wait_s
        )
    live_next = await run_in_threadpool(thanks_service.hide, parts.db, stream_id, user)
    if live_next is not None:
        await parts.broker.publish(live_next, ThanksHidden(stream_id=stream_id))
    return Response(status_code=204)
