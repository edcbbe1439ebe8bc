"""``/clips/{id}``: a clip's page (the player on the range-served file, reactions, repost,
share, download); ``/studio/clips``: a creator's clips (upload, downloads on or off, counts)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from giftwave.api.clips import clip_out
from giftwave.api.state import services
from giftwave.clips import clip_service
from giftwave.clips.library import MAX_LIST, REACTIONS
from giftwave.clips.service import Clips
from giftwave.clock import now_us
from giftwave.errors import NotFound
from giftwave.identity.users import Role
from giftwave.web.pages.site import not_found, page, to_login, visitor

router = APIRouter(include_in_schema=False)


@router.get("/clips/{clip_id}", response_class=HTMLResponse)
async def clip_page(clip_id: str, request: Request, via: str = "") -> Response:
    who = await visitor(request)
    clips: Clips = services(request).clips
    try:
        view = await run_in_threadpool(clip_service.find, clips.db, clip_id, who.user)
    except NotFound:
        return not_found(request, who, "clip")
    clip = clip_out(view, who.user)
    shared_by = None
    if via:
        credit = await run_in_threadpool(services(request).sharing.credit, via, now_us())
        if credit is not None and credit[0].target_id == clip.id:
            shared_by = credit[1]
    return page(
        request,
        who,
        "clip.html",
        clip=clip,
        reactions=REACTIONS,
        shared_by=shared_by,
        boot={"clip": clip.model_dump(mode="json"), "reactions": REACTIONS},
    )


@router.get("/studio/clips", response_class=HTMLResponse)
async def studio_clips_page(request: Request) -> Response:
    who = await visitor(request)
    if who.user is None:
        return to_login("/studio/clips")
    if who.user.role is not Role.CREATOR:
        return page(request, who, "studio_clips.html", status=403, clips=[], not_creator=True)
    clips: Clips = services(request).clips
    user = who.user
    views = await run_in_threadpool(clip_service.clips_by, clips.db, user, MAX_LIST)
    mine = [clip_out(v, user) for v in views]
    return page(
        request,
        who,
        "studio_clips.html",
        clips=mine,
        max_mb=clips.max_bytes // (1024 * 1024),
        max_s=clips.max_duration_ms // 1000,
        ffmpeg_ready=clips.tools is not None,
    )
