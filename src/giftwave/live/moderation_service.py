"""What creators, moderators and viewers do about a room's people, one call each: the unit
of work (one transaction or one read) around the rules of ``moderation.py``, which also hold
who may (``appoint``: creators; bans and reports: the creator, their moderators, admins).
Blocking: a route runs them on a worker thread, then tells the nodes."""

from __future__ import annotations

from sqlalchemy import Engine, select

from giftwave.db.tables import users
from giftwave.errors import Code, NotFound
from giftwave.identity.users import User
from giftwave.live.moderation import (
    Ban,
    ChatLine,
    Moderator,
    Report,
    ReportReason,
    appoint,
    ban,
    bans_of,
    dismiss,
    may_moderate,
    moderators_of,
    report,
    reports_of,
    require_moderator,
    unban,
)
from giftwave.live.streams import find_stream


def team(db: Engine, creator: User) -> list[Moderator]:
    """The people who moderate every room of the creator."""
    with db.connect() as conn:
        return moderators_of(conn, creator.id)


def appoint_moderator(
    db: Engine, creator: User, user_id: int | None, handle: str | None, at_us: int
) -> tuple[Moderator, bool]:
    """Someone, by id or by handle, made a moderator: (them, whether new)."""
    with db.begin() as conn:
        target = user_id
        if target is None:
            wanted = (handle or "").strip().lower().removeprefix("@")
            target = conn.execute(select(users.c.id).where(users.c.handle == wanted)).scalar()
            if target is None:
                raise NotFound(Code.USER_NOT_FOUND, f"nobody is called {wanted!r}")
        return appoint(conn, creator, int(target), at_us)


def dismiss_moderator(db: Engine, creator: User, user_id: int) -> None:
    with db.begin() as conn:
        dismiss(conn, creator.id, user_id)


def bans(db: Engine, creator_id: int, by: User) -> list[Ban]:
    """Who is banned from the creator's rooms (for the creator, their moderators, admins)."""
    with db.connect() as conn:
        require_moderator(conn, creator_id, by)
        return bans_of(conn, creator_id)


def ban_user(
    db: Engine, creator_id: int, user_id: int, by: User, reason: str | None, at_us: int
) -> tuple[Ban, bool]:
    with db.begin() as conn:
        return ban(conn, creator_id, user_id, by, reason, at_us)


def unban_user(db: Engine, creator_id: int, user_id: int, by: User) -> None:
    with db.begin() as conn:
        unban(conn, creator_id, user_id, by)


def creator_of_stream(db: Engine, stream_id: str) -> int:
    """Whose room a stream is (404 ``stream_not_found``)."""
    with db.connect() as conn:
        stream = find_stream(conn, stream_id)
    if stream is None:
        raise NotFound(Code.STREAM_NOT_FOUND, "no such stream")
    return stream.creator_id


def report_line(
    db: Engine,
    stream_id: str,
    creator_id: int,
    line: ChatLine,
    by: User,
    reason: ReportReason,
    at_us: int,
) -> tuple[Report, bool]:
    """A chat line flagged: (the report, whether new; else the first one)."""
    with db.begin() as conn:
        return report(conn, stream_id, creator_id, line, by, reason, at_us)


def reports(db: Engine, creator_id: int | None, by: User | None, limit: int) -> list[Report]:
    """Reported lines, newest first: of one creator's rooms (``by`` must moderate them), or
    of every room (``creator_id`` None: the caller is an admin)."""
    with db.connect() as conn:
        if creator_id is not None:
            assert by is not None
            require_moderator(conn, creator_id, by)
        return reports_of(conn, creator_id, limit)


def require_moderator_of(db: Engine, creator_id: int, user: User) -> None:
    """The room's creator, an admin or an appointed moderator (not blocked), else
    ``not_moderator``: the one rule for the socket's commands and the HTTP routes."""
    with db.connect() as conn:
        require_moderator(conn, creator_id, user)


def moderates(db: Engine, creator_id: int, user: User) -> bool:
    """Whether the user may moderate the creator's rooms."""
    with db.connect() as conn:
        return may_moderate(conn, creator_id, user)
