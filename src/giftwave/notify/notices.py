"""Notices: what a creator did that their opted-in followers hear of (went live, a battle
started, a goal is close), each a row in the follower's inbox and, when the day's cap and the
quiet hours allow, a push job per browser, written in one transaction.

Dedup by (user, kind, subject): one "went live" per stream per user, however often a producer
runs. The daily cap counts pushed notices since midnight in the user's time zone (UTC when the
user set none); inside quiet hours a notice reaches the inbox and is not pushed.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection, func, select, update

from giftwave.db.tables import notices, notify_optins, push_jobs, users
from giftwave.db.upsert import insert_for
from giftwave.errors import Code, Invalid, NotFound
from giftwave.notify.preferences import (
    QuietHours,
    opt_out,
    quiet_hours_of,
    subscriptions_of,
)
from giftwave.notify.vapid import b64url, b64url_decode

FANOUT_CHUNK: Final = 500  # followers per round of queries
MAX_FANOUT: Final = 1_000_000  # followers one notice reaches at most (a bound on the loop)
UNSUBSCRIBE_PURPOSE: Final = "giftwave notify unsubscribe v1"
PENDING: Final = "pending"


class NoticeKind(enum.StrEnum):
    LIVE = "live"
    BATTLE = "battle"
    GOAL = "goal"


@dataclass(frozen=True, slots=True)
class NoticePolicy:
    daily_cap: int
    unsubscribe_key: bytes  # signs one-click unsubscribe tokens


@dataclass(frozen=True, slots=True)
class Notice:
    id: int
    creator_id: int
    kind: NoticeKind
    subject: str
    payload: dict[str, Any]
    pushed: bool
    created_at_us: int
    read: bool


def unsubscribe_token(key: bytes, user_id: int, creator_id: int) -> str:
    """A single-purpose token: it turns off ``creator_id``'s notices for ``user_id``, nothing
    else (no session in it, so a link carrying it signs nobody in)."""
    message = f"{UNSUBSCRIBE_PURPOSE}:{user_id}:{creator_id}".encode()
    mac = hmac.new(key, message, hashlib.sha256).digest()[:16]
    return f"{user_id}.{creator_id}.{b64url(mac)}"


def read_unsubscribe_token(key: bytes, token: str) -> tuple[int, int]:
    bad = Invalid(Code.INVALID_UNSUBSCRIBE_TOKEN, "this unsubscribe link is not valid")
    parts = token.split(".") if len(token) <= 100 else []
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        raise bad
    user_id, creator_id = int(parts[0]), int(parts[1])
    try:
        given = b64url_decode(parts[2])
    except ValueError:
        raise bad from None
    expected = b64url_decode(unsubscribe_token(key, user_id, creator_id).split(".")[2])
    if not hmac.compare_digest(given, expected):
        raise bad
    return user_id, creator_id


def unsubscribe(conn: Connection, key: bytes, token: str) -> tuple[int, int]:
    """The token's opt-in removed (again: nothing to remove); (user, creator)."""
    user_id, creator_id = read_unsubscribe_token(key, token)
    opt_out(conn, user_id, creator_id)
    return user_id, creator_id


def local_day_start_us(now_us: int, zone: str) -> int:
    local = datetime.fromtimestamp(now_us / 1e6, tz=ZoneInfo(zone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(midnight.timestamp() * 1_000_000)


def is_quiet(now_us: int, quiet: QuietHours | None) -> bool:
    if quiet is None or quiet.from_h == quiet.to_h:
        return False
    hour = datetime.fromtimestamp(now_us / 1e6, tz=ZoneInfo(quiet.time_zone)).hour
    if quiet.from_h < quiet.to_h:
        return quiet.from_h <= hour < quiet.to_h
    return hour >= quiet.from_h or hour < quiet.to_h  # across midnight: 22 → 7


def _pushed_today(
    conn: Connection, user_ids: Sequence[int], quiet: dict[int, QuietHours], now_us: int
) -> dict[int, int]:
    # One bound for the chunk (the earliest local midnight among them, at most a day back),
    # then each user's own midnight in Python.
    earliest = now_us - int(timedelta(hours=50).total_seconds() * 1e6)
    n = notices.c
    rows = conn.execute(
        select(n.user_id, n.created_at_us).where(
            n.user_id.in_(user_ids), n.pushed.is_(True), n.created_at_us >= earliest
        )
    )
    counts: dict[int, int] = {}
    starts = {
        u: local_day_start_us(now_us, quiet[u].time_zone if u in quiet else "UTC") for u in user_ids
    }
    for user_id, at_us in rows:
        if at_us >= starts[int(user_id)]:
            counts[int(user_id)] = counts.get(int(user_id), 0) + 1
    return counts


def notify_followers(
    conn: Connection,
    policy: NoticePolicy,
    *,
    creator_id: int,
    kind: NoticeKind,
    subject: str,
    payload: dict[str, Any],
    now_us: int,
) -> int:
    """The notice in the inbox of each follower opted in to ``creator_id`` and, where the cap
    and quiet hours allow, a push job per browser; how many inbox rows are new. Run in the
    caller's transaction (all or nothing), after the change it tells of committed."""
    body = notice_body(conn, creator_id, kind, payload)
    made = 0
    after = -1
    for _ in range(MAX_FANOUT // FANOUT_CHUNK):
        chunk = followers_after(conn, creator_id, after)
        if not chunk:
            break
        after = chunk[-1]
        made += notify_chunk(conn, policy, chunk, creator_id, kind, subject, body, now_us)
    return made


def notice_body(
    conn: Connection, creator_id: int, kind: NoticeKind, payload: dict[str, Any]
) -> dict[str, Any]:
    """What every follower's notice says (their own unsubscribe token is added per user)."""
    handle = conn.execute(select(users.c.handle).where(users.c.id == creator_id)).scalar()
    return {**payload, "kind": kind.value, "creator_id": creator_id, "creator": handle}


def followers_after(conn: Connection, creator_id: int, after_user_id: int) -> list[int]:
    """The next chunk of the creator's opted-in followers, in id order after ``after_user_id``."""
    o = notify_optins.c
    return [
        int(u)
        for (u,) in conn.execute(
            select(o.user_id)
            .where(o.creator_id == creator_id, o.user_id > after_user_id)
            .order_by(o.user_id)
            .limit(FANOUT_CHUNK)
        )
    ]


def notify_chunk(
    conn: Connection,
    policy: NoticePolicy,
    user_ids: list[int],
    creator_id: int,
    kind: NoticeKind,
    subject: str,
    body: dict[str, Any],
    now_us: int,
) -> int:
    quiet = quiet_hours_of(conn, user_ids)
    today = _pushed_today(conn, user_ids, quiet, now_us)
    browsers = subscriptions_of(conn, user_ids)
    rows = []
    for user_id in user_ids:
        push = (
            bool(browsers.get(user_id))
            and today.get(user_id, 0) < policy.daily_cap
            and not is_quiet(now_us, quiet.get(user_id))
        )
        token = unsubscribe_token(policy.unsubscribe_key, user_id, creator_id)
        rows.append(
            {
                "user_id": user_id,
                "creator_id": creator_id,
                "kind": kind.value,
                "subject": subject,
                "payload": orjson.dumps({**body, "unsubscribe": token}).decode(),
                "pushed": push,
                "created_at_us": now_us,
            }
        )
    # One statement for the chunk; a notice told already (one per subject) is skipped by the
    # unique constraint and returns no row, so gets no push jobs either.
    statement = (
        insert_for(conn, notices)
        .on_conflict_do_nothing()
        .returning(notices.c.id, notices.c.user_id, notices.c.pushed)
    )
    made = conn.execute(statement, rows).all()  # "insertmanyvalues": one compiled statement
    jobs = [
        {
            "notice_id": int(notice_id),
            "subscription_id": sub.id,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at_us": now_us,
            "created_at_us": now_us,
        }
        for notice_id, user_id, pushed in made
        if pushed
        for sub in browsers[int(user_id)]
    ]
    if jobs:
        conn.execute(push_jobs.insert(), jobs)
    return len(made)


def inbox_page(
    conn: Connection, user_id: int, *, limit: int, before_id: int | None
) -> tuple[list[Notice], int]:
    """Newest first, and how many are unread."""
    n = notices.c
    query = select(notices).where(n.user_id == user_id)
    if before_id is not None:
        query = query.where(n.id < before_id)
    rows = conn.execute(query.order_by(n.id.desc()).limit(limit)).all()
    unread = conn.execute(
        select(func.count()).where(n.user_id == user_id, n.read_at_us.is_(None))
    ).scalar_one()
    return [
        Notice(
            id=int(r.id),
            creator_id=int(r.creator_id),
            kind=NoticeKind(r.kind),
            subject=r.subject,
            payload=orjson.loads(r.payload),
            pushed=bool(r.pushed),
            created_at_us=int(r.created_at_us),
            read=r.read_at_us is not None,
        )
        for r in rows
    ], int(unread)


def mark_read(conn: Connection, user_id: int, notice_id: int | None, at_us: int) -> int:
    """One notice (``notice_id``) or all of the user's, read; how many changed."""
    n = notices.c
    where = [n.user_id == user_id, n.read_at_us.is_(None)]
    if notice_id is not None:
        exists = conn.execute(select(n.id).where(n.id == notice_id, n.user_id == user_id)).scalar()
        if exists is None:
            raise NotFound(Code.NOTICE_NOT_FOUND, "no such notice in your inbox")
        where.append(n.id == notice_id)
    return int(conn.execute(update(notices).where(*where).values(read_at_us=at_us)).rowcount)
