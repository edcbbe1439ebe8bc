"""What creators and viewers do with fan clubs, one call each: the unit of work (one
transaction or one read) around the rules of ``clubs.py``. Blocking calls run on a worker
thread from the routes; ``join`` is async because a club's entry gift goes through the
gift path (``economy.gifting``). Every change is followed by a broker notice from the route
(``ClubChanged``, ``ClubMemberChanged``): every node's chat gate drops its answer. The chat
mode is the creator's setting (``chat_settings.py``); ``switch_chat`` is the club route's way to
it, kept for the clients that set it there.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import Engine

from giftwave.clock import now_us
from giftwave.economy.gifting import Gifting, SendGift, send_id_of
from giftwave.errors import Code, DomainError, Invalid, NotFound
from giftwave.identity.permissions import require_creator
from giftwave.identity.users import User, require_active
from giftwave.live.streams import get_stream
from giftwave.social.chat_settings import (
    ChatMode,
    ChatSetting,
    chat_setting,
    forget_club_modes,
    save_chat_setting,
)
from giftwave.social.clubs import (
    ENTRY_KEY_PREFIX,
    Club,
    Member,
    activate,
    drop_member,
    enroll,
    find_club,
    forget_entry,
    get_club,
    member,
    member_count,
    members_of,
    pending_entry,
    save_club,
    wait_for_entry,
)


def club(db: Engine, creator_id: int) -> tuple[Club, int, ChatSetting]:
    """The creator's club, how many members it has and the creator's chat setting (404
    ``club_not_found``)."""
    with db.connect() as conn:
        found = get_club(conn, creator_id)
        return found, member_count(conn, creator_id), chat_setting(conn, creator_id)


def name_club(db: Engine, creator: User, name: str, entry_gift_id: str | None) -> tuple[Club, bool]:
    """Make or rename the creator's club: (it, whether new). A new club starts with no member
    refused a chat line for not being one (``forget_club_modes``)."""
    with db.begin() as conn:
        at_us = now_us()
        made, new = save_club(conn, creator, name, entry_gift_id, at_us)
        if new:
            forget_club_modes(conn, creator.id, at_us)
        return made, new


def switch_chat(db: Engine, creator: User, mode: ChatMode, min_level: int) -> ChatSetting:
    """The club route's chat switch (``PUT /v1/me/club/chat``): as it always did, for a creator
    with a club (404 ``club_not_found`` otherwise)."""
    require_creator(creator, "set a chat mode")
    with db.begin() as conn:
        get_club(conn, creator.id)
        return save_chat_setting(conn, creator, mode, min_level, now_us())


def chat_mode(db: Engine, creator_id: int) -> ChatSetting:
    """The creator's stored chat setting (everyone when never set)."""
    with db.connect() as conn:
        return chat_setting(conn, creator_id)


def set_chat(db: Engine, creator: User, mode: ChatMode, min_level: int) -> ChatSetting:
    """Who may chat in the creator's rooms, club or no club (409 ``chat_mode_needs_club`` for
    a club mode without one)."""
    with db.begin() as conn:
        return save_chat_setting(conn, creator, mode, min_level, now_us())


def my_membership(db: Engine, creator_id: int, user: User) -> Member:
    with db.connect() as conn:
        get_club(conn, creator_id)
        found = member(conn, creator_id, user.id)
    if found is None:
        raise NotFound(Code.CLUB_MEMBER_NOT_FOUND, "you are not a member of this club")
    return found


@dataclass(frozen=True, slots=True)
class Joined:
    member: Member
    new: bool
    entry_send_id: str | None  # the entry gift's send, when the club has one


async def join(
    db: Engine,
    gifting: Gifting,
    user: User,
    creator_id: int,
    stream_id: str | None,
    idempotency_key: str,
) -> Joined:
    """Join the creator's club: free, or with its entry gift sent in ``stream_id`` (one
    request, both or neither: a refused gift leaves no member; a committed one makes one,
    here or, should this request die, in ``club_points``). Again: the same membership."""
    require_active(user)
    club_found, was_member, waiting_for = await asyncio.to_thread(
        _before_join, db, creator_id, user, stream_id
    )
    if was_member:
        return Joined(await asyncio.to_thread(my_membership, db, creator_id, user), False, None)
    if club_found.entry_gift_id is None:
        made = await asyncio.to_thread(_enroll, db, creator_id, user.id, None)
        return Joined(await asyncio.to_thread(my_membership, db, creator_id, user), made, None)
    if stream_id is None:
        raise Invalid(
            Code.CLUB_ENTRY_NEEDS_STREAM,
            f"this club's entry is a {club_found.entry_gift_id} gift: join from a live stream",
        )
    key = ENTRY_KEY_PREFIX + idempotency_key
    send_id = send_id_of(user.id, key)
    if waiting_for is None:
        await asyncio.to_thread(_enroll, db, creator_id, user.id, send_id)
    elif waiting_for != send_id:
        await asyncio.to_thread(_wait_for, db, creator_id, user.id, send_id)
    try:
        sent = await gifting.send(
            SendGift(
                sender=user,
                stream_id=stream_id,
                gift_id=club_found.entry_gift_id,
                count=1,
                idempotency_key=key,
            )
        )
    except DomainError:
        await asyncio.to_thread(_forget, db, creator_id, user.id, send_id)
        raise
    await asyncio.to_thread(_activate, db, creator_id, user.id, send_id)
    return Joined(await asyncio.to_thread(my_membership, db, creator_id, user), True, sent.send_id)


def _before_join(
    db: Engine, creator_id: int, user: User, stream_id: str | None
) -> tuple[Club, bool, str | None]:
    with db.connect() as conn:
        found = find_club(conn, creator_id)
        if found is None:
            raise NotFound(Code.CLUB_NOT_FOUND, "this creator has no fan club")
        active, waiting_for = pending_entry(conn, creator_id, user.id)
        stream = None if stream_id is None else get_stream(conn, stream_id)  # stream_not_found
    if stream is not None and stream.creator_id != creator_id and found.entry_gift_id:
        raise Invalid(Code.CLUB_ENTRY_NEEDS_STREAM, "join from a stream of this club's creator")
    if user.id == creator_id:
        raise Invalid(Code.INVALID_REQUEST, "a creator is the host of their own club")
    return found, active, waiting_for


def _enroll(db: Engine, creator_id: int, user_id: int, send_id: str | None) -> bool:
    with db.begin() as conn:
        return enroll(conn, creator_id, user_id, now_us(), send_id)


def _wait_for(db: Engine, creator_id: int, user_id: int, send_id: str) -> None:
    with db.begin() as conn:
        wait_for_entry(conn, creator_id, user_id, send_id)


def _activate(db: Engine, creator_id: int, user_id: int, send_id: str) -> None:
    with db.begin() as conn:
        activate(conn, creator_id, user_id, send_id)


def _forget(db: Engine, creator_id: int, user_id: int, send_id: str) -> None:
    with db.begin() as conn:
        forget_entry(conn, creator_id, user_id, send_id)


def leave(db: Engine, creator_id: int, user: User) -> None:
    """Leave the creator's club (idempotent: not a member is fine); the points go."""
    with db.begin() as conn:
        get_club(conn, creator_id)
        drop_member(conn, creator_id, user.id)


def members(db: Engine, creator: User, limit: int, offset: int) -> tuple[int, list[Member]]:
    """The creator's members, most points first, and how many there are."""
    require_creator(creator, "list fan club members")
    with db.connect() as conn:
        get_club(conn, creator.id)
        return member_count(conn, creator.id), members_of(conn, creator.id, limit, offset)


def remove(db: Engine, creator: User, user_id: int) -> None:
    """The creator removes a member (404 ``club_member_not_found``); they may join again."""
    require_creator(creator, "remove fan club members")
    with db.begin() as conn:
        get_club(conn, creator.id)
        if member(conn, creator.id, user_id) is None or not drop_member(conn, creator.id, user_id):
            raise NotFound(Code.CLUB_MEMBER_NOT_FOUND, "no such member of your club")
