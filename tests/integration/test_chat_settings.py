"""The creator's chat setting against the database, on SQLite AND PostgreSQL: the club modes
need a club, subscribers-only does not; a club mode whose club went is followed as everyone by
the chat gate, and a club made anew drops it while a subscribers-only chat stays."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine, delete

from giftwave.db.tables import fan_clubs
from giftwave.errors import DomainError
from giftwave.identity.users import Role, User, UserStatus
from giftwave.realtime.notices import ClubChanged
from giftwave.social import club_service
from giftwave.social.chat_settings import EVERYONE, ChatMode, ChatSetting
from giftwave.social.club_gate import ClubGate

VIEWER = 99


def _creator(user_id: int) -> User:
    return User(
        user_id,
        f"c{user_id}",
        None,
        Role.CREATOR,
        date(1990, 1, 1),
        "ES",
        UserStatus.ACTIVE,
        True,
        None,
    )


def _club_goes(db: Engine, creator_id: int) -> None:
    # No route deletes a club today: the row goes as an operator's hand would take it.
    with db.begin() as conn:
        conn.execute(delete(fan_clubs).where(fan_clubs.c.creator_id == creator_id))


async def test_club_modes_need_a_club_and_fall_back_without_one(sa_engine: Engine) -> None:
    luna = _creator(1)
    with pytest.raises(DomainError) as refused:
        club_service.set_chat(sa_engine, luna, ChatMode.MEMBERS, 1)
    assert refused.value.code == "chat_mode_needs_club"
    assert club_service.chat_mode(sa_engine, luna.id) == EVERYONE

    club_service.name_club(sa_engine, luna, "Owls", None)
    club_service.set_chat(sa_engine, luna, ChatMode.MEMBERS, 1)
    gate = ClubGate(sa_engine)
    with pytest.raises(DomainError) as members_only:
        await gate.chat_badge(luna.id, VIEWER)
    assert members_only.value.code == "members_only_chat"

    _club_goes(sa_engine, luna.id)
    gate.notice(ClubChanged(creator_id=luna.id))
    assert await gate.chat_badge(luna.id, VIEWER) is None  # everyone again: no refusal

    club_service.name_club(sa_engine, luna, "Owls again", None)
    assert club_service.chat_mode(sa_engine, luna.id) == EVERYONE  # not members from before


async def test_subscribers_only_without_a_club_and_through_a_new_one(sa_engine: Engine) -> None:
    max_ = _creator(2)
    club_service.set_chat(sa_engine, max_, ChatMode.SUBSCRIBERS, 1)
    gate = ClubGate(sa_engine)
    with pytest.raises(DomainError) as refused:
        await gate.chat_badge(max_.id, VIEWER)
    assert refused.value.code == "subscribers_only_chat"
    assert await gate.chat_badge(max_.id, VIEWER, sub_months=1) is None
    assert await gate.chat_badge(max_.id, max_.id) is None  # the creator chats

    club_service.name_club(sa_engine, max_, "Later", None)
    assert club_service.chat_mode(sa_engine, max_.id) == ChatSetting(ChatMode.SUBSCRIBERS, 1)
