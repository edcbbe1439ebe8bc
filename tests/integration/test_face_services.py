"""The rules the routers used to hold, called without a route: who may change a clip (before
what the change says), what a reaction may be, who may read a stream's figures, and the 404s
of the share reads. The API answers each with the code asserted here (test_clips_api.py,
test_analytics_api.py, test_sharing.py)."""

from __future__ import annotations

from datetime import date
from typing import Final

import pytest
from sqlalchemy import Engine

from giftwave.analytics import figures
from giftwave.clips import clip_service
from giftwave.clips.library import ClipSource, ClipStatus, insert_clip
from giftwave.clock import now_us
from giftwave.config import Settings
from giftwave.errors import Code, Forbidden, Invalid, NotFound
from giftwave.identity.users import AgeRule, Role, User, create_user
from giftwave.live import stream_service
from giftwave.sharing.service import Sharing

TODAY: Final = date(2026, 12, 6)
AGE: Final = AgeRule(min_age=18, by_country={})


def _user(db: Engine, handle: str, role: Role) -> User:
    with db.begin() as conn:
        return create_user(
            conn,
            handle=handle,
            role=role,
            birth_date=date(1990, 1, 1),
            country="US",
            today=TODAY,
            age_rule=AGE,
        )


def _clip(db: Engine, clip_id: str, creator: User, status: ClipStatus) -> None:
    with db.begin() as conn:
        insert_clip(conn, clip_id, creator.id, "A clip", ClipSource.UPLOAD, status, "video/mp4")


def test_a_clip_is_changed_by_its_creator_only(sa_engine: Engine) -> None:
    luna = _user(sa_engine, "luna", Role.CREATOR)
    sol = _user(sa_engine, "sol", Role.CREATOR)
    _clip(sa_engine, "cl_ready0000001", luna, ClipStatus.READY)
    _clip(sa_engine, "cl_cooking00001", luna, ClipStatus.PROCESSING)
    # Someone else's: refused before the title is looked at, so a bad title is not the answer.
    with pytest.raises(Forbidden) as refused:
        clip_service.change(sa_engine, "cl_ready0000001", sol, title="   ")
    assert refused.value.code is Code.NOT_YOUR_CLIP
    # Someone else's clip being made is not there at all.
    with pytest.raises(NotFound) as missing:
        clip_service.change(sa_engine, "cl_cooking00001", sol, downloads_enabled=False)
    assert missing.value.code is Code.CLIP_NOT_FOUND
    with pytest.raises(Invalid) as invalid:
        clip_service.change(sa_engine, "cl_ready0000001", luna, title="   ")
    assert invalid.value.code is Code.INVALID_TITLE
    changed = clip_service.change(
        sa_engine, "cl_ready0000001", luna, title="  New name ", downloads_enabled=False
    )
    assert changed.clip.title == "New name"
    assert not changed.clip.downloads_enabled
    assert (
        clip_service.find(sa_engine, "cl_cooking00001", luna).clip.status is ClipStatus.PROCESSING
    )
    with pytest.raises(NotFound):
        clip_service.find(sa_engine, "cl_cooking00001", None)


def test_reactions_are_the_listed_ones_and_counted(sa_engine: Engine) -> None:
    luna = _user(sa_engine, "luna", Role.CREATOR)
    fan = _user(sa_engine, "fan", Role.VIEWER)
    _clip(sa_engine, "cl_ready0000001", luna, ClipStatus.READY)
    with pytest.raises(Invalid) as invalid:
        clip_service.set_reaction(sa_engine, "cl_ready0000001", fan, "poop", True, now_us())
    assert invalid.value.code is Code.INVALID_REACTION
    counts, mine = clip_service.set_reaction(
        sa_engine, "cl_ready0000001", fan, "fire", True, now_us()
    )
    assert counts["fire"] == 1
    assert mine == ["fire"]
    assert clip_service.set_repost(sa_engine, "cl_ready0000001", fan, True, now_us()) == 1
    [(view, _)] = clip_service.shared_by(sa_engine, "FAN", luna, 30)
    assert view.clip.id == "cl_ready0000001"
    assert view.reactions["fire"] == 1
    assert not view.reposted  # luna looks; fan reposted
    with pytest.raises(NotFound) as missing:
        clip_service.shared_by(sa_engine, "nobody", None, 30)
    assert missing.value.code is Code.USER_NOT_FOUND


def test_a_streams_figures_are_its_creators_and_the_admins(sa_engine: Engine) -> None:
    luna = _user(sa_engine, "luna", Role.CREATOR)
    sol = _user(sa_engine, "sol", Role.CREATOR)
    stream = stream_service.go_live(sa_engine, luna, title="hi", language="en", playback_url=None)
    at_us = now_us()
    mine = figures.stream_for(sa_engine, stream.id, at_us, reader_id=luna.id, admin=False)
    assert mine.creator_id == luna.id
    assert figures.stream_for(sa_engine, stream.id, at_us, reader_id=None, admin=True)
    for reader_id in (sol.id, None):  # None: an API key, even the creator's own
        with pytest.raises(Forbidden) as refused:
            figures.stream_for(sa_engine, stream.id, at_us, reader_id=reader_id, admin=False)
        assert refused.value.code is Code.NOT_YOUR_STREAM
    with pytest.raises(NotFound) as missing:
        figures.stream_for(sa_engine, "st_nothere", at_us, reader_id=None, admin=True)
    assert missing.value.code is Code.STREAM_NOT_FOUND


def test_a_missing_streams_sharers_are_a_404(sa_engine: Engine) -> None:
    sharing = Sharing(Settings(), sa_engine)
    with pytest.raises(NotFound) as missing:
        sharing.stream_sharers("st_nothere", 10, now_us())
    assert missing.value.code is Code.STREAM_NOT_FOUND
    luna = _user(sa_engine, "luna", Role.CREATOR)
    stream = stream_service.go_live(sa_engine, luna, title="hi", language="en", playback_url=None)
    count, top = sharing.stream_sharers(stream.id, 10, now_us())
    assert (count.links, count.recent_sharers, top) == (0, 0, [])
    assert sharing.reach(luna.id).links == 0
