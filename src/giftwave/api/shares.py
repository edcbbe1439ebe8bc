"""Share links (``POST /v1/shares``), their QR codes, a user's reach and a stream's sharers.
The short address ``/s/{code}`` itself, which records the visit and lands on the content, is a
page: web/pages/share_link.py."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Annotated, Final

import segno
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from giftwave.api.auth import SessionUser
from giftwave.api.problems import Problem
from giftwave.api.state import public_base, services
from giftwave.clock import now_us
from giftwave.errors import Code
from giftwave.sharing.attribution import MAX_SHARERS, Badge, Credits
from giftwave.sharing.links import (
    Channel,
    ShareCount,
    ShareLink,
    TargetKind,
)
from giftwave.sharing.service import Sharing
from giftwave.trending.engine import Signal, user_actor
from giftwave.trending.service import Trending

router = APIRouter(tags=["sharing"])

SHARE_COOKIE: Final = "gw_share"  # the link that brought a visitor (web/pages/share_link.py)


async def sharing_of(request: Request) -> Sharing:
    sharing: Sharing = services(request).sharing
    return sharing


Shares = Annotated[Sharing, Depends(sharing_of)]


def share_cookie(connection: HTTPConnection) -> str | None:
    """The visitor's share cookie, for the hooks at sign-up and room join."""
    return connection.cookies.get(SHARE_COOKIE)


class NewShare(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target_kind: str = Field(max_length=16, description="stream, profile, clip")
    target_id: str = Field(
        min_length=1, max_length=32, description="a stream id, a user id or a clip id"
    )
    channel: str = Field(
        max_length=16, description=", ".join(c.value for c in Channel) + " (in_app: to a user)"
    )


class ShareOut(BaseModel):
    code: str
    url: str
    qr_svg_url: str
    target_kind: TargetKind
    target_id: str
    channel: Channel
    created_at: datetime
    shares: int = Field(description="the target's share links, this one included (its figure)")
    sharers_last_hour: int = Field(description="people who shared the target in the last hour")

    @classmethod
    def of(cls, link: ShareLink, base: str, counts: ShareCount) -> ShareOut:
        return cls(
            code=link.code,
            url=f"{base}/s/{link.code}",
            qr_svg_url=f"{base}/v1/shares/{link.code}/qr.svg",
            target_kind=link.target_kind,
            target_id=link.target_id,
            channel=link.channel,
            created_at=datetime.fromtimestamp(link.created_at_us / 1e6, tz=UTC),
            shares=counts.links,
            sharers_last_hour=counts.recent_sharers,
        )


def _choice(allowed: list[str], value: str, code: Code) -> str:
    if value not in allowed:
        raise Problem(422, code, f"{value!r} is not one of {', '.join(allowed)}")
    return value


@router.post("/v1/shares", status_code=201, response_model=ShareOut)
async def create_share(
    body: NewShare, request: Request, response: Response, sharing: Shares, user: SessionUser
) -> ShareOut:
    """A short link for the caller to share; the same target and channel again answer the
    same link (200) and count as sharing it again now. Limited per user (429). The answer
    carries the target's share figures after this share, so the page shows them at once."""
    kind = TargetKind(_choice(list(TargetKind), body.target_kind, Code.INVALID_TARGET_KIND))
    channel = Channel(_choice(list(Channel), body.channel, Code.INVALID_CHANNEL))
    await sharing.limiter.take(user.id)
    link, made = await run_in_threadpool(sharing.create, user.id, kind, body.target_id, channel)
    counts = await run_in_threadpool(sharing.counts, kind, link.target_id, now_us())
    if kind is TargetKind.STREAM:  # a share is engagement: it lifts the stream in trending
        trending: Trending = services(request).trending
        await trending.record(Signal.SHARE, body.target_id, user_actor(user.id))
    response.status_code = 201 if made else 200
    return ShareOut.of(link, public_base(request), counts)


class ShareInfoOut(BaseModel):
    code: str
    sharer_id: int
    sharer_handle: str
    target_kind: TargetKind
    target_id: str


@router.get("/v1/shares/{code}", response_model=ShareInfoOut)
async def share_info(code: str, sharing: Shares) -> ShareInfoOut:
    """Who shared what, for the page the link lands on ("shared by @…")."""
    found = await run_in_threadpool(sharing.credit, code, now_us())
    if found is None:
        raise Problem(404, Code.SHARE_NOT_FOUND, "this share link is unknown or has expired")
    link, handle = found
    return ShareInfoOut(
        code=link.code,
        sharer_id=link.sharer_id,
        sharer_handle=handle,
        target_kind=link.target_kind,
        target_id=link.target_id,
    )


@router.get("/v1/shares/{code}/qr.svg", response_class=Response)
async def share_qr(code: str, request: Request, sharing: Shares) -> Response:
    """The link as a QR code (SVG), drawn here: no outside service sees it."""
    link = await run_in_threadpool(sharing.live_link, code, now_us())
    if link is None:
        raise Problem(404, Code.SHARE_NOT_FOUND, "this share link is unknown or has expired")
    url = f"{public_base(request)}/s/{link.code}"

    def draw() -> bytes:
        out = io.BytesIO()
        segno.make(url, error="m").save(
            out, kind="svg", scale=6, border=2, dark="#111", light="#fff", xmldecl=False
        )
        return out.getvalue()

    svg = await run_in_threadpool(draw)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "max-age=3600"})


class CreditsOut(BaseModel):
    signups: int
    joins: int
    gifters: int
    coins: int

    @classmethod
    def of(cls, credits: Credits) -> CreditsOut:
        return cls.model_validate(credits, from_attributes=True)


class BadgeOut(BaseModel):
    id: str
    threshold: int = Field(description="unique visitors brought in")


class ReachOut(BaseModel):
    links: int
    visits: int
    unique_visitors: int = Field(description="distinct visitors per day (the salt is daily)")
    first_touch: CreditsOut
    last_touch: CreditsOut
    badges: list[BadgeOut]
    next_badge: BadgeOut | None
    attribution_days: int


def _badge(badge: Badge) -> BadgeOut:
    return BadgeOut(id=badge.id, threshold=badge.threshold)


async def reach(sharing: Sharing, user_id: int) -> ReachOut:
    r = await run_in_threadpool(sharing.reach, user_id)
    return ReachOut(
        links=r.links,
        visits=r.visits,
        unique_visitors=r.unique_visitors,
        first_touch=CreditsOut.of(r.first_touch),
        last_touch=CreditsOut.of(r.last_touch),
        badges=[_badge(b) for b in r.badges],
        next_badge=None if r.next_badge is None else _badge(r.next_badge),
        attribution_days=sharing.window_us // (86_400 * 1_000_000),
    )


@router.get("/v1/me/reach", response_model=ReachOut)
async def my_reach(sharing: Shares, user: SessionUser) -> ReachOut:
    """What the caller's share links did: visits, visitors, and what those people did next
    (first and last touch), with the sharer badges earned and the next one."""
    return await reach(sharing, user.id)


class SharerOut(BaseModel):
    rank: int
    user_id: int
    handle: str
    visits: int
    unique_visitors: int
    signups: int
    gifters: int
    coins: int = Field(description="gifted to this stream by the people they brought (last touch)")


class StreamSharesOut(BaseModel):
    stream_id: str
    shares: int = Field(description="share links made for the stream (one per sharer and channel)")
    sharers_last_hour: int
    top: list[SharerOut]


@router.get("/v1/streams/{stream_id}/sharers", response_model=StreamSharesOut)
async def sharers_of_stream(
    stream_id: str,
    sharing: Shares,
    limit: Annotated[int, Query(ge=1, le=MAX_SHARERS)] = 10,
) -> StreamSharesOut:
    """A stream's top sharers (for the creator's studio, beside the top gifters) and its
    share counts: the coins the people they brought gifted to it, then visitors."""
    count, top = await run_in_threadpool(sharing.stream_sharers, stream_id, limit, now_us())
    return StreamSharesOut(
        stream_id=stream_id,
        shares=count.links,
        sharers_last_hour=count.recent_sharers,
        top=[
            SharerOut(
                rank=i,
                user_id=s.user_id,
                handle=s.handle,
                visits=s.visits,
                unique_visitors=s.unique_visitors,
                signups=s.signups,
                gifters=s.gifters,
                coins=s.coins,
            )
            for i, s in enumerate(top, start=1)
        ],
    )
