"""``GET /v1/trending``: the live streams trending now (docs/trending.md). Public."""

from __future__ import annotations

import re
from typing import Annotated, Final

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from giftwave.api.problems import Problem
from giftwave.api.state import services
from giftwave.errors import Code
from giftwave.live.streams import LANGUAGE_RE
from giftwave.realtime.hub import Hub
from giftwave.trending.engine import ANY
from giftwave.trending.service import Trending

router = APIRouter(prefix="/v1/trending", tags=["trending"])

COUNTRY_RE: Final = re.compile(r"[A-Z]{2}")
KINDS: Final = ("stream",)  # what trends: live streams only (docs/trending.md)


class TrendingStream(BaseModel):
    rank: int
    stream_id: str
    title: str
    creator_handle: str
    language: str
    country: str  # the creator's
    score: float  # points now, decayed (docs/trending.md)
    viewers: int | None  # when this node follows the room


def trending_of(request: Request) -> Trending:
    trending: Trending = services(request).trending
    return trending


def ranked_streams(
    trending: Trending, hub: Hub, limit: int, language: str = ANY, country: str = ANY
) -> list[TrendingStream]:
    """The trending list as the API and the home page show it."""
    out = []
    for rank, (ranked, stream) in enumerate(
        trending.top(limit, language=language, country=country), start=1
    ):
        room = hub.peek(stream.item.id)
        out.append(
            TrendingStream(
                rank=rank,
                stream_id=stream.item.id,
                title=stream.title,
                creator_handle=stream.creator_handle,
                language=stream.item.language,
                country=stream.item.country,
                score=round(ranked.score, 3),
                viewers=None if room is None else room.viewers,
            )
        )
    return out


@router.get("", response_model=list[TrendingStream])
async def trending_now(
    request: Request,
    kind: str = "stream",
    language: str = ANY,
    country: str = ANY,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[TrendingStream]:
    """Live streams by time-decayed engagement, best first; ``language`` (``es``, ``pt-BR``)
    and ``country`` (the creator's, ``MX``) narrow the list, together or alone."""
    if kind not in KINDS:
        raise Problem(422, Code.INVALID_KIND, f"kind is one of: {', '.join(KINDS)}")
    if language and not LANGUAGE_RE.fullmatch(language):
        raise Problem(422, Code.INVALID_LANGUAGE, "a language is a code like en, es or pt-BR")
    if country and not COUNTRY_RE.fullmatch(country):
        raise Problem(422, Code.INVALID_COUNTRY, "a country is a two-letter code like MX")
    return ranked_streams(trending_of(request), services(request).hub, limit, language, country)
