"""Who may chat in a creator's rooms: everyone, their fan club's members, members from a level,
or their subscribers. A setting of the creator, not of their club (migration 0031 moved it off
``fan_clubs``): subscriptions need no club, so neither does a subscribers-only chat. The rules
are pure functions of plain values; the SQL below only loads and writes (docs/community.md,
"Chat modes").

Decisions, documented there: no row means everyone may chat; the club modes need a club (409
``chat_mode_needs_club`` otherwise); a club mode whose club is not there (should a club ever be
deleted) is followed as everyone, the safe answer: a mode nobody can meet would silence the
room for good, with no club left to join. A club made anew never inherits such a stale mode.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, select, update

from giftwave.db.tables import creator_chat_settings
from giftwave.db.upsert import insert_for
from giftwave.errors import Code, Conflict, Forbidden, Invalid
from giftwave.identity.permissions import require_creator
from giftwave.identity.users import User
from giftwave.social.clubs import LEVELS, Club, find_club


class ChatMode(enum.StrEnum):
    """Who may chat in a creator's rooms. A mode is one member here and one line in
    ``_MAY_CHAT``."""

    EVERYONE = "everyone"
    MEMBERS = "members"
    MEMBERS_LEVEL = "members_level"
    SUBSCRIBERS = "subscribers"  # a subscription with access now (economy/subscriptions.py)


# The modes that only mean something with a fan club to be a member of.
CLUB_MODES: Final = frozenset({ChatMode.MEMBERS, ChatMode.MEMBERS_LEVEL})


@dataclass(frozen=True, slots=True)
class ChatSetting:
    mode: ChatMode = ChatMode.EVERYONE
    min_level: int = 1  # for MEMBERS_LEVEL: the club level a member needs


EVERYONE: Final = ChatSetting()

# (the setting, the person's club level or None, whether they are a subscriber now) → may chat
_MAY_CHAT: Final[dict[ChatMode, Callable[[ChatSetting, int | None, bool], bool]]] = {
    ChatMode.EVERYONE: lambda setting, level, subscribed: True,
    ChatMode.MEMBERS: lambda setting, level, subscribed: level is not None,
    ChatMode.MEMBERS_LEVEL: lambda setting, level, subscribed: (
        level is not None and level >= setting.min_level
    ),
    ChatMode.SUBSCRIBERS: lambda setting, level, subscribed: subscribed,
}


def in_force(setting: ChatSetting, club: Club | None) -> ChatSetting:
    """The setting the rooms follow: a club mode without a club is everyone (the safe answer)."""
    return EVERYONE if setting.mode in CLUB_MODES and club is None else setting


def may_chat(
    setting: ChatSetting, club: Club | None, level: int | None, subscribed: bool = False
) -> bool:
    """Whether someone of club ``level`` (None: not a member), subscribed or not, may chat in
    the rooms of a creator with ``setting`` and ``club``."""
    rule = in_force(setting, club)
    return _MAY_CHAT[rule.mode](rule, level, subscribed)


def refusal(setting: ChatSetting, club: Club | None) -> Forbidden:
    """Why a chat line was refused (403 ``subscribers_only_chat``, or ``members_only_chat``)."""
    rule = in_force(setting, club)
    if rule.mode is ChatMode.SUBSCRIBERS or club is None:
        return Forbidden(
            Code.SUBSCRIBERS_ONLY_CHAT, "only subscribers can chat here; subscribe to chat"
        )
    if rule.mode is ChatMode.MEMBERS_LEVEL:
        detail = f"only members of {club.name} at level {rule.min_level} or above can chat"
    else:
        detail = f"only members of {club.name} can chat here; join the fan club to chat"
    return Forbidden(Code.MEMBERS_ONLY_CHAT, detail)


def chat_setting(conn: Connection, creator_id: int) -> ChatSetting:
    """The creator's stored setting (everyone when they never chose one)."""
    c = creator_chat_settings.c
    row = conn.execute(select(c.mode, c.min_level).where(c.creator_id == creator_id)).first()
    return EVERYONE if row is None else ChatSetting(ChatMode(row.mode), int(row.min_level))


def save_chat_setting(
    conn: Connection, creator: User, mode: ChatMode, min_level: int, at_us: int
) -> ChatSetting:
    """Who may chat in the creator's rooms from now on; the club modes need their club."""
    require_creator(creator, "set a chat mode")
    if not 1 <= min_level <= LEVELS.top:
        raise Invalid(Code.INVALID_CLUB_LEVEL, f"a club level is 1..{LEVELS.top}")
    if mode in CLUB_MODES and find_club(conn, creator.id) is None:
        raise Conflict(
            Code.CHAT_MODE_NEEDS_CLUB,
            f"chat mode {mode.value!r} is for fan club members: name your fan club first",
        )
    values = {"mode": mode.value, "min_level": min_level, "updated_at_us": at_us}
    statement = insert_for(conn, creator_chat_settings).values(creator_id=creator.id, **values)
    conn.execute(statement.on_conflict_do_update(index_elements=["creator_id"], set_=values))
    return ChatSetting(mode, min_level)


def forget_club_modes(conn: Connection, creator_id: int, at_us: int) -> None:
    """A club made anew starts with nobody refused for not being its member: a club mode left
    from a club that went is set back to everyone (a subscribers-only chat stays)."""
    c = creator_chat_settings.c
    conn.execute(
        update(creator_chat_settings)
        .where(c.creator_id == creator_id, c.mode.in_([m.value for m in CLUB_MODES]))
        .values(mode=ChatMode.EVERYONE.value, min_level=1, updated_at_us=at_us)
    )
