"""Stream records: a creator starts one, it is live until they end it."""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Row, insert, select, update

from giftwave.clock import now_us
from giftwave.db.tables import streams, users
from giftwave.errors import Code, Conflict, Forbidden, Invalid, NotFound

STREAM_ID_RE: Final = re.compile(r"st_[A-Za-z0-9_\-]{1,21}")
LANGUAGE_RE: Final = re.compile(r"[a-z]{2,3}(-[A-Z]{2})?")


class StreamStatus(enum.StrEnum):
    LIVE = "live"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Stream:
    id: str
    creator_id: int
    title: str
    language: str
    playback_url: str | None
    status: StreamStatus
    started_at_us: int
    ended_at_us: int | None

    @property
    def live(self) -> bool:
        return self.status is StreamStatus.LIVE


def _to_stream(row: Row[tuple[object, ...]]) -> Stream:
    m = row._mapping
    return Stream(
        id=m["id"],
        creator_id=int(m["creator_id"]),
        title=m["title"],
        language=m["language"],
        playback_url=m["playback_url"],
        status=StreamStatus(m["status"]),
        started_at_us=int(m["started_at_us"]),
        ended_at_us=m["ended_at_us"],
    )


def find_stream(conn: Connection, stream_id: str) -> Stream | None:
    if not STREAM_ID_RE.fullmatch(stream_id):
        return None
    row = conn.execute(select(streams).where(streams.c.id == stream_id)).first()
    return None if row is None else _to_stream(row)


def get_stream(conn: Connection, stream_id: str) -> Stream:
    stream = find_stream(conn, stream_id)
    if stream is None:
        raise NotFound(Code.STREAM_NOT_FOUND, f"no stream {stream_id!r}")
    return stream


def lock_streams(conn: Connection, stream_ids: list[str]) -> dict[str, Stream]:
    """The streams, their rows locked until the transaction ends (PostgreSQL; SQLite has one
    writer anyway). Always in id order, so two transactions locking the same pair never
    deadlock."""
    wanted = sorted({s for s in stream_ids if STREAM_ID_RE.fullmatch(s)})
    rows = conn.execute(
        select(streams).where(streams.c.id.in_(wanted)).order_by(streams.c.id).with_for_update()
    ).all()
    return {row.id: _to_stream(row) for row in rows}


def live_stream_of(conn: Connection, creator_id: int) -> Stream | None:
    row = conn.execute(
        select(streams).where(
            streams.c.creator_id == creator_id, streams.c.status == StreamStatus.LIVE.value
        )
    ).first()
    return None if row is None else _to_stream(row)


PLAYBACK_URL_MAX_CHARS: Final = 1024


def check_playback_url(url: str) -> None:
    """An http(s) or rtmp URL, or a path on this site ("/hls/live.m3u8": a media server
    behind the same host, or the demo's own stream), which the page then plays as 'self'."""
    site_path = url.startswith("/") and not url.startswith(("//", "/\\"))
    if (
        len(url) > PLAYBACK_URL_MAX_CHARS
        or not url.isprintable()
        or not (site_path or url.startswith(("http://", "https://", "rtmp")))
    ):
        raise Invalid(
            Code.INVALID_PLAYBACK_URL, "a playback URL is an http(s) or rtmp URL, or a path here"
        )


def set_playback_url(conn: Connection, stream_id: str, url: str | None) -> None:
    """Point a stream at another video (the demo, at each start, at its own encoder or none)."""
    if url is not None:
        check_playback_url(url)
    conn.execute(update(streams).where(streams.c.id == stream_id).values(playback_url=url))


def start_stream(
    conn: Connection,
    creator_id: int,
    *,
    title: str,
    language: str = "en",
    playback_url: str | None = None,
) -> Stream:
    """Go live. One live stream per creator: a second start is a conflict naming the first."""
    title = title.strip()
    if not 1 <= len(title) <= 140 or not title.isprintable():
        raise Invalid(Code.INVALID_TITLE, "a title is 1-140 printable characters")
    if not LANGUAGE_RE.fullmatch(language):
        raise Invalid(Code.INVALID_LANGUAGE, "a language is a code like en, es or pt-BR")
    if playback_url is not None:
        check_playback_url(playback_url)
    current = live_stream_of(conn, creator_id)
    if current is not None:
        raise Conflict(Code.ALREADY_LIVE, f"stream {current.id} is live", stream_id=current.id)
    stream_id = "st_" + secrets.token_urlsafe(9)
    conn.execute(
        insert(streams).values(
            id=stream_id,
            creator_id=creator_id,
            title=title,
            language=language,
            playback_url=playback_url,
            status=StreamStatus.LIVE.value,
            started_at_us=now_us(),
        )
    )
    return get_stream(conn, stream_id)


def end_stream(conn: Connection, stream_id: str, by_user_id: int, *, admin: bool) -> Stream:
    stream = get_stream(conn, stream_id)
    if stream.creator_id != by_user_id and not admin:
        raise Forbidden(Code.NOT_YOUR_STREAM, "only the stream's creator can end it")
    if stream.live:
        conn.execute(
            update(streams)
            .where(streams.c.id == stream_id, streams.c.status == StreamStatus.LIVE.value)
            .values(status=StreamStatus.ENDED.value, ended_at_us=now_us())
        )
    return get_stream(conn, stream_id)


def live_with_creators(conn: Connection, limit: int = 100) -> list[tuple[Stream, str]]:
    """The live streams, newest first, each with its creator's handle."""
    rows = conn.execute(
        select(streams, users.c.handle.label("creator_handle"))
        .join(users, users.c.id == streams.c.creator_id)
        .where(streams.c.status == StreamStatus.LIVE.value)
        .order_by(streams.c.started_at_us.desc())
        .limit(limit)
    ).all()
    return [(_to_stream(r), r._mapping["creator_handle"]) for r in rows]
