"""Clip rows, reposts and reactions in the database (SQLAlchemy Core, a connection given)."""

from __future__ import annotations

import enum
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Row, Select, delete, func, insert, select, update

from giftwave.clock import now_us
from giftwave.db.tables import clip_jobs, clip_reactions, clip_reposts, clips, users
from giftwave.db.upsert import insert_new

ID_BYTES: Final = 9  # 12 URL-safe characters after the prefix
MAX_LIST: Final = 100


class ClipStatus(enum.StrEnum):
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class ClipSource(enum.StrEnum):
    UPLOAD = "upload"
    RECORDING = "recording"


# The fixed set of reactions: a stable name (the API's path segment) and what it shows.
REACTIONS: Final[dict[str, str]] = {
    "heart": "\u2764\ufe0f",
    "fire": "\U0001f525",
    "laugh": "\U0001f602",
    "wow": "\U0001f62e",
    "clap": "\U0001f44f",
    "sad": "\U0001f622",
}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(ID_BYTES)}"


@dataclass(frozen=True, slots=True)
class Clip:
    id: str
    creator_id: int
    creator_handle: str
    title: str
    status: ClipStatus
    source: ClipSource
    video_key: str | None
    content_type: str
    size_bytes: int
    duration_ms: int
    width: int
    height: int
    has_audio: bool
    downloads_enabled: bool
    download_count: int
    version: int
    error: str | None
    created_at_us: int


_COLUMNS: Final = (clips, users.c.handle.label("creator_handle"))


def _select() -> Select[Any]:
    return select(*_COLUMNS).join(users, users.c.id == clips.c.creator_id)


def _to_clip(row: Row[tuple[object, ...]]) -> Clip:
    m = row._mapping
    return Clip(
        id=m["id"],
        creator_id=int(m["creator_id"]),
        creator_handle=m["creator_handle"],
        title=m["title"],
        status=ClipStatus(m["status"]),
        source=ClipSource(m["source"]),
        video_key=m["video_key"],
        content_type=m["content_type"],
        size_bytes=int(m["size_bytes"]),
        duration_ms=int(m["duration_ms"]),
        width=int(m["width"]),
        height=int(m["height"]),
        has_audio=bool(m["has_audio"]),
        downloads_enabled=bool(m["downloads_enabled"]),
        download_count=int(m["download_count"]),
        version=int(m["version"]),
        error=m["error"],
        created_at_us=int(m["created_at_us"]),
    )


def insert_clip(
    conn: Connection,
    clip_id: str,
    creator_id: int,
    title: str,
    source: ClipSource,
    status: ClipStatus,
    content_type: str,
    **media: object,
) -> Clip:
    """A new clip's row, created now; ``media``: what is known of its video yet (key, size,
    duration, dimensions, audio). The clip as read back."""
    conn.execute(
        insert(clips).values(
            id=clip_id,
            creator_id=creator_id,
            title=title,
            status=status.value,
            source=source.value,
            content_type=content_type,
            created_at_us=now_us(),
            **media,
        )
    )
    clip = find_clip(conn, clip_id)
    assert clip is not None
    return clip


def find_clip(conn: Connection, clip_id: str) -> Clip | None:
    row = conn.execute(_select().where(clips.c.id == clip_id)).first()
    return None if row is None else _to_clip(row)


def clips_of(
    conn: Connection, creator_id: int, limit: int = MAX_LIST, status: ClipStatus | None = None
) -> list[Clip]:
    """A creator's clips, newest first; ``status``: only those (READY: the published ones)."""
    query = _select().where(clips.c.creator_id == creator_id)
    if status is not None:
        query = query.where(clips.c.status == status.value)
    rows = conn.execute(query.order_by(clips.c.created_at_us.desc(), clips.c.id).limit(limit)).all()
    return [_to_clip(r) for r in rows]


def update_clip(conn: Connection, clip_id: str, **values: object) -> None:
    conn.execute(update(clips).where(clips.c.id == clip_id).values(**values))


def delete_clip(conn: Connection, clip_id: str) -> None:
    for table in (clip_reactions, clip_reposts, clip_jobs):
        conn.execute(delete(table).where(table.c.clip_id == clip_id))
    conn.execute(delete(clips).where(clips.c.id == clip_id))


def job_outputs(conn: Connection, clip_id: str) -> list[str]:
    """The stored files of a clip's jobs (its watermarked downloads)."""
    rows = conn.execute(
        select(clip_jobs.c.output_key).where(
            clip_jobs.c.clip_id == clip_id, clip_jobs.c.output_key.is_not(None)
        )
    ).all()
    return [str(r[0]) for r in rows]


def count_download(conn: Connection, clip_id: str) -> None:
    conn.execute(
        update(clips).where(clips.c.id == clip_id).values(download_count=clips.c.download_count + 1)
    )


# --- reposts ------------------------------------------------------------------------------


def repost(conn: Connection, user_id: int, clip_id: str, at_us: int) -> bool:
    """Add the clip to the user's shared collection; False: it was there already."""
    return insert_new(
        conn, insert(clip_reposts).values(user_id=user_id, clip_id=clip_id, created_at_us=at_us)
    )


def unrepost(conn: Connection, user_id: int, clip_id: str) -> bool:
    done = conn.execute(
        delete(clip_reposts).where(
            clip_reposts.c.user_id == user_id, clip_reposts.c.clip_id == clip_id
        )
    )
    return done.rowcount > 0


def shared_by(conn: Connection, user_id: int, limit: int) -> list[tuple[Clip, int]]:
    """The ready clips a user reposted, newest repost first, with when."""
    rows = conn.execute(
        _select()
        .add_columns(clip_reposts.c.created_at_us.label("reposted_at_us"))
        .join(clip_reposts, clip_reposts.c.clip_id == clips.c.id)
        .where(clip_reposts.c.user_id == user_id, clips.c.status == ClipStatus.READY.value)
        .order_by(clip_reposts.c.created_at_us.desc(), clips.c.id)
        .limit(limit)
    ).all()
    return [(_to_clip(r), int(r._mapping["reposted_at_us"])) for r in rows]


def repost_count(conn: Connection, clip_id: str) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(clip_reposts).where(clip_reposts.c.clip_id == clip_id)
        ).scalar_one()
    )


def has_reposted(conn: Connection, user_id: int, clip_id: str) -> bool:
    return (
        conn.execute(
            select(clip_reposts.c.user_id).where(
                clip_reposts.c.user_id == user_id, clip_reposts.c.clip_id == clip_id
            )
        ).first()
        is not None
    )


# --- reactions ----------------------------------------------------------------------------


def react(conn: Connection, user_id: int, clip_id: str, emoji: str, at_us: int) -> bool:
    """One reaction per user, clip and emoji; False: it was there already."""
    assert emoji in REACTIONS, emoji
    return insert_new(
        conn,
        insert(clip_reactions).values(
            clip_id=clip_id, user_id=user_id, emoji=emoji, created_at_us=at_us
        ),
    )


def unreact(conn: Connection, user_id: int, clip_id: str, emoji: str) -> bool:
    done = conn.execute(
        delete(clip_reactions).where(
            clip_reactions.c.clip_id == clip_id,
            clip_reactions.c.user_id == user_id,
            clip_reactions.c.emoji == emoji,
        )
    )
    return done.rowcount > 0


def reaction_counts(conn: Connection, clip_id: str) -> dict[str, int]:
    rows = conn.execute(
        select(clip_reactions.c.emoji, func.count())
        .where(clip_reactions.c.clip_id == clip_id)
        .group_by(clip_reactions.c.emoji)
    ).all()
    found = {str(e): int(n) for e, n in rows}
    return {name: found.get(name, 0) for name in REACTIONS}


def reactions_of(conn: Connection, user_id: int, clip_id: str) -> Sequence[str]:
    rows = conn.execute(
        select(clip_reactions.c.emoji).where(
            clip_reactions.c.clip_id == clip_id, clip_reactions.c.user_id == user_id
        )
    ).all()
    return sorted(str(r[0]) for r in rows)
