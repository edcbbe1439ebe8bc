"""Who a share brought in and what they did: touches, credits (first and last touch), reach.

A *touch* is a user coming through a link: opening it logged in, or signing up or joining a
room with the link's cookie. An event (sign-up, room join, gift) by a touched user within the
attribution window after a touch is credited twice: to the earliest touch inside the window
(first touch) and to the latest (last touch); both may be the same link. A sharer's own touches
are never recorded, so nothing of their own counts for them.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from sqlalchemy import ColumnElement, Connection, Table, and_, case, exists, func, or_, select

from giftwave.db.tables import (
    gift_sends,
    share_attributions,
    share_links,
    share_touches,
    share_visits,
    users,
)
from giftwave.db.upsert import insert_for
from giftwave.sharing.links import TargetKind

# Sharer badges by unique visitors brought in: one place, shown by the reach page and the API.
BADGES: Final = (("spark", 10), ("amplifier", 100), ("beacon", 1_000))
MAX_SHARERS: Final = 100


class Event(enum.StrEnum):
    SIGNUP = "signup"
    JOIN = "join"
    GIFT = "gift"


class Touch(enum.StrEnum):
    FIRST = "first"
    LAST = "last"


@dataclass(frozen=True, slots=True)
class Touched:
    share_id: int
    sharer_id: int
    at_us: int


def _insert_once(conn: Connection, table: Table, rows: list[dict[str, object]]) -> None:
    """Insert the rows the table's unique keys do not have yet; the others are left alone."""
    if not rows:
        return
    conn.execute(insert_for(conn, table).on_conflict_do_nothing(), rows)


def record_touches(conn: Connection, user_id: int, touched: list[Touched]) -> int:
    """Remember that ``user_id`` came through these links (not their own); how many count."""
    rows: list[dict[str, object]] = [
        {"user_id": user_id, "share_id": t.share_id, "touched_at_us": t.at_us}
        for t in touched
        if t.sharer_id != user_id
    ]
    _insert_once(conn, share_touches, rows)
    return len(rows)


def touches_of(conn: Connection, user_id: int, since_us: int) -> list[Touched]:
    """The user's touches since ``since_us``, oldest first."""
    return touches_of_users(conn, [user_id], since_us).get(user_id, [])


def touches_of_users(
    conn: Connection, user_ids: Collection[int], since_us: int
) -> dict[int, list[Touched]]:
    """Each user's touches since ``since_us``, oldest first, in one query; users with none
    are not in the answer."""
    rows = conn.execute(
        select(
            share_touches.c.user_id,
            share_touches.c.share_id,
            share_links.c.sharer_id,
            share_touches.c.touched_at_us,
        )
        .join(share_links, share_links.c.id == share_touches.c.share_id)
        .where(share_touches.c.user_id.in_(user_ids), share_touches.c.touched_at_us >= since_us)
        .order_by(share_touches.c.touched_at_us, share_touches.c.share_id)
    ).all()
    touched: dict[int, list[Touched]] = {}
    for r in rows:
        touched.setdefault(int(r[0]), []).append(Touched(int(r[1]), int(r[2]), int(r[3])))
    return touched


def credit_rows(
    user_id: int,
    touched: list[Touched],
    event: Event,
    event_key: str,
    *,
    at_us: int,
    window_us: int,
    stream_id: str | None = None,
    coins: int = 0,
) -> list[dict[str, object]]:
    """The credits of one event, as rows for ``record_credits``: none (no touch inside the
    window), or one for the first and one for the last touch inside it.

    ``touched`` is the user's touches (``touches_of``); each event is credited once per touch
    kind, however often it is reported (unique key), so retries and replays are harmless."""
    assert coins >= 0
    inside = [
        t for t in touched if at_us - window_us <= t.at_us <= at_us and t.sharer_id != user_id
    ]
    if not inside:
        return []
    first, last = inside[0], inside[-1]
    return [
        {
            "share_id": t.share_id,
            "sharer_id": t.sharer_id,
            "user_id": user_id,
            "touch": touch.value,
            "event": event.value,
            "event_key": event_key,
            "stream_id": stream_id,
            "coins": coins,
            "at_us": at_us,
        }
        for touch, t in ((Touch.FIRST, first), (Touch.LAST, last))
    ]


def record_credits(conn: Connection, rows: list[dict[str, object]]) -> None:
    """Insert credits (``credit_rows``) the table does not hold yet: an event reported again
    is credited once."""
    _insert_once(conn, share_attributions, rows)


@dataclass(frozen=True, slots=True)
class Credits:
    signups: int = 0
    joins: int = 0  # people who joined a room (each person once)
    gifters: int = 0
    coins: int = 0


@dataclass(frozen=True, slots=True)
class Badge:
    id: str
    threshold: int


@dataclass(frozen=True, slots=True)
class Reach:
    links: int
    visits: int
    unique_visitors: int
    first_touch: Credits
    last_touch: Credits
    badges: list[Badge]
    next_badge: Badge | None


def badges_for(unique_visitors: int) -> tuple[list[Badge], Badge | None]:
    earned = [Badge(b, n) for b, n in BADGES if unique_visitors >= n]
    upcoming = [Badge(b, n) for b, n in BADGES if unique_visitors < n]
    return earned, (upcoming[0] if upcoming else None)


def _standing() -> ColumnElement[bool]:
    """An attribution still counts: it is not of a gift reversed since (moderation, a refund).
    Read, not edited: the credit stays on record, the reversal decides what it is worth."""
    a = share_attributions.c
    g = gift_sends.c
    reversed_gift = (
        exists()
        .where(g.transfer_id == a.event_key + ":c", g.reversed.is_(True))
        .correlate(share_attributions)
    )
    return or_(a.event != Event.GIFT.value, ~reversed_gift)


def _credits_of(conn: Connection, sharer_id: int) -> dict[str, Credits]:
    a = share_attributions.c
    rows = conn.execute(
        select(
            a.touch,
            func.count(func.distinct(case((a.event == Event.SIGNUP.value, a.user_id)))),
            func.count(func.distinct(case((a.event == Event.JOIN.value, a.user_id)))),
            func.count(func.distinct(case((a.event == Event.GIFT.value, a.user_id)))),
            func.coalesce(func.sum(case((a.event == Event.GIFT.value, a.coins), else_=0)), 0),
        )
        .where(a.sharer_id == sharer_id, _standing())
        .group_by(a.touch)
    ).all()
    return {str(r[0]): Credits(int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}


def reach_of(conn: Connection, sharer_id: int) -> Reach:
    """What a sharer's links did: visits and visitors, and what those people did next."""
    links = int(
        conn.execute(select(func.count()).where(share_links.c.sharer_id == sharer_id)).scalar_one()
    )
    visits, visitors = conn.execute(
        select(func.count(), func.count(func.distinct(share_visits.c.visitor_hash)))
        .select_from(share_visits.join(share_links, share_links.c.id == share_visits.c.share_id))
        .where(share_links.c.sharer_id == sharer_id)
    ).one()
    credits = _credits_of(conn, sharer_id)
    earned, upcoming = badges_for(int(visitors))
    return Reach(
        links=links,
        visits=int(visits),
        unique_visitors=int(visitors),
        first_touch=credits.get(Touch.FIRST.value, Credits()),
        last_touch=credits.get(Touch.LAST.value, Credits()),
        badges=earned,
        next_badge=upcoming,
    )


@dataclass(frozen=True, slots=True)
class StreamSharer:
    user_id: int
    handle: str
    visits: int
    unique_visitors: int
    signups: int  # last touch, like every count here: the link that finally brought them
    gifters: int
    coins: int  # gifted to this stream


def stream_sharers(conn: Connection, stream_id: str, limit: int) -> list[StreamSharer]:
    """Who brought people to a stream, most coins gifted to it (last touch) first."""
    assert 1 <= limit <= MAX_SHARERS
    link = share_links.c
    visits = (
        select(
            link.sharer_id.label("sharer_id"),
            func.count(share_visits.c.id).label("visits"),
            func.count(func.distinct(share_visits.c.visitor_hash)).label("visitors"),
        )
        .select_from(share_links.outerjoin(share_visits, share_visits.c.share_id == link.id))
        .where(link.target_kind == TargetKind.STREAM.value, link.target_id == stream_id)
        .group_by(link.sharer_id)
        .subquery()
    )
    a = share_attributions.c
    stream_links = select(link.id).where(
        link.target_kind == TargetKind.STREAM.value, link.target_id == stream_id
    )
    credited = (
        select(
            a.sharer_id.label("sharer_id"),
            func.count(func.distinct(case((a.event == Event.SIGNUP.value, a.user_id)))).label(
                "signups"
            ),
            func.count(
                func.distinct(
                    case((and_(a.event == Event.GIFT.value, a.stream_id == stream_id), a.user_id))
                )
            ).label("gifters"),
            func.coalesce(
                func.sum(
                    case(
                        (and_(a.event == Event.GIFT.value, a.stream_id == stream_id), a.coins),
                        else_=0,
                    )
                ),
                0,
            ).label("coins"),
        )
        .where(a.touch == Touch.LAST.value, a.share_id.in_(stream_links), _standing())
        .group_by(a.sharer_id)
        .subquery()
    )
    coins = func.coalesce(credited.c.coins, 0)
    rows = conn.execute(
        select(
            visits.c.sharer_id,
            users.c.handle,
            visits.c.visits,
            visits.c.visitors,
            func.coalesce(credited.c.signups, 0),
            func.coalesce(credited.c.gifters, 0),
            coins,
        )
        .select_from(
            visits.join(users, users.c.id == visits.c.sharer_id).outerjoin(
                credited, credited.c.sharer_id == visits.c.sharer_id
            )
        )
        .order_by(coins.desc(), visits.c.visitors.desc(), visits.c.sharer_id)
        .limit(limit)
    ).all()
    return [StreamSharer(int(r[0]), str(r[1]), *(int(x) for x in r[2:])) for r in rows]


def record_visit(
    conn: Connection, share_id: int, visitor_hash: str, user_id: int | None, at_us: int
) -> None:
    conn.execute(
        share_visits.insert().values(
            share_id=share_id, visitor_hash=visitor_hash, user_id=user_id, visited_at_us=at_us
        )
    )
