"""Fan clubs: a creator's club, its members, their points and levels. The rules (names, the
points formula, levels) are pure functions of plain values; the SQL below only loads and writes
(docs/community.md). Who may chat in the creator's rooms is the creator's setting, not the
club's (``chat_settings.py``), though two of its modes are for club members.

Decisions, documented there: one club per creator (renaming keeps the members); joining twice
answers the same membership; leaving is idempotent (204 whether a member or not) and forgets
the points, so rejoining starts fresh; a member the creator removed may join again (a ban is
what keeps someone out of a creator's rooms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import ColumnElement, Connection, Select, delete, func, insert, select, update

from giftwave.db.tables import fan_club_members, fan_clubs, gift_catalog, users
from giftwave.db.upsert import insert_new
from giftwave.errors import Code, Invalid, NotFound
from giftwave.identity.permissions import require_creator
from giftwave.identity.users import User

NAME_MIN_CHARS: Final = 2
NAME_MAX_CHARS: Final = 24
LIST_MAX: Final = 200  # members per page of the studio's list
ENTRY_KEY_PREFIX: Final = "club-join:"  # a joining gift's idempotency key starts so

# The published points table (docs/community.md): what each thing a member does is worth.
POINTS_PER_COIN: Final = 10
POINTS_PER_LIKE: Final = 1
POINTS_PER_WATCH_MINUTE: Final = 5
# Points needed for each level, level 1 first (docs/community.md).
DEFAULT_LEVEL_POINTS: Final = (0, 100, 500, 1_500, 4_000, 10_000, 25_000, 60_000, 150_000, 400_000)
MAX_LEVELS: Final = 50


@dataclass(frozen=True, slots=True)
class Levels:
    """Points needed for each level: starts at 0, strictly increasing, at most MAX_LEVELS."""

    points: tuple[int, ...] = DEFAULT_LEVEL_POINTS

    def __post_init__(self) -> None:
        if not 1 <= len(self.points) <= MAX_LEVELS or self.points[0] != 0:
            raise ValueError(f"club levels are 1..{MAX_LEVELS} thresholds, the first 0")
        if any(b <= a for a, b in zip(self.points, self.points[1:], strict=False)):
            raise ValueError("club level thresholds must increase strictly")

    @property
    def top(self) -> int:
        return len(self.points)

    def level(self, points: int) -> int:
        """The level ``points`` reach (1 from the first point, and below)."""
        reached = 1
        for n, needed in enumerate(self.points, start=1):
            if points >= needed:
                reached = n
        return reached


LEVELS: Final = Levels()


def points_of(gift_coins: int, likes: int, watch_s: int) -> int:
    """A member's points from what they did: exact, whatever order it was counted in."""
    return (
        gift_coins * POINTS_PER_COIN
        + likes * POINTS_PER_LIKE
        + (watch_s // 60) * POINTS_PER_WATCH_MINUTE
    )


def points_sql(
    gift_coins: ColumnElement[int], likes: ColumnElement[int], watch_s: ColumnElement[int]
) -> ColumnElement[int]:
    """``points_of`` in SQL (integer division on both databases), for an UPDATE that adds."""
    return (
        gift_coins * POINTS_PER_COIN
        + likes * POINTS_PER_LIKE
        + (watch_s / 60) * POINTS_PER_WATCH_MINUTE
    )


def clean_name(name: str) -> str:
    """A club's name as stored, or 422 ``invalid_club_name``."""
    cleaned = name.strip()
    if not NAME_MIN_CHARS <= len(cleaned) <= NAME_MAX_CHARS:
        raise Invalid(
            Code.INVALID_CLUB_NAME, f"a club name is {NAME_MIN_CHARS}..{NAME_MAX_CHARS} characters"
        )
    if not cleaned.isprintable():
        raise Invalid(Code.INVALID_CLUB_NAME, "a club name may not contain control characters")
    return cleaned


@dataclass(frozen=True, slots=True)
class Club:
    creator_id: int
    name: str
    entry_gift_id: str | None


@dataclass(frozen=True, slots=True)
class Member:
    user_id: int
    handle: str
    points: int
    level: int
    gift_coins: int
    likes: int
    watch_s: int
    joined_at_us: int
    last_seen_at_us: int


def _club(row: object) -> Club:
    m = row._mapping  # type: ignore[attr-defined]
    return Club(
        creator_id=int(m["creator_id"]),
        name=str(m["name"]),
        entry_gift_id=m["entry_gift_id"],
    )


def find_club(conn: Connection, creator_id: int) -> Club | None:
    row = conn.execute(select(fan_clubs).where(fan_clubs.c.creator_id == creator_id)).first()
    return None if row is None else _club(row)


def get_club(conn: Connection, creator_id: int) -> Club:
    club = find_club(conn, creator_id)
    if club is None:
        raise NotFound(Code.CLUB_NOT_FOUND, "this creator has no fan club")
    return club


def save_club(
    conn: Connection, creator: User, name: str, entry_gift_id: str | None, at_us: int
) -> tuple[Club, bool]:
    """The creator's club named (made, or renamed: members kept); (it, whether new)."""
    require_creator(creator, "have a fan club")
    cleaned = clean_name(name)
    if entry_gift_id is not None and not _gift_exists(conn, entry_gift_id):
        raise NotFound(Code.GIFT_NOT_FOUND, f"there is no gift {entry_gift_id!r}")
    fields = {"name": cleaned, "entry_gift_id": entry_gift_id, "updated_at_us": at_us}
    made = insert_new(
        conn,
        insert(fan_clubs).values(
            creator_id=creator.id,
            created_at_us=at_us,
            **fields,
        ),
    )
    if not made:
        conn.execute(update(fan_clubs).where(fan_clubs.c.creator_id == creator.id).values(**fields))
    return get_club(conn, creator.id), made


def _gift_exists(conn: Connection, gift_id: str) -> bool:
    found = conn.execute(
        select(gift_catalog.c.gift_id).where(gift_catalog.c.gift_id == gift_id).limit(1)
    ).first()
    return found is not None


def enroll(
    conn: Connection, creator_id: int, user_id: int, at_us: int, entry_send_id: str | None
) -> bool:
    """``user_id`` a member (whether new): a second join finds the first row and keeps it.
    With ``entry_send_id`` the row waits, not yet a member, for that gift (``activate``)."""
    return insert_new(
        conn,
        insert(fan_club_members).values(
            creator_id=creator_id,
            user_id=user_id,
            entry_send_id=entry_send_id,
            active=entry_send_id is None,
            joined_at_us=at_us,
            last_seen_at_us=at_us,
        ),
    )


def pending_entry(conn: Connection, creator_id: int, user_id: int) -> tuple[bool, str | None]:
    """(a member already, the entry gift a waiting row waits for); (False, None): no row."""
    c = fan_club_members.c
    row = conn.execute(
        select(c.active, c.entry_send_id).where(c.creator_id == creator_id, c.user_id == user_id)
    ).first()
    return (False, None) if row is None else (bool(row.active), row.entry_send_id)


def wait_for_entry(conn: Connection, creator_id: int, user_id: int, send_id: str) -> None:
    """A waiting row now waits for ``send_id`` (a join again with another key)."""
    c = fan_club_members.c
    conn.execute(
        update(fan_club_members)
        .where(c.creator_id == creator_id, c.user_id == user_id, c.active.is_(False))
        .values(entry_send_id=send_id)
    )


def activate(conn: Connection, creator_id: int, user_id: int, send_id: str) -> bool:
    """The row waiting for ``send_id`` (committed) becomes a member; False: none waits (left
    meanwhile, or done already)."""
    c = fan_club_members.c
    done = conn.execute(
        update(fan_club_members)
        .where(
            c.creator_id == creator_id,
            c.user_id == user_id,
            c.entry_send_id == send_id,
            c.active.is_(False),
        )
        .values(active=True)
    )
    return done.rowcount > 0


def forget_entry(conn: Connection, creator_id: int, user_id: int, send_id: str) -> None:
    """The entry gift was refused: the row waiting for it goes."""
    c = fan_club_members.c
    conn.execute(
        delete(fan_club_members).where(
            c.creator_id == creator_id,
            c.user_id == user_id,
            c.entry_send_id == send_id,
            c.active.is_(False),
        )
    )


def level_of(conn: Connection, creator_id: int, user_id: int) -> int | None:
    """A member's level, or None for someone who is not one."""
    points = conn.execute(
        select(fan_club_members.c.points).where(
            fan_club_members.c.creator_id == creator_id,
            fan_club_members.c.user_id == user_id,
            fan_club_members.c.active.is_(True),
        )
    ).scalar()
    return None if points is None else LEVELS.level(int(points))


def drop_member(conn: Connection, creator_id: int, user_id: int) -> bool:
    """Whether they were a member (their points go with the row)."""
    gone = conn.execute(
        delete(fan_club_members).where(
            fan_club_members.c.creator_id == creator_id, fan_club_members.c.user_id == user_id
        )
    )
    return gone.rowcount > 0


def _member(row: object) -> Member:
    m = row._mapping  # type: ignore[attr-defined]
    return Member(
        user_id=int(m["user_id"]),
        handle=str(m["handle"]),
        points=int(m["points"]),
        level=LEVELS.level(int(m["points"])),
        gift_coins=int(m["gift_coins"]),
        likes=int(m["likes"]),
        watch_s=int(m["watch_s"]),
        joined_at_us=int(m["joined_at_us"]),
        last_seen_at_us=int(m["last_seen_at_us"]),
    )


def _members_query() -> Select[tuple[int, str, int, int, int, int, int, int]]:
    c = fan_club_members.c
    return (
        select(
            c.user_id,
            users.c.handle,
            c.points,
            c.gift_coins,
            c.likes,
            c.watch_s,
            c.joined_at_us,
            c.last_seen_at_us,
        )
        .join(users, users.c.id == c.user_id)
        .where(c.active.is_(True))
    )


def members_of(conn: Connection, creator_id: int, limit: int, offset: int) -> list[Member]:
    """Most points first (then the earliest to join)."""
    c = fan_club_members.c
    query = (
        _members_query()
        .where(c.creator_id == creator_id)
        .order_by(c.points.desc(), c.joined_at_us, c.user_id)
        .limit(min(limit, LIST_MAX))
        .offset(offset)
    )
    return [_member(r) for r in conn.execute(query)]


def member(conn: Connection, creator_id: int, user_id: int) -> Member | None:
    c = fan_club_members.c
    row = conn.execute(
        _members_query().where(c.creator_id == creator_id, c.user_id == user_id)
    ).first()
    return None if row is None else _member(row)


def member_count(conn: Connection, creator_id: int) -> int:
    return int(
        conn.execute(
            select(func.count()).where(
                fan_club_members.c.creator_id == creator_id, fan_club_members.c.active.is_(True)
            )
        ).scalar_one()
    )
