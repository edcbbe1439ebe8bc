"""Clips API: upload (multipart, read as it arrives) or cut from a recording, the video with
range requests, watermarked downloads as background jobs, per-clip download switch and counts,
reposts (a user's public "shared" collection) and emoji reactions. docs/clips.md."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.types import Receive, Scope, Send

from giftwave.api.auth import MaybePrincipal, SessionUser, StreamingUser
from giftwave.api.clip_upload import BadForm, UploadTooLarge, receive_upload
from giftwave.api.problems import PROBLEM_JSON, Problem, problem_response
from giftwave.api.state import services
from giftwave.clips import clip_service
from giftwave.clips.clip_service import ClipView
from giftwave.clips.jobs import Job, JobStatus
from giftwave.clips.library import MAX_LIST, ClipStatus
from giftwave.clips.service import Clips
from giftwave.clips.storage import ObjectMissing, StoreError
from giftwave.clock import now_us
from giftwave.errors import Code
from giftwave.identity.users import User

router = APIRouter(tags=["clips"])

RANGE_RE: Final = re.compile(r"bytes=(\d*)-(\d*)")
MAX_CUT_BODY_BYTES: Final = 8 * 1024
# An upload's body limit is its file's and a form's (clip_upload.upload_body_max_bytes); a cut
# on the same path, JSON, is held to MAX_CUT_BODY_BYTES here.
UPLOAD_PATH: Final = "/v1/clips"


async def clips_of_app(request: Request) -> Clips:
    clips: Clips = services(request).clips
    return clips


ClipsDep = Annotated[Clips, Depends(clips_of_app)]


def _time(at_us: int) -> datetime:
    return datetime.fromtimestamp(at_us / 1e6, tz=UTC)


class ClipOut(BaseModel):
    id: str
    title: str
    status: ClipStatus
    creator_id: int
    creator_handle: str
    content_type: str
    size_bytes: int
    duration_s: float
    width: int
    height: int
    video_url: str | None = Field(description="the video, with range requests; when ready")
    page_url: str
    downloads_enabled: bool
    download_count: int | None = Field(description="downloads served: for the creator only")
    reactions: dict[str, int] = Field(description="count per reaction name (all of them)")
    my_reactions: list[str]
    reposts: int
    reposted: bool = Field(description="whether the caller reposted it")
    error: str | None = Field(description="why a cut failed, for the creator")
    job_id: str | None = Field(default=None, description="the cut's job (a new cut only)")
    created_at: datetime


def clip_out(view: ClipView, viewer: User | None, job_id: str | None = None) -> ClipOut:
    clip = view.clip
    mine = viewer is not None and viewer.id == clip.creator_id
    return ClipOut(
        id=clip.id,
        title=clip.title,
        status=clip.status,
        creator_id=clip.creator_id,
        creator_handle=clip.creator_handle,
        content_type=clip.content_type,
        size_bytes=clip.size_bytes,
        duration_s=clip.duration_ms / 1000,
        width=clip.width,
        height=clip.height,
        video_url=f"/v1/clips/{clip.id}/video" if clip.status is ClipStatus.READY else None,
        page_url=f"/clips/{clip.id}",
        downloads_enabled=clip.downloads_enabled,
        download_count=clip.download_count if mine else None,
        reactions=view.reactions,
        my_reactions=view.my_reactions,
        reposts=view.reposts,
        reposted=view.reposted,
        error=clip.error if mine else None,
        job_id=job_id,
        created_at=_time(clip.created_at_us),
    )


class NewCut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=140)
    recording_url: str = Field(
        min_length=8, max_length=2048, description="http(s) URL of an MP4 or HLS recording"
    )
    start_s: float = Field(ge=0, le=86_400)
    end_s: float = Field(gt=0, le=86_400)


_UPLOAD_BODY: Final = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["title", "file"],
                    "properties": {
                        "title": {"type": "string", "minLength": 1, "maxLength": 140},
                        "file": {"type": "string", "format": "binary"},
                    },
                }
            },
            "application/json": {"schema": NewCut.model_json_schema()},
        },
    }
}


@router.post(
    UPLOAD_PATH,
    status_code=201,
    response_model=ClipOut,
    openapi_extra=_UPLOAD_BODY,
    responses={202: {"model": ClipOut, "description": "a cut, made by a background job"}},
)
async def create_clip(
    request: Request, response: Response, clips: ClipsDep, user: StreamingUser
) -> ClipOut:
    """A clip by the calling creator: an upload (multipart: ``title``, ``file``, MP4 or WebM
    within the size and length limits), or ``{title, recording_url, start_s, end_s}`` (JSON)
    to cut from a stream recording in the background (202; follow ``job_id``)."""
    clips.require_poster(user)  # before a file is received
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        response.status_code = 202
        return await _cut(request, clips, user)
    if kind != "multipart/form-data":
        raise Problem(415, Code.UNSUPPORTED_MEDIA_TYPE, "send multipart/form-data or JSON")
    clips.require_tools()
    dest = clips.temp_path(f"up_{secrets.token_hex(8)}", ".part")
    try:
        try:
            form = await receive_upload(request, dest, clips.max_bytes)
        except UploadTooLarge:
            raise Problem(
                413,
                Code.CLIP_TOO_LARGE,
                f"a clip file is at most {clips.max_bytes} bytes",
                max_bytes=clips.max_bytes,
            ) from None
        except BadForm as exc:
            raise Problem(422, Code.INVALID_UPLOAD, str(exc)) from None
        title = clip_service.title_of(form.fields.get("title"))
        clip = await clips.upload(user, title, dest)
    finally:
        dest.unlink(missing_ok=True)
    return clip_out(await run_in_threadpool(clip_service.view, clips.db, clip, user), user)


async def _cut(request: Request, clips: Clips, user: User) -> ClipOut:
    raw = bytearray()
    async for chunk in request.stream():  # bounded: a cut is a few fields
        raw += chunk
        if len(raw) > MAX_CUT_BODY_BYTES:
            raise Problem(413, Code.PAYLOAD_TOO_LARGE, f"at most {MAX_CUT_BODY_BYTES} bytes")
    try:
        body = NewCut.model_validate_json(bytes(raw))
    except ValidationError as exc:
        raise Problem(
            422,
            Code.INVALID_REQUEST,
            "the request does not match the schema",
            errors=[{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()],
        ) from None
    clip, job = await run_in_threadpool(
        clips.request_cut,
        user,
        clip_service.title_of(body.title),
        body.recording_url,
        body.start_s,
        body.end_s,
    )
    clips.offer(job)
    view = await run_in_threadpool(clip_service.view, clips.db, clip, user)
    return clip_out(view, user, job.id)


def _viewer(who: Any) -> User | None:
    return None if who is None else who.user


@router.get("/v1/clips/{clip_id}", response_model=ClipOut)
async def get_clip(clip_id: str, clips: ClipsDep, who: MaybePrincipal) -> ClipOut:
    """A clip with its reactions and reposts (the creator also sees its download count)."""
    viewer = _viewer(who)
    return clip_out(await run_in_threadpool(clip_service.find, clips.db, clip_id, viewer), viewer)


class ClipPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    downloads_enabled: bool | None = None
    title: str | None = Field(default=None, min_length=1, max_length=140)


@router.patch("/v1/clips/{clip_id}", response_model=ClipOut)
async def patch_clip(clip_id: str, body: ClipPatch, clips: ClipsDep, user: SessionUser) -> ClipOut:
    """The creator turns downloads on or off (off: 403 ``downloads_disabled`` to everyone
    asking for one, finished files included), or renames the clip."""
    view = await run_in_threadpool(
        partial(
            clip_service.change,
            clips.db,
            clip_id,
            user,
            downloads_enabled=body.downloads_enabled,
            title=body.title,
        )
    )
    return clip_out(view, user)


@router.delete("/v1/clips/{clip_id}", status_code=204, response_class=Response)
async def delete_clip_route(clip_id: str, clips: ClipsDep, user: SessionUser) -> Response:
    """The creator deletes a clip: its files, downloads, reposts and reactions."""
    await run_in_threadpool(clip_service.delete, clips, clip_id, user)
    return Response(status_code=204)


@router.get("/v1/me/clips", response_model=list[ClipOut])
async def my_clips(
    clips: ClipsDep,
    user: SessionUser,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = MAX_LIST,
) -> list[ClipOut]:
    """The caller's clips, newest first, with their download counts (for the studio)."""
    views = await run_in_threadpool(clip_service.clips_by, clips.db, user, limit)
    return [clip_out(v, user) for v in views]


# --- serving files with range requests ----------------------------------------------------


def byte_range(header: str | None, size: int) -> tuple[int, int] | Literal[False] | None:
    """(start, end) of a single ``Range: bytes=`` header; None: serve it all (no header, or
    one we do not honour, such as several ranges); False: unsatisfiable (416)."""
    if header is None:
        return None
    found = RANGE_RE.fullmatch(header.strip())
    if found is None:
        return None
    first, last = found.groups()
    if first == "" and last == "":
        return None
    if first == "":  # the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return False
        return max(0, size - n), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # not a valid range: ignored (RFC 9110 14.2)
    if start >= size:
        return False
    end = int(last) if last else size - 1
    return start, min(end, size - 1)


class _FileRange(FileResponse):
    """Starlette's FileResponse (ranges, If-Range, ETag, Last-Modified), shown only the range
    ``byte_range`` honours: none where giftwave serves the whole file (a malformed or
    multiple range, which Starlette would answer 400 or multipart)."""

    def __init__(self, path: Path, wanted: tuple[int, int] | None, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.wanted = wanted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k != b"range"]
        if self.wanted is not None:
            headers.append((b"range", "bytes={}-{}".format(*self.wanted).encode()))
        await super().__call__({**scope, "headers": headers}, receive, send)


async def serve_file(
    request: Request,
    clips: Clips,
    key: str,
    content_type: str,
    *,
    headers: dict[str, str] | None = None,
) -> Response:
    """The object at ``key``: 206 with Content-Range for a satisfiable single range, 416 for
    an unsatisfiable one, else 200 with all of it. A local file is Starlette's FileResponse;
    a remote one (S3) is streamed from the store in chunks."""
    path = clips.store.local_path(key)
    try:
        if path is None:
            size, stat = await run_in_threadpool(clips.store.size, key), None
        else:
            stat = await run_in_threadpool(os.stat, path)
            size = stat.st_size
    except (ObjectMissing, FileNotFoundError):
        raise Problem(404, Code.VIDEO_MISSING, "the file is missing from the clip store") from None
    except StoreError:
        raise Problem(
            503, Code.CLIP_STORE_UNAVAILABLE, "the clip store cannot be reached"
        ) from None
    common = {"Accept-Ranges": "bytes", **(headers or {})}
    wanted = byte_range(request.headers.get("range"), size)
    if wanted is False:
        return problem_response(
            416,
            Code.RANGE_NOT_SATISFIABLE,
            f"the file has {size} bytes",
            headers={"Content-Range": f"bytes */{size}", **common},
        )
    if path is not None:
        return _FileRange(path, wanted, headers=common, media_type=content_type, stat_result=stat)
    start, end, status = (0, size - 1, 200) if wanted is None else (*wanted, 206)
    if size == 0:
        return Response(b"", status_code=200, media_type=content_type, headers=common)
    if status == 206:
        common["Content-Range"] = f"bytes {start}-{end}/{size}"
    common["Content-Length"] = str(end - start + 1)
    chunks: Iterator[bytes] = clips.store.read(key, start, end)
    return StreamingResponse(
        iterate_in_threadpool(chunks), status_code=status, media_type=content_type, headers=common
    )


_VIDEO_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {"content": {"video/mp4": {}, "video/webm": {}}, "description": "the whole file"},
    206: {"content": {"video/mp4": {}, "video/webm": {}}, "description": "the range asked for"},
    416: {
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        "description": "the range starts past the end (Content-Range: bytes */size)",
    },
}


@router.get("/v1/clips/{clip_id}/video", response_class=Response, responses=_VIDEO_RESPONSES)
async def clip_video(
    clip_id: str, request: Request, clips: ClipsDep, who: MaybePrincipal
) -> Response:
    """The clip's video, with ``Range: bytes=a-b`` (206), for the player."""
    clip = await run_in_threadpool(clip_service.readable, clips.db, clip_id, _viewer(who))
    if clip.video_key is None:
        raise Problem(404, Code.CLIP_NOT_FOUND, "no such clip")
    return await serve_file(
        request, clips, clip.video_key, clip.content_type, headers={"Cache-Control": "no-cache"}
    )


# --- watermarked downloads ----------------------------------------------------------------


class DownloadJobOut(BaseModel):
    id: str
    clip_id: str
    status: JobStatus
    progress_pct: int = Field(ge=0, le=100)
    url: str | None = Field(description="the watermarked file, once done")
    size_bytes: int | None
    error: str | None


def _job_out(job: Job) -> DownloadJobOut:
    done = job.status is JobStatus.DONE
    return DownloadJobOut(
        id=job.id,
        clip_id=job.clip_id,
        status=job.status,
        progress_pct=job.progress_pct,
        url=f"/v1/clips/{job.clip_id}/downloads/{job.id}/file" if done else None,
        size_bytes=job.output_bytes if done else None,
        error=job.error,
    )


@router.post(
    "/v1/clips/{clip_id}/downloads",
    status_code=202,
    response_model=DownloadJobOut,
    responses={200: {"model": DownloadJobOut, "description": "already rendered"}},
)
async def request_download(
    clip_id: str, response: Response, clips: ClipsDep, user: SessionUser
) -> DownloadJobOut:
    """Start (or reuse: one per clip and version) the render of the clip with the creator's
    moving @handle and an end card; follow the job until ``done``, then fetch its ``url``."""
    # Another creator's clip still being made answers as a missing one, not "not ready".
    await run_in_threadpool(clip_service.readable, clips.db, clip_id, user)
    job, offer = await run_in_threadpool(clips.download_job, clip_id)
    if offer:
        clips.offer(job)
    if job.status is JobStatus.DONE:
        response.status_code = 200
    return _job_out(job)


@router.get("/v1/clips/{clip_id}/downloads/{job_id}", response_model=DownloadJobOut)
async def download_status(clip_id: str, job_id: str, clips: ClipsDep) -> DownloadJobOut:
    """A download's status and progress (percent), and its file's URL once done."""
    _, job = await run_in_threadpool(clip_service.download, clips.db, clip_id, job_id)
    return _job_out(job)


@router.get(
    "/v1/clips/{clip_id}/downloads/{job_id}/file",
    response_class=Response,
    responses=_VIDEO_RESPONSES,
)
async def download_file(clip_id: str, job_id: str, request: Request, clips: ClipsDep) -> Response:
    """The watermarked file (range requests work); counted as a download for the creator
    when asked for from its first byte."""
    clip, job = await run_in_threadpool(clip_service.download, clips.db, clip_id, job_id)
    if job.status is not JobStatus.DONE or job.output_key is None:
        raise Problem(409, Code.DOWNLOAD_NOT_READY, "the file is still being made")
    wanted = byte_range(request.headers.get("range"), job.output_bytes)
    if wanted is None or (wanted is not False and wanted[0] == 0):
        await run_in_threadpool(clip_service.count_download, clips.db, clip.id)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", clip.title).strip("-")[:60] or clip.id
    return await serve_file(
        request,
        clips,
        job.output_key,
        "video/mp4",
        headers={
            "Content-Disposition": f'attachment; filename="{name}.mp4"',
            "Cache-Control": "private, no-cache",
        },
    )


# --- reposts ------------------------------------------------------------------------------


class RepostOut(BaseModel):
    clip_id: str
    reposted: bool
    reposts: int


async def _repost(clips: Clips, clip_id: str, user: User, on: bool) -> RepostOut:
    reposts = await run_in_threadpool(
        clip_service.set_repost, clips.db, clip_id, user, on, now_us()
    )
    return RepostOut(clip_id=clip_id, reposted=on, reposts=reposts)


@router.post("/v1/clips/{clip_id}/repost", response_model=RepostOut)
async def repost_clip(clip_id: str, clips: ClipsDep, user: SessionUser) -> RepostOut:
    """Add the clip to the caller's public "shared" collection (again: no change)."""
    return await _repost(clips, clip_id, user, True)


@router.delete("/v1/clips/{clip_id}/repost", response_model=RepostOut)
async def unrepost_clip(clip_id: str, clips: ClipsDep, user: SessionUser) -> RepostOut:
    """Take the clip out of the caller's "shared" collection."""
    return await _repost(clips, clip_id, user, False)


class SharedClipOut(BaseModel):
    clip: ClipOut
    reposted_at: datetime


@router.get("/v1/users/{handle}/shared", response_model=list[SharedClipOut])
async def shared_collection(
    handle: str,
    clips: ClipsDep,
    who: MaybePrincipal,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 30,
) -> list[SharedClipOut]:
    """A user's public "shared" collection: the clips they reposted, newest first."""
    viewer = _viewer(who)
    shared = await run_in_threadpool(clip_service.shared_by, clips.db, handle, viewer, limit)
    return [SharedClipOut(clip=clip_out(v, viewer), reposted_at=_time(at)) for v, at in shared]


# --- reactions ----------------------------------------------------------------------------


class ReactionsOut(BaseModel):
    clip_id: str
    reactions: dict[str, int]
    my_reactions: list[str]


async def _react(clips: Clips, clip_id: str, emoji: str, user: User, on: bool) -> ReactionsOut:
    counts, mine = await run_in_threadpool(
        clip_service.set_reaction, clips.db, clip_id, user, emoji, on, now_us()
    )
    return ReactionsOut(clip_id=clip_id, reactions=counts, my_reactions=mine)


@router.put("/v1/clips/{clip_id}/reactions/{emoji}", response_model=ReactionsOut)
async def add_reaction(
    clip_id: str, emoji: str, clips: ClipsDep, user: SessionUser
) -> ReactionsOut:
    """React with one of: heart, fire, laugh, wow, clap, sad (once each per person)."""
    return await _react(clips, clip_id, emoji, user, True)


@router.delete("/v1/clips/{clip_id}/reactions/{emoji}", response_model=ReactionsOut)
async def remove_reaction(
    clip_id: str, emoji: str, clips: ClipsDep, user: SessionUser
) -> ReactionsOut:
    return await _react(clips, clip_id, emoji, user, False)
