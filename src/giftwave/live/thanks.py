"""Thanks (docs/community.md, "Thanks"): after a stream, its creator thanks its top supporters
once, with one short message; the supporters' profiles list it and the creator's next room
shows it. The rules and the SQL, on a ``Connection`` the service (``thanks_service.py``) opens.

The supporters are the stream's top gifters as its room and the creator's leaderboards count
them (``leaderboard.stream_top_gifters``: committed, unreversed gifts), so the coins a creator
sees here are the ledger's. Only those shown (at most ``SUPPORTERS_MAX``) may be thanked: a
thank-you can never reach someone who did not support the stream. The stream is the
idempotency key: one thank-you per stream, the same request again answers the stored one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from giftwave.clock import now_us
from giftwave.db.id_lists import in_parts
from giftwave.db.tables import (
    gifter_levels,
    stream_thanks,
    stream_thanks_recipients,
    streams,
    users,
)
from giftwave.errors import Code, Conflict, Forbidden, Invalid, NotFound
from giftwave.identity.permissions import require_creator
from giftwave.identity.users import User, UserStatus, require_active
from giftwave.live.chat_rules import CHATS_PER_S, chat_text
from giftwave.live.events import Thanked, ThankedUser
from giftwave.live.leaderboard import stream_top_gifters
from giftwave.live.moderation import require_moderator
from giftwave.live.streams import Stream, StreamStatus, find_stream, get_stream
from giftwave.ratelimit import Rate
from giftwave.social.levels import Curve

SUPPORTERS_MAX: Final = 10  # shown to the creator, and the most one thank-you goes to
# Chat's pace (live.chat_rules) with a larger burst: a form's corrections come in bursts, and a
# stream is thanked once anyway; what it bounds is the cost of refused attempts.
THANKS_RATE: Final = Rate(CHATS_PER_S, 20)
RECEIVED_SHOWN: Final = 20  # on a profile, newest first


@dataclass(frozen=True, slots=True)
class Supporter:
    rank: int
    user_id: int
    handle: str
    coins: int  # committed, unreversed coins gifted in the stream
    level: int | None  # the gifter level badge others see (None: none, or hidden)


@dataclass(frozen=True, slots=True)
class Thanks:
    """A thank-you as stored: who it went to, in the stream's ranking."""

    stream_id: str
    creator_id: int
    stream_title: str
    message: str
    to_all: bool
    recipients: list[ThankedUser]
    created_at_us: int
    hidden: bool

    def news_fields(self) -> Thanked:
        return Thanked(
            stream_id=self.stream_id,
            title=self.stream_title,
            text=self.message,
            recipients=self.recipients,
            at_us=self.created_at_us,
        )


@dataclass(frozen=True, slots=True)
class Received:
    """A thank-you on its recipient's profile: "Thanked by @creator for <title>"."""

    stream_id: str
    creator_handle: str
    stream_title: str
    message: str
    created_at_us: int


def supporters(conn: Connection, stream_id: str, curve: Curve) -> list[Supporter]:
    """The stream's top ``SUPPORTERS_MAX`` gifters, with the level badge others see."""
    top = stream_top_gifters(conn, stream_id, SUPPORTERS_MAX)
    badges = _badges(conn, [t["user_id"] for t in top], curve)
    return [
        Supporter(t["rank"], t["user_id"], t["handle"], t["coins"], badges.get(t["user_id"]))
        for t in top
    ]


def _badges(conn: Connection, user_ids: list[int], curve: Curve) -> dict[int, int]:
    """Level badges as chat shows them (social/level_badges.py): none when hidden or 0."""
    c = gifter_levels.c
    out: dict[int, int] = {}
    for part in in_parts(user_ids):
        for user_id, peak, hidden in conn.execute(
            select(c.user_id, c.peak_coins, c.hidden).where(c.user_id.in_(part))
        ):
            level = curve.level(int(peak))
            if not hidden and level > 0:
                out[int(user_id)] = level
    return out


def own_ended_stream(conn: Connection, creator: User, stream_id: str) -> Stream:
    """``stream_id`` if ``creator`` may thank for it: a stream that exists (404
    stream_not_found, whoever asks), creators only (403 not_a_creator), theirs (403
    not_your_stream), ended (409 stream_still_live: the supporters are final only then)."""
    stream = get_stream(conn, stream_id)
    require_creator(creator, "thank supporters")
    if stream.creator_id != creator.id:
        raise Forbidden(Code.NOT_YOUR_STREAM, "only the stream's creator thanks its supporters")
    if stream.live:
        raise Conflict(Code.STREAM_STILL_LIVE, "thank your supporters once the stream has ended")
    return stream


def send(
    conn: Connection,
    creator: User,
    stream_id: str,
    message: object,
    recipient_ids: Sequence[int] | None,
) -> tuple[Thanks, bool]:
    """The stream's thank-you, and whether it is new. ``recipient_ids`` None: every supporter
    shown; else some of them (each once, at most ``SUPPORTERS_MAX``). The same request again
    answers the stored one; another one is 409 ``thanks_already_sent``."""
    require_active(creator)
    stream = own_ended_stream(conn, creator, stream_id)
    text = chat_text(message, Code.INVALID_MESSAGE)
    chosen = None if recipient_ids is None else _distinct(recipient_ids)
    stored = find(conn, stream_id)
    if stored is not None:
        return _same_or_refused(stored, text, chosen), False
    top = stream_top_gifters(conn, stream_id, SUPPORTERS_MAX)
    by_id = {t["user_id"]: t for t in top}
    if chosen is not None:
        strangers = sorted(u for u in chosen if u not in by_id)
        if strangers:
            raise Invalid(
                Code.NOT_A_SUPPORTER,
                "only the stream's top supporters shown can be thanked",
                user_ids=strangers,
            )
    picked = [t for t in top if chosen is None or t["user_id"] in chosen]
    if not picked:
        raise Conflict(Code.NO_SUPPORTERS, "nobody sent a gift in this stream")
    if not _insert(conn, stream_id, creator.id, text, chosen is None, picked):
        # A concurrent first request won: answer as a retry of it would be answered.
        raced = find(conn, stream_id)
        assert raced is not None
        return _same_or_refused(raced, text, chosen), False
    thanks = find(conn, stream.id)
    assert thanks is not None
    return thanks, True


def _insert(
    conn: Connection,
    stream_id: str,
    creator_id: int,
    text: str,
    to_all: bool,
    picked: list[dict[str, Any]],
) -> bool:
    """The thank-you and its recipients, both or neither, under one savepoint; False when the
    stream's key already held one (made meanwhile by a concurrent request). A refused
    thank-you must leave no recipients, so both rows go under the one savepoint
    (``db.upsert.insert_new`` guards a single statement)."""
    try:
        with conn.begin_nested():
            conn.execute(
                insert(stream_thanks).values(
                    stream_id=stream_id,
                    creator_id=creator_id,
                    message=text,
                    to_all=to_all,
                    created_at_us=now_us(),
                    hidden_by=None,
                )
            )
            conn.execute(
                insert(stream_thanks_recipients),
                [
                    {"stream_id": stream_id, "user_id": t["user_id"], "rank": t["rank"]}
                    | {"coins": t["coins"]}
                    for t in picked
                ],
            )
    except IntegrityError:
        return False
    return True


def _distinct(recipient_ids: Sequence[int]) -> frozenset[int]:
    chosen = frozenset(recipient_ids)
    if len(chosen) != len(recipient_ids):
        raise Invalid(Code.INVALID_REQUEST, "each recipient once")
    if not chosen:
        raise Invalid(Code.INVALID_REQUEST, "choose at least one supporter, or leave it out")
    if len(chosen) > SUPPORTERS_MAX:
        raise Invalid(
            Code.TOO_MANY_RECIPIENTS, f"a thank-you goes to at most {SUPPORTERS_MAX} supporters"
        )
    return chosen


def _same_or_refused(stored: Thanks, text: str, chosen: frozenset[int] | None) -> Thanks:
    """A retry (same message, same recipients, or "all" again) answers the stored thank-you."""
    same_people = (
        stored.to_all
        if chosen is None
        else not stored.to_all and chosen == {r.user_id for r in stored.recipients}
    )
    if stored.message != text or not same_people:
        raise Conflict(Code.THANKS_ALREADY_SENT, "this stream's supporters were thanked already")
    return stored


def find(conn: Connection, stream_id: str) -> Thanks | None:
    """The stream's thank-you, hidden or not."""
    t, s = stream_thanks.c, streams.c
    row = conn.execute(
        select(
            t.stream_id, t.creator_id, t.message, t.to_all, t.created_at_us, t.hidden_by, s.title
        )
        .select_from(stream_thanks.join(streams, s.id == t.stream_id))
        .where(t.stream_id == stream_id)
    ).first()
    if row is None:
        return None
    r = stream_thanks_recipients.c
    recipients = [
        ThankedUser(user_id=int(user_id), handle=handle)
        for user_id, handle in conn.execute(
            select(r.user_id, users.c.handle)
            .join(users, users.c.id == r.user_id)
            .where(r.stream_id == stream_id)
            .order_by(r.rank)
        )
    ]
    return Thanks(
        stream_id=row.stream_id,
        creator_id=int(row.creator_id),
        stream_title=row.title,
        message=row.message,
        to_all=bool(row.to_all),
        recipients=recipients,
        created_at_us=int(row.created_at_us),
        hidden=row.hidden_by is not None,
    )


def hide(conn: Connection, stream_id: str, by: User) -> None:
    """The creator, one of their moderators or an admin takes the thank-you down (from the
    profiles and the room); again: nothing more. 404 stream_not_found / thanks_not_found,
    403 not_moderator."""
    stream = find_stream(conn, stream_id)
    if stream is None:
        raise NotFound(Code.STREAM_NOT_FOUND, "no such stream")
    require_moderator(conn, stream.creator_id, by)
    t = stream_thanks.c
    hidden_by = conn.execute(select(t.hidden_by).where(t.stream_id == stream_id)).first()
    if hidden_by is None:
        raise NotFound(Code.THANKS_NOT_FOUND, "this stream's supporters were not thanked")
    if hidden_by.hidden_by is None:
        conn.execute(update(stream_thanks).where(t.stream_id == stream_id).values(hidden_by=by.id))


def next_stream(conn: Connection, stream: Stream) -> Stream | None:
    """The creator's stream after ``stream`` (the one that shows its thank-you), if any."""
    s = streams.c
    row = conn.execute(
        select(s.id)
        .where(s.creator_id == stream.creator_id, s.started_at_us > stream.started_at_us)
        .order_by(s.started_at_us, s.id)
        .limit(1)
    ).first()
    return None if row is None else find_stream(conn, row.id)


def for_room(conn: Connection, stream_id: str) -> Thanked | None:
    """What the room of ``stream_id`` shows: the thank-you for the creator's stream just
    before it, unless hidden."""
    s = streams.c
    this = conn.execute(select(s.creator_id, s.started_at_us).where(s.id == stream_id)).first()
    if this is None:
        return None
    before = conn.execute(
        select(s.id)
        .where(
            s.creator_id == this.creator_id,
            s.started_at_us < this.started_at_us,
            s.status == StreamStatus.ENDED.value,
        )
        .order_by(s.started_at_us.desc(), s.id.desc())
        .limit(1)
    ).first()
    if before is None:
        return None
    thanks = find(conn, before.id)
    return None if thanks is None or thanks.hidden else thanks.news_fields()


def received(conn: Connection, user_id: int, limit: int = RECEIVED_SHOWN) -> list[Received]:
    """The thank-yous ``user_id`` received and that still show, newest first."""
    t, r, s = stream_thanks.c, stream_thanks_recipients.c, streams.c
    rows = conn.execute(
        select(t.stream_id, users.c.handle, s.title, t.message, t.created_at_us)
        .select_from(
            stream_thanks_recipients.join(stream_thanks, t.stream_id == r.stream_id)
            .join(streams, s.id == t.stream_id)
            .join(users, users.c.id == t.creator_id)
        )
        .where(
            r.user_id == user_id, t.hidden_by.is_(None), users.c.status != UserStatus.BLOCKED.value
        )
        .order_by(t.created_at_us.desc(), t.stream_id)
        .limit(limit)
    ).all()
    return [
        Received(row.stream_id, row.handle, row.title, row.message, int(row.created_at_us))
        for row in rows
    ]
