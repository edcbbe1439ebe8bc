"""Moderation that outlives a room: the moderators a creator appoints, bans from all of a
creator's rooms, and viewers' reports of chat lines. No web imports.

    moderators   a creator appoints up to MAX_MODERATORS people; each may delete lines, mute
                 and ban in every room of that creator (so may the creator and admins)
    bans         (creator, user): the user cannot chat, like or gift in any room of the creator;
                 stored, so every node refuses them (live/ban_gate.py caches the answer)
    reports      a viewer flags one chat line, once; the line is kept as it was shown, so it
                 can be judged after the room has forgotten it

Errors (errors.py): ``not_moderator`` (403) for anyone else acting, ``cannot_ban_creator`` and
``cannot_moderate_self`` (422), ``cannot_ban_moderator`` (403: a moderator bans viewers, only the
creator or an admin bans a moderator), ``user_not_found`` (404), ``moderator_limit`` (422).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, delete, func, insert, select

from giftwave.db.id_lists import in_parts
from giftwave.db.tables import chat_reports, room_bans, room_moderators, users
from giftwave.db.upsert import insert_new
from giftwave.errors import Code, Forbidden, Invalid, NotFound
from giftwave.identity.permissions import require_creator_or_admin
from giftwave.identity.users import Role, User, find_user, require_active

# A creator's team is a handful of people; the list is read whole by the studio.
MAX_MODERATORS: Final = 50
LIST_MAX: Final = 200  # bans and reports listed at once, newest first
REASON_MAX_CHARS: Final = 200


class ReportReason(enum.StrEnum):
    SPAM = "spam"
    HARASSMENT = "harassment"
    HATE = "hate"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Moderator:
    user_id: int
    handle: str
    created_at_us: int


@dataclass(frozen=True, slots=True)
class Ban:
    creator_id: int
    user_id: int
    handle: str
    banned_by: int
    reason: str | None
    created_at_us: int


@dataclass(frozen=True, slots=True)
class ChatLine:
    """A chat line as the room showed it (``live.room``)."""

    message_id: str
    user_id: int
    handle: str
    text: str


@dataclass(frozen=True, slots=True)
class Report:
    id: int
    stream_id: str
    creator_id: int
    message_id: str
    reported_user_id: int
    reported_handle: str
    text: str
    reporter_id: int
    reporter_handle: str
    reason: ReportReason
    created_at_us: int


def is_moderator(conn: Connection, creator_id: int, user_id: int) -> bool:
    """Whether the creator appointed ``user_id`` (the creator and admins are not listed)."""
    row = conn.execute(
        select(room_moderators.c.user_id).where(
            room_moderators.c.creator_id == creator_id, room_moderators.c.user_id == user_id
        )
    ).first()
    return row is not None


def may_moderate(conn: Connection, creator_id: int, user: User) -> bool:
    """The creator, an admin, or a moderator the creator appointed (and not blocked)."""
    if user.blocked:
        return False
    if user.id == creator_id or user.role is Role.ADMIN:
        return True
    return is_moderator(conn, creator_id, user.id)


def require_moderator(conn: Connection, creator_id: int, user: User) -> None:
    if not may_moderate(conn, creator_id, user):
        raise Forbidden(Code.NOT_MODERATOR, "only the creator, their moderators and admins do this")


# ---- moderators ---------------------------------------------------------------------------


def appoint(conn: Connection, creator: User, user_id: int, at_us: int) -> tuple[Moderator, bool]:
    """The creator makes ``user_id`` a moderator of all their rooms: (them, whether new)."""
    require_active(creator)
    require_creator_or_admin(creator, "appoint moderators")
    if user_id == creator.id:
        raise Invalid(Code.CANNOT_MODERATE_SELF, "you moderate your own rooms already")
    user = find_user(conn, user_id)
    if user is None:
        raise NotFound(Code.USER_NOT_FOUND, f"no user {user_id}")
    if is_moderator(conn, creator.id, user_id):
        return _moderator(conn, creator.id, user_id), False
    count = conn.execute(
        select(func.count())
        .select_from(room_moderators)
        .where(room_moderators.c.creator_id == creator.id)
    ).scalar_one()
    if count >= MAX_MODERATORS:
        raise Invalid(Code.MODERATOR_LIMIT, f"a creator has at most {MAX_MODERATORS} moderators")
    appoint = insert(room_moderators).values(
        creator_id=creator.id, user_id=user_id, created_at_us=at_us
    )
    if not insert_new(conn, appoint):  # appointed concurrently: the same outcome
        return _moderator(conn, creator.id, user_id), False
    return Moderator(user_id, user.handle, at_us), True


def dismiss(conn: Connection, creator_id: int, user_id: int) -> bool:
    gone = conn.execute(
        delete(room_moderators).where(
            room_moderators.c.creator_id == creator_id, room_moderators.c.user_id == user_id
        )
    )
    return gone.rowcount > 0


def _moderator(conn: Connection, creator_id: int, user_id: int) -> Moderator:
    [found] = [m for m in moderators_of(conn, creator_id) if m.user_id == user_id]
    return found


def moderators_of(conn: Connection, creator_id: int) -> list[Moderator]:
    """Longest-serving first (bounded by MAX_MODERATORS)."""
    rows = conn.execute(
        select(room_moderators.c.user_id, users.c.handle, room_moderators.c.created_at_us)
        .join(users, users.c.id == room_moderators.c.user_id)
        .where(room_moderators.c.creator_id == creator_id)
        .order_by(room_moderators.c.created_at_us, room_moderators.c.user_id)
        .limit(MAX_MODERATORS)
    )
    return [Moderator(int(r.user_id), r.handle, int(r.created_at_us)) for r in rows]


def moderated_by(conn: Connection, user_id: int) -> list[int]:
    """The creators who appointed ``user_id`` (bounded: each appointment is a creator's)."""
    rows = conn.execute(
        select(room_moderators.c.creator_id)
        .where(room_moderators.c.user_id == user_id)
        .limit(LIST_MAX)
    )
    return [int(r.creator_id) for r in rows]


# ---- bans ---------------------------------------------------------------------------------


def ban(
    conn: Connection, creator_id: int, user_id: int, by: User, reason: str | None, at_us: int
) -> tuple[Ban, bool]:
    """``by`` (who may moderate the creator's rooms) bans ``user_id`` from all of them:
    (the ban, whether new). A banned moderator stops being one."""
    require_moderator(conn, creator_id, by)
    if user_id == creator_id:
        raise Invalid(Code.CANNOT_BAN_CREATOR, "a creator cannot be banned from their own rooms")
    if user_id == by.id:
        raise Invalid(Code.CANNOT_MODERATE_SELF, "you cannot ban yourself")
    target = find_user(conn, user_id)
    if target is None:
        raise NotFound(Code.USER_NOT_FOUND, f"no user {user_id}")
    if target.role is Role.ADMIN:
        raise Forbidden(Code.CANNOT_BAN_MODERATOR, "operators cannot be banned from a room")
    if (
        is_moderator(conn, creator_id, user_id)
        and by.id != creator_id
        and by.role is not Role.ADMIN
    ):
        raise Forbidden(Code.CANNOT_BAN_MODERATOR, "only the creator bans one of their moderators")
    existing = find_ban(conn, creator_id, user_id)
    if existing is not None:
        return existing, False
    dismiss(conn, creator_id, user_id)
    ban = insert(room_bans).values(
        creator_id=creator_id, user_id=user_id, banned_by=by.id, reason=reason, created_at_us=at_us
    )
    if not insert_new(conn, ban):  # banned concurrently
        found = find_ban(conn, creator_id, user_id)
        assert found is not None
        return found, False
    return Ban(creator_id, user_id, target.handle, by.id, reason, at_us), True


def unban(conn: Connection, creator_id: int, user_id: int, by: User) -> bool:
    require_moderator(conn, creator_id, by)
    gone = conn.execute(
        delete(room_bans).where(
            room_bans.c.creator_id == creator_id, room_bans.c.user_id == user_id
        )
    )
    return gone.rowcount > 0


_BAN_SELECT: Final = select(room_bans, users.c.handle).join(
    users, users.c.id == room_bans.c.user_id
)


def _to_ban(row: Any) -> Ban:
    m = row._mapping
    return Ban(
        creator_id=int(m["creator_id"]),
        user_id=int(m["user_id"]),
        handle=m["handle"],
        banned_by=int(m["banned_by"]),
        reason=m["reason"],
        created_at_us=int(m["created_at_us"]),
    )


def find_ban(conn: Connection, creator_id: int, user_id: int) -> Ban | None:
    row = conn.execute(
        _BAN_SELECT.where(room_bans.c.creator_id == creator_id, room_bans.c.user_id == user_id)
    ).first()
    return None if row is None else _to_ban(row)


def banned_pairs(conn: Connection, pairs: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """Which of these (creator, user) pairs are bans: one query per creator among them."""
    by_creator: dict[int, list[int]] = {}
    for creator_id, user_id in pairs:
        by_creator.setdefault(creator_id, []).append(user_id)
    found: set[tuple[int, int]] = set()
    for creator_id, user_ids in by_creator.items():
        for part in in_parts(user_ids):
            rows = conn.execute(
                select(room_bans.c.user_id).where(
                    room_bans.c.creator_id == creator_id, room_bans.c.user_id.in_(part)
                )
            )
            found.update((creator_id, int(user_id)) for (user_id,) in rows)
    return found


def bans_of(conn: Connection, creator_id: int, limit: int = LIST_MAX) -> list[Ban]:
    """Newest first."""
    rows = conn.execute(
        _BAN_SELECT.where(room_bans.c.creator_id == creator_id)
        .order_by(room_bans.c.created_at_us.desc(), room_bans.c.user_id)
        .limit(min(limit, LIST_MAX))
    )
    return [_to_ban(r) for r in rows]


# ---- reports ------------------------------------------------------------------------------

_reporters = users.alias("reporter")
_REPORT_SELECT: Final = select(chat_reports, _reporters.c.handle.label("reporter_handle")).join(
    _reporters, _reporters.c.id == chat_reports.c.reporter_id
)


def _to_report(row: Any) -> Report:
    m = row._mapping
    return Report(
        id=int(m["id"]),
        stream_id=m["stream_id"],
        creator_id=int(m["creator_id"]),
        message_id=m["message_id"],
        reported_user_id=int(m["reported_user_id"]),
        reported_handle=m["reported_handle"],
        text=m["text"],
        reporter_id=int(m["reporter_id"]),
        reporter_handle=m["reporter_handle"],
        reason=ReportReason(m["reason"]),
        created_at_us=int(m["created_at_us"]),
    )


def _find_report(
    conn: Connection, reporter_id: int, stream_id: str, message_id: str
) -> Report | None:
    row = conn.execute(
        _REPORT_SELECT.where(
            chat_reports.c.reporter_id == reporter_id,
            chat_reports.c.stream_id == stream_id,
            chat_reports.c.message_id == message_id,
        )
    ).first()
    return None if row is None else _to_report(row)


def report(
    conn: Connection,
    stream_id: str,
    creator_id: int,
    line: ChatLine,
    reporter: User,
    reason: ReportReason,
    at_us: int,
) -> tuple[Report, bool]:
    """``reporter`` flags ``line`` of the stream's chat: (the report, whether new). Reporting
    the same line again answers the first report."""
    require_active(reporter)
    if line.user_id == reporter.id:
        raise Invalid(Code.CANNOT_REPORT_SELF, "you cannot report your own message")
    prior = _find_report(conn, reporter.id, stream_id, line.message_id)
    if prior is not None:
        return prior, False
    report = insert(chat_reports).values(
        stream_id=stream_id,
        creator_id=creator_id,
        message_id=line.message_id,
        reported_user_id=line.user_id,
        reported_handle=line.handle,
        text=line.text,
        reporter_id=reporter.id,
        reason=reason.value,
        created_at_us=at_us,
    )
    made = insert_new(conn, report)  # False: the same report, concurrently
    found = _find_report(conn, reporter.id, stream_id, line.message_id)
    assert found is not None
    return found, made


def reports_of(conn: Connection, creator_id: int | None, limit: int = LIST_MAX) -> list[Report]:
    """Newest first: one creator's rooms, or every room (``None``: for admins)."""
    query = _REPORT_SELECT
    if creator_id is not None:
        query = query.where(chat_reports.c.creator_id == creator_id)
    rows = conn.execute(
        query.order_by(chat_reports.c.created_at_us.desc(), chat_reports.c.id.desc()).limit(
            min(limit, LIST_MAX)
        )
    )
    return [_to_report(r) for r in rows]
