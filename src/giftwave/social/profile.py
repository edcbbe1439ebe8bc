"""A person's public profile, read in one go: whether they are live now, their published clips,
their followers, whether the one looking follows them, their gifter level and the thank-yous
creators sent them (unless they hide their level from the one looking). A blocked account has
no profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import Engine

from giftwave.clips.library import Clip, ClipStatus, clips_of
from giftwave.identity.users import User, find_by_handle
from giftwave.live.streams import Stream, live_stream_of
from giftwave.live.thanks import Received, received
from giftwave.social.follows import follower_count, is_following
from giftwave.social.level_service import GifterLevel, level_in
from giftwave.social.levels import Curve

PROFILE_CLIPS: Final = 60


@dataclass(frozen=True, slots=True)
class Profile:
    person: User
    stream: Stream | None  # live now
    clips: list[Clip]  # published (ready) only, newest first
    followers: int
    followed: bool  # by the visitor
    level: GifterLevel | None  # None: hidden from the visitor
    # Thank-yous received from creators (live/thanks.py), newest first: shown with the level's
    # "supports most", so a hidden level hides them too.
    thanks: list[Received]


def profile(db: Engine, handle: str, looking: User | None, curve: Curve) -> Profile | None:
    """The profile of @``handle`` as ``looking`` sees it; None: no such person, or blocked.
    Their gifter level on ``curve``, unless they hide it from ``looking``."""
    with db.connect() as conn:
        person = find_by_handle(conn, handle)
        if person is None or person.blocked:
            return None
        # Others see only what is published; a clip being made is the studio's business.
        shown = clips_of(conn, person.id, PROFILE_CLIPS, status=ClipStatus.READY)
        followed = looking is not None and is_following(conn, looking.id, person.id)
        level = level_in(conn, curve, person, looking)
        return Profile(
            person,
            live_stream_of(conn, person.id),
            shown,
            follower_count(conn, person.id),
            followed,
            level,
            [] if level is None else received(conn, person.id),
        )
