"""Share links: one short code per (sharer, target, channel), made once and renewed by sharing
again; counts of who shared a stream."""

from __future__ import annotations

import enum
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Row, and_, case, func, insert, select, update

from giftwave.db.tables import share_links
from giftwave.db.upsert import insert_new

CODE_BYTES: Final = 6  # 8 URL-safe characters: 2**48 codes
CODE_RE: Final = re.compile(r"[A-Za-z0-9_\-]{8}")
MAX_CODE_ATTEMPTS: Final = 5  # a fresh code colliding even once is a 1 in 2**48 event


class TargetKind(enum.StrEnum):
    STREAM = "stream"
    PROFILE = "profile"
    # A ready clip (giftwave/clips); its link lands on /clips/{id}.
    CLIP = "clip"


class Channel(enum.StrEnum):
    COPY = "copy"
    WHATSAPP = "whatsapp"
    TELEGRAM = "telegram"
    X = "x"
    FACEBOOK = "facebook"
    EMAIL = "email"
    QR = "qr"
    IN_APP = "in_app"
    DEVICE = "device"  # the device's own share sheet (Web Share API)


@dataclass(frozen=True, slots=True)
class ShareLink:
    id: int
    code: str
    sharer_id: int
    target_kind: TargetKind
    target_id: str
    channel: Channel
    created_at_us: int
    last_shared_at_us: int


@dataclass(frozen=True, slots=True)
class ShareCount:
    links: int  # share links made for the target, one per sharer and channel
    recent_sharers: int  # people who shared it within the recent window


def _to_link(row: Row[tuple[object, ...]]) -> ShareLink:
    m = row._mapping
    return ShareLink(
        id=int(m["id"]),
        code=m["code"],
        sharer_id=int(m["sharer_id"]),
        target_kind=TargetKind(m["target_kind"]),
        target_id=m["target_id"],
        channel=Channel(m["channel"]),
        created_at_us=int(m["created_at_us"]),
        last_shared_at_us=int(m["last_shared_at_us"]),
    )


def _existing(
    conn: Connection, sharer_id: int, kind: TargetKind, target_id: str, channel: Channel
) -> ShareLink | None:
    row = conn.execute(
        select(share_links).where(
            share_links.c.sharer_id == sharer_id,
            share_links.c.target_kind == kind.value,
            share_links.c.target_id == target_id,
            share_links.c.channel == channel.value,
        )
    ).first()
    return None if row is None else _to_link(row)


def share(
    conn: Connection,
    sharer_id: int,
    kind: TargetKind,
    target_id: str,
    channel: Channel,
    now_us: int,
) -> tuple[ShareLink, bool]:
    """The sharer's link for this target and channel, made now or renewed; True if made."""
    for _ in range(MAX_CODE_ATTEMPTS):
        found = _existing(conn, sharer_id, kind, target_id, channel)
        if found is not None:
            conn.execute(
                update(share_links)
                .where(share_links.c.id == found.id)
                .values(last_shared_at_us=now_us)
            )
            return _existing(conn, sharer_id, kind, target_id, channel) or found, False
        link = insert(share_links).values(
            code=secrets.token_urlsafe(CODE_BYTES),
            sharer_id=sharer_id,
            target_kind=kind.value,
            target_id=target_id,
            channel=channel.value,
            created_at_us=now_us,
            last_shared_at_us=now_us,
        )
        if not insert_new(conn, link):
            continue  # the same share made at once elsewhere (read it), or a code collision
        made = _existing(conn, sharer_id, kind, target_id, channel)
        assert made is not None
        return made, True
    raise RuntimeError("could not make a share link")  # a programmer error: not bad input


def find_link(conn: Connection, code: str) -> ShareLink | None:
    if not CODE_RE.fullmatch(code):
        return None
    row = conn.execute(select(share_links).where(share_links.c.code == code)).first()
    return None if row is None else _to_link(row)


def share_counts(
    conn: Connection, kind: TargetKind, target_ids: Sequence[str], recent_since_us: int
) -> dict[str, ShareCount]:
    """For each target: its links, and the people who shared it since ``recent_since_us``."""
    if not target_ids:
        return {}
    # COUNT(DISTINCT) leaves out the NULLs of the links not shared recently.
    recent = func.count(
        func.distinct(
            case((share_links.c.last_shared_at_us >= recent_since_us, share_links.c.sharer_id))
        )
    )
    rows = conn.execute(
        select(share_links.c.target_id, func.count(), recent)
        .where(
            and_(
                share_links.c.target_kind == kind.value,
                share_links.c.target_id.in_(list(target_ids)),
            )
        )
        .group_by(share_links.c.target_id)
    ).all()
    return {str(r[0]): ShareCount(links=int(r[1]), recent_sharers=int(r[2])) for r in rows}
