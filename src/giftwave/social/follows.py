"""Follows: a user follows another (a creator, a friend). Following and unfollowing are
idempotent; a user follows at most ``MAX_FOLLOWING`` others, so every read of a following list
is bounded. What it is for: "K of the people you follow are watching" (docs/sharing.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import ColumnElement, Engine, and_, delete, exists, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from giftwave.db.tables import follows, streams, users
from giftwave.errors import Code, Invalid, NotFound
from giftwave.identity.users import User, UserStatus, find_user, require_active
from giftwave.live.streams import StreamStatus, find_stream
from giftwave.ratelimit import Rate, UserLimit

MAX_FOLLOWING: Final = 5_000
FOLLOW_CHANGES_PER_S: Final = 0.5  # one change every two seconds, sustained
FOLLOW_CHANGES_BURST: Final = 20


@dataclass(frozen=True, slots=True)
class Followed:
    user_id: int
    handle: str
    followed_at_us: int


@dataclass(frozen=True, slots=True)
class FollowedLive:
    """Someone a user follows, live now, and their stream."""

    user_id: int
    handle: str
    stream_id: str
    title: str
    started_at_us: int


def _live_stream_of(user_id: ColumnElement[int]) -> ColumnElement[bool]:
    return and_(streams.c.creator_id == user_id, streams.c.status == StreamStatus.LIVE.value)


def followed_live(conn: Connection, follower_id: int, limit: int) -> list[FollowedLive]:
    """Who a user follows that is live now, the latest to go live first (one query, bounded)."""
    rows = conn.execute(
        select(
            follows.c.followee_id,
            users.c.handle,
            streams.c.id,
            streams.c.title,
            streams.c.started_at_us,
        )
        .join(users, users.c.id == follows.c.followee_id)
        .join(streams, _live_stream_of(follows.c.followee_id))
        .where(follows.c.follower_id == follower_id)
        .order_by(streams.c.started_at_us.desc(), streams.c.id)
        .limit(min(limit, MAX_FOLLOWING))
    )
    return [FollowedLive(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows]


def followed_offline(conn: Connection, follower_id: int, limit: int) -> list[Followed]:
    """Who a user follows that is not live, most recently followed first; blocked accounts
    left out (their profile is not shown)."""
    rows = conn.execute(
        select(follows.c.followee_id, users.c.handle, follows.c.created_at_us)
        .join(users, users.c.id == follows.c.followee_id)
        .where(
            follows.c.follower_id == follower_id,
            users.c.status == UserStatus.ACTIVE.value,
            ~exists().where(_live_stream_of(follows.c.followee_id)),
        )
        .order_by(follows.c.created_at_us.desc(), follows.c.followee_id)
        .limit(min(limit, MAX_FOLLOWING))
    )
    return [Followed(r.followee_id, r.handle, r.created_at_us) for r in rows]


def follow_limiter(
    *, rate_per_s: float = FOLLOW_CHANGES_PER_S, burst: int = FOLLOW_CHANGES_BURST
) -> UserLimit:
    """Following and unfollowing both spend one of the user's allowance, on every node
    together once the app gives it the node's limiter (ratelimit.py)."""
    return UserLimit(
        "follow",
        Rate(rate_per_s, burst),
        code=Code.FOLLOW_RATE_LIMITED,
        detail="too many follows and unfollows too fast; try again in a moment",
    )


def _followee(conn: Connection, follower: User, followee_id: int) -> User:
    require_active(follower)
    if follower.id == followee_id:
        raise Invalid(Code.CANNOT_FOLLOW_SELF, "you cannot follow yourself")
    followee = find_user(conn, followee_id)
    if followee is None:
        raise NotFound(Code.USER_NOT_FOUND, f"no user {followee_id}")
    return followee


def is_following(conn: Connection, follower_id: int, followee_id: int) -> bool:
    row = conn.execute(
        select(follows.c.follower_id).where(
            follows.c.follower_id == follower_id, follows.c.followee_id == followee_id
        )
    ).first()
    return row is not None


def follow(db: Engine, follower: User, followee_id: int, at_us: int) -> tuple[User, bool]:
    """Follow a user: (the followee, whether this call started following them)."""
    try:
        with db.begin() as conn:
            followee = _followee(conn, follower, followee_id)
            if is_following(conn, follower.id, followee_id):
                return followee, False
            if following_count(conn, follower.id) >= MAX_FOLLOWING:
                raise Invalid(
                    Code.FOLLOWING_LIMIT,
                    f"you already follow {MAX_FOLLOWING} people: unfollow some",
                )
            conn.execute(
                insert(follows).values(
                    follower_id=follower.id, followee_id=followee_id, created_at_us=at_us
                )
            )
            return followee, True
    except IntegrityError:  # a concurrent call with the same pair won: already following
        return followee, False


def unfollow(db: Engine, follower: User, followee_id: int) -> bool:
    """Stop following a user; True if they were followed. Unknown users are still 404."""
    with db.begin() as conn:
        _followee(conn, follower, followee_id)
        gone = conn.execute(
            delete(follows).where(
                follows.c.follower_id == follower.id, follows.c.followee_id == followee_id
            )
        )
        return gone.rowcount > 0


def following(conn: Connection, follower_id: int, limit: int = MAX_FOLLOWING) -> list[Followed]:
    """The people a user follows, most recently followed first, with their handles."""
    rows = conn.execute(
        select(follows.c.followee_id, users.c.handle, follows.c.created_at_us)
        .join(users, users.c.id == follows.c.followee_id)
        .where(follows.c.follower_id == follower_id)
        .order_by(follows.c.created_at_us.desc(), follows.c.followee_id)
        .limit(min(limit, MAX_FOLLOWING))
    )
    return [Followed(r.followee_id, r.handle, r.created_at_us) for r in rows]


def following_ids(conn: Connection, follower_id: int) -> list[int]:
    """The ids of the people a user follows, most recently followed first (bounded)."""
    rows = conn.execute(
        select(follows.c.followee_id)
        .where(follows.c.follower_id == follower_id)
        .order_by(follows.c.created_at_us.desc(), follows.c.followee_id)
        .limit(MAX_FOLLOWING)
    )
    return [int(r.followee_id) for r in rows]


def following_count(conn: Connection, follower_id: int) -> int:
    count = conn.execute(
        select(func.count()).select_from(follows).where(follows.c.follower_id == follower_id)
    ).scalar_one()
    return int(count)


def follower_count(conn: Connection, followee_id: int) -> int:
    count = conn.execute(
        select(func.count()).select_from(follows).where(follows.c.followee_id == followee_id)
    ).scalar_one()
    return int(count)


def handles_of(conn: Connection, user_ids: list[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    rows = conn.execute(select(users.c.id, users.c.handle).where(users.c.id.in_(user_ids)))
    return {int(r.id): str(r.handle) for r in rows}


# ---- what the routes and pages read: one connection each (blocking) -----------------------


def follow_and_count(
    db: Engine, follower: User, followee_id: int, at_us: int
) -> tuple[User, bool, int]:
    """``follow``, then the followee's follower count: (followee, whether new, count)."""
    followee, made = follow(db, follower, followee_id, at_us)
    with db.connect() as conn:
        return followee, made, follower_count(conn, followee.id)


def following_page(db: Engine, follower_id: int, limit: int) -> tuple[int, list[Followed]]:
    """(how many the user follows, the most recently followed ``limit`` of them)."""
    with db.connect() as conn:
        return following_count(conn, follower_id), following(conn, follower_id, limit)


def follower_total(db: Engine, user_id: int) -> int:
    """How many people follow the user (404 ``user_not_found``)."""
    with db.connect() as conn:
        if find_user(conn, user_id) is None:
            raise NotFound(Code.USER_NOT_FOUND, f"no user {user_id}")
        return follower_count(conn, user_id)


def ids_followed_by(db: Engine, follower_id: int) -> list[int]:
    with db.connect() as conn:
        return following_ids(conn, follower_id)


def handles(db: Engine, user_ids: list[int]) -> dict[int, str]:
    with db.connect() as conn:
        return handles_of(conn, user_ids)


def creator_followed(db: Engine, follower_id: int, stream_id: str) -> tuple[int | None, list[int]]:
    """(the stream's creator, None for no such stream; the ids the user follows)."""
    with db.connect() as conn:
        stream = find_stream(conn, stream_id)
        if stream is None:
            return None, []
        return stream.creator_id, following_ids(conn, follower_id)


def following_now(
    db: Engine, follower_id: int, live_max: int, offline_max: int
) -> tuple[list[FollowedLive], list[Followed], int]:
    """(who the user follows that is live, some of the others, how many in all)."""
    with db.connect() as conn:
        total = following_count(conn, follower_id)
        if total == 0:
            return [], [], 0
        return (
            followed_live(conn, follower_id, live_max),
            followed_offline(conn, follower_id, offline_max),
            total,
        )
