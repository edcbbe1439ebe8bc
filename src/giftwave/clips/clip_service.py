"""What a route asks of the clip library, one call each: who may see or change a clip, and the
unit of work around it (``with db.begin()`` for a change, ``with db.connect()`` for a read).
A route parses, calls one of these and shapes the answer; the byte-range serving of files
stays with the route. The posting and the jobs are ``Clips``' (``clips/service.py``).

A clip being made (or failed) is its creator's only: to anyone else it is the same 404 as an
id that never existed, so ids cannot be probed by reading or by writing."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from giftwave.clips import library
from giftwave.clips.jobs import Job, find_job
from giftwave.clips.library import REACTIONS, Clip, ClipStatus
from giftwave.clips.service import Clips
from giftwave.errors import Code, Forbidden, Invalid, NotFound
from giftwave.identity.users import HANDLE_RE, User, find_by_login


@dataclass(frozen=True, slots=True)
class ClipView:
    """A clip as one viewer sees it: its counts, and what the viewer did to it."""

    clip: Clip
    reactions: dict[str, int]  # count per reaction name (all of them)
    my_reactions: list[str]
    reposts: int
    reposted: bool  # whether the viewer reposted it


def visible(clip: Clip | None, viewer: User | None) -> Clip:
    """A ready clip for everyone; one being made (or failed) for its creator only."""
    if clip is None or (
        clip.status is not ClipStatus.READY and (viewer is None or viewer.id != clip.creator_id)
    ):
        raise NotFound(Code.CLIP_NOT_FOUND, "no such clip")
    return clip


def view_of(conn: Connection, clip: Clip, viewer: User | None) -> ClipView:
    return ClipView(
        clip=clip,
        reactions=library.reaction_counts(conn, clip.id),
        my_reactions=list(library.reactions_of(conn, viewer.id, clip.id)) if viewer else [],
        reposts=library.repost_count(conn, clip.id),
        reposted=library.has_reposted(conn, viewer.id, clip.id) if viewer else False,
    )


def title_of(value: str | None) -> str:
    """A clip's title, trimmed: 1 to 140 characters (else 422 ``invalid_title``)."""
    title = (value or "").strip()
    if not 1 <= len(title) <= 140:
        raise Invalid(Code.INVALID_TITLE, "a title has 1 to 140 characters")
    return title


def _own(conn: Connection, clip_id: str, user: User) -> Clip:
    clip = visible(library.find_clip(conn, clip_id), user)
    if clip.creator_id != user.id:
        raise Forbidden(Code.NOT_YOUR_CLIP, "only the clip's creator can change it")
    return clip


# --- reads --------------------------------------------------------------------------------


def view(db: Engine, clip: Clip, viewer: User | None) -> ClipView:
    """A clip the caller already holds (one just posted), with its counts."""
    with db.connect() as conn:
        return view_of(conn, clip, viewer)


def find(db: Engine, clip_id: str, viewer: User | None) -> ClipView:
    """The clip with its counts, if the viewer may see it (else 404 ``clip_not_found``)."""
    with db.connect() as conn:
        return view_of(conn, visible(library.find_clip(conn, clip_id), viewer), viewer)


def readable(db: Engine, clip_id: str, viewer: User | None) -> Clip:
    """The clip, if the viewer may see it (else 404 ``clip_not_found``)."""
    with db.connect() as conn:
        return visible(library.find_clip(conn, clip_id), viewer)


def clips_by(db: Engine, creator: User, limit: int) -> list[ClipView]:
    """The creator's own clips, newest first, made or being made."""
    with db.connect() as conn:
        return [view_of(conn, c, creator) for c in library.clips_of(conn, creator.id, limit)]


def shared_by(
    db: Engine, handle: str, viewer: User | None, limit: int
) -> list[tuple[ClipView, int]]:
    """A user's public "shared" collection: (clip, reposted at, µs), newest first."""
    with db.connect() as conn:
        wanted = handle.lower()
        found = find_by_login(conn, wanted) if HANDLE_RE.fullmatch(wanted) else None
        if found is None:
            raise NotFound(Code.USER_NOT_FOUND, f"no user @{handle}")
        return [
            (view_of(conn, c, viewer), at_us)
            for c, at_us in library.shared_by(conn, found[0].id, limit)
        ]


def download(db: Engine, clip_id: str, job_id: str) -> tuple[Clip, Job]:
    """A clip's download job, for anyone, while the creator lets the clip be downloaded."""
    with db.connect() as conn:
        clip = library.find_clip(conn, clip_id)
        job = find_job(conn, job_id)
    if clip is None or clip.status is not ClipStatus.READY:
        raise NotFound(Code.CLIP_NOT_FOUND, "no such clip")
    if job is None or job.clip_id != clip.id or job.kind.value != "render":
        raise NotFound(Code.DOWNLOAD_NOT_FOUND, "no such download")
    if not clip.downloads_enabled:
        raise Forbidden(Code.DOWNLOADS_DISABLED, "the creator turned off downloads")
    return clip, job


# --- changes ------------------------------------------------------------------------------


def change(
    db: Engine,
    clip_id: str,
    user: User,
    *,
    downloads_enabled: bool | None = None,
    title: str | None = None,
) -> ClipView:
    """The creator turns downloads on or off, or renames the clip (None: left as it is);
    the title is checked after the caller is found to own the clip."""
    with db.begin() as conn:
        _own(conn, clip_id, user)
        values: dict[str, object] = {}
        if downloads_enabled is not None:
            values["downloads_enabled"] = downloads_enabled
        if title is not None:
            values["title"] = title_of(title)
        if values:
            library.update_clip(conn, clip_id, **values)
        clip = library.find_clip(conn, clip_id)
        assert clip is not None
        return view_of(conn, clip, user)


def delete(clips: Clips, clip_id: str, user: User) -> None:
    """The creator deletes a clip: its row, downloads, reposts and reactions, then its files."""
    with clips.db.begin() as conn:
        clip = _own(conn, clip_id, user)
        keys = [clip.video_key] if clip.video_key else []
        keys += library.job_outputs(conn, clip_id)
        library.delete_clip(conn, clip_id)
    for key in keys:  # after the commit: a failed delete leaves a file, never a dead row
        clips.forget(key)


def count_download(db: Engine, clip_id: str) -> None:
    with db.begin() as conn:
        library.count_download(conn, clip_id)


def set_repost(db: Engine, clip_id: str, user: User, on: bool, at_us: int) -> int:
    """Put the clip in the user's "shared" collection, or take it out (again: no change);
    the clip's repost count after."""
    with db.begin() as conn:
        visible(library.find_clip(conn, clip_id), None)
        if on:
            library.repost(conn, user.id, clip_id, at_us)
        else:
            library.unrepost(conn, user.id, clip_id)
        return library.repost_count(conn, clip_id)


def set_reaction(
    db: Engine, clip_id: str, user: User, emoji: str, on: bool, at_us: int
) -> tuple[dict[str, int], list[str]]:
    """Add or take back the user's reaction (one of ``REACTIONS``); the clip's counts and
    the user's reactions after."""
    if emoji not in REACTIONS:
        raise Invalid(Code.INVALID_REACTION, f"{emoji!r} is not one of {', '.join(REACTIONS)}")
    with db.begin() as conn:
        visible(library.find_clip(conn, clip_id), None)
        if on:
            library.react(conn, user.id, clip_id, emoji, at_us)
        else:
            library.unreact(conn, user.id, clip_id, emoji)
        return library.reaction_counts(conn, clip_id), list(
            library.reactions_of(conn, user.id, clip_id)
        )
