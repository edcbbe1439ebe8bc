"""What a route or page asks of thanks (``thanks.py``), one unit of work each: the permission
and the rules inside one transaction or one read. Blocking: callers run them on a worker
thread, then tell the creator's next room (``ThanksPosted``, ``ThanksHidden``) when it is
live."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select

from giftwave.db.tables import streams
from giftwave.identity.users import User
from giftwave.live import thanks
from giftwave.live.streams import Stream, StreamStatus, find_stream
from giftwave.live.thanks import Supporter, Thanks
from giftwave.social.levels import Curve


@dataclass(frozen=True, slots=True)
class Evening:
    """An ended stream as its creator's studio shows it: the supporters and the thank-you."""

    stream: Stream
    supporters: list[Supporter]
    thanks: Thanks | None


@dataclass(frozen=True, slots=True)
class Sent:
    thanks: Thanks
    new: bool
    live_next: str | None  # the creator's next stream, when it is live: its room is told


def evening(db: Engine, creator: User, stream_id: str, curve: Curve) -> Evening:
    """The ended stream's top supporters and its thank-you, for its creator only."""
    with db.connect() as conn:
        stream = thanks.own_ended_stream(conn, creator, stream_id)
        return Evening(
            stream, thanks.supporters(conn, stream_id, curve), thanks.find(conn, stream_id)
        )


def last_evening(db: Engine, creator: User, curve: Curve) -> Evening | None:
    """The studio between streams: the creator's latest ended stream (None: none yet)."""
    s = streams.c
    with db.connect() as conn:
        row = conn.execute(
            select(s.id)
            .where(s.creator_id == creator.id, s.status == StreamStatus.ENDED.value)
            .order_by(s.ended_at_us.desc(), s.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        stream = find_stream(conn, row.id)
        assert stream is not None
        return Evening(
            stream, thanks.supporters(conn, stream.id, curve), thanks.find(conn, stream.id)
        )


# Told of a new thank-you in the transaction that stores it (the webhooks' outbox row).
ThanksObserver = Callable[[Connection, Thanks], object]


def send(
    db: Engine,
    creator: User,
    stream_id: str,
    message: object,
    recipient_ids: Sequence[int] | None,
    observers: Sequence[ThanksObserver] = (),
) -> Sent:
    """Thank the ended stream's supporters (once per stream: see ``thanks.send``); each of
    ``observers`` is told of a new one in its transaction, so what they write exists exactly
    when the thank-you does."""
    with db.begin() as conn:
        sent, new = thanks.send(conn, creator, stream_id, message, recipient_ids)
        if new:
            for observer in observers:
                observer(conn, sent)
        return Sent(sent, new, _live_next(conn, stream_id))


def hide(db: Engine, stream_id: str, by: User) -> str | None:
    """Take the thank-you down; the creator's next stream when it is live (to tell its room)."""
    with db.begin() as conn:
        thanks.hide(conn, stream_id, by)
        return _live_next(conn, stream_id)


def _live_next(conn: Connection, stream_id: str) -> str | None:
    stream = find_stream(conn, stream_id)
    if stream is None:
        return None
    following = thanks.next_stream(conn, stream)
    return following.id if following is not None and following.live else None
