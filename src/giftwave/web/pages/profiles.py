"""``/@{handle}``: a person's public profile: whether they are live now (with the way into the
room), their published clips, their followers and the Follow button. Where the room's host name,
a clip's "by @…", the studio and a shared profile link lead. An unknown handle, and a blocked
account, is the site's 404 page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from giftwave.api.state import services
from giftwave.clips.library import Clip, ClipStatus, clips_of
from giftwave.identity.users import User, find_by_handle
from giftwave.live.streams import Stream, live_stream_of
from giftwave.social.follows import follower_count, is_following
from giftwave.web.pages.site import not_found, page, visitor

router = APIRouter(include_in_schema=False)

PROFILE_CLIPS: Final = 60


@dataclass(frozen=True, slots=True)
class Profile:
    person: User
    stream: Stream | None  # live now
    clips: list[Clip]  # published (ready) only, newest first
    followers: int
    followed: bool  # by the visitor


def _minutes_seconds(duration_ms: int) -> str:
    seconds = max(0, round(duration_ms / 1000))
    return f"{seconds // 60}:{seconds % 60:02d}"


@router.get("/@{handle}", response_class=HTMLResponse)
async def profile_page(handle: str, request: Request) -> Response:
    who = await visitor(request)
    db = services(request).db
    looking = who.user

    def load() -> Profile | None:
        with db.connect() as conn:
            person = find_by_handle(conn, handle)
            if person is None or person.blocked:
                return None
            # Others see only what is published; a clip being made is the studio's business.
            shown = clips_of(conn, person.id, PROFILE_CLIPS, status=ClipStatus.READY)
            followed = looking is not None and is_following(conn, looking.id, person.id)
            return Profile(
                person,
                live_stream_of(conn, person.id),
                shown,
                follower_count(conn, person.id),
                followed,
            )

    found = await run_in_threadpool(load)
    if found is None:
        return not_found(request, who, "profile")
    return page(
        request,
        who,
        "profile.html",
        profile=found,
        creator=found.person,  # _follow.html's followee
        following_creator=found.followed,
        durations={c.id: _minutes_seconds(c.duration_ms) for c in found.clips},
    )
