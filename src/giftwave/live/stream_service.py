"""What a creator does with a stream, one call each: the permission, then the unit of work
(one transaction) around the rules of ``streams.py`` and ``goals.py``. Blocking: a route
runs them on a worker thread, opens no transaction and checks no role."""

from __future__ import annotations

from sqlalchemy import Engine

from giftwave.errors import Code, Conflict, Forbidden
from giftwave.identity.permissions import require_creator
from giftwave.identity.users import User, find_user, require_active
from giftwave.live.gift_rate import recent_gifts_per_second
from giftwave.live.goals import Goal, GoalKind, clear_goal, set_goal
from giftwave.live.overlay_keys import creator_of_key, overlay_key
from giftwave.live.streams import (
    Stream,
    end_stream,
    find_stream,
    get_stream,
    live_stream_of,
    live_with_creators,
    start_stream,
)
from giftwave.notify.notices import NoticeKind
from giftwave.notify.service import Notifications


def go_live(
    db: Engine,
    user: User,
    *,
    title: str,
    language: str,
    playback_url: str | None,
    notices: Notifications | None = None,
) -> Stream:
    """A creator's new live stream (one at a time); once committed, the opted-in followers
    are told (the inbox and their browsers)."""
    require_creator(user, "go live")
    require_active(user)
    with db.begin() as conn:
        started = start_stream(
            conn, user.id, title=title, language=language, playback_url=playback_url
        )
    if notices is not None:
        notices.tell_followers(
            user.id, NoticeKind.LIVE, started.id, {"stream_id": started.id, "title": title}
        )
    return started


def end(db: Engine, stream_id: str, user: User, *, admin: bool) -> Stream:
    """The stream ended by its creator or an admin (again: as it is)."""
    with db.begin() as conn:
        return end_stream(conn, stream_id, user.id, admin=admin)


def live_now(db: Engine, limit: int = 100) -> list[tuple[Stream, str]]:
    """The live streams, newest first, each with its creator's handle."""
    with db.connect() as conn:
        return live_with_creators(conn, limit)


def with_creator(db: Engine, stream_id: str) -> tuple[Stream, User | None] | None:
    """A stream (live or ended) and its creator, for its page; None: no such stream."""
    with db.connect() as conn:
        found = find_stream(conn, stream_id)
        if found is None:
            return None
        return found, find_user(conn, found.creator_id)


def overlay_target(db: Engine, key: str, stream_id: str) -> tuple[int | None, Stream | None]:
    """Whose overlay ``key`` is (None: nobody's), and the stream it shows: ``stream_id``, or
    with ``live`` the creator's stream live now (None: none, or no such stream)."""
    with db.connect() as conn:
        creator_id = creator_of_key(conn, key)
        if creator_id is None:
            return None, None
        if stream_id == "live":
            return creator_id, live_stream_of(conn, creator_id)
        return creator_id, find_stream(conn, stream_id)


def studio_state(
    db: Engine, creator: User, at_us: int
) -> tuple[Stream | None, str, list[tuple[int, int]]]:
    """The creator's studio: the stream live now, the overlay key (made at the first ask) and
    the live stream's gifts per second of the last minute."""
    with db.begin() as conn:
        live = live_stream_of(conn, creator.id)
        key = overlay_key(conn, creator.id)
        # "Gifts per minute" starts from what the stream already had, not from 0.
        recent = [] if live is None else recent_gifts_per_second(conn, live.id, creator.id, at_us)
    return live, key, recent


def stream(db: Engine, stream_id: str) -> Stream:
    with db.connect() as conn:
        return get_stream(conn, stream_id)


def _require_owner(stream: Stream, user: User, doing: str) -> None:
    if stream.creator_id != user.id:
        raise Forbidden(Code.NOT_YOUR_STREAM, f"only the stream's creator {doing}")


def set_stream_goal(
    db: Engine,
    stream_id: str,
    user: User,
    *,
    kind: GoalKind,
    target: int,
    title: str,
    gift_id: str | None,
) -> Goal:
    """The stream's new goal, by its creator, while it is live."""
    with db.begin() as conn:
        found = get_stream(conn, stream_id)
        _require_owner(found, user, "sets its goal")
        if not found.live:
            raise Conflict(Code.STREAM_NOT_LIVE, "goals are for live streams")
        return set_goal(conn, stream_id, kind, target, title, gift_id)


def clear_stream_goal(db: Engine, stream_id: str, user: User) -> None:
    with db.begin() as conn:
        _require_owner(get_stream(conn, stream_id), user, "clears its goal")
        clear_goal(conn, stream_id)
