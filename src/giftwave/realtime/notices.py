"""What one node tells every node (``Broker.notify``): typed values tagged by ``"type"``.

A notice says that something every node may have cached changed; each handler reads the kinds
it keeps a cache for and passes over the rest. The wire form (a JSON object with ``type``) is
one encoder and one decoder, here: a notice this version cannot read decodes to None, which
every handler takes as "some were lost" and so trusts nothing it kept (a newer node's kind
during a rolling upgrade costs a cache refill, never a stale answer).
"""

from __future__ import annotations

from typing import Final

import msgspec


class Notice(msgspec.Struct, frozen=True, tag_field="type"):
    """Base of what every node hears."""


class SessionEnded(Notice, frozen=True, tag="session_ended"):
    """A session was ended (logout): its hash, as stored; a token itself never leaves."""

    token_hash: str


class UserChanged(Notice, frozen=True, tag="user_changed"):
    """A user was blocked, unblocked, frozen or given another role."""

    user_id: int


class ApiKeyRevoked(Notice, frozen=True, tag="api_key_revoked"):
    """An API key was revoked: every node drops every key it kept."""


class BanChanged(Notice, frozen=True, tag="ban_changed"):
    """A creator banned or unbanned a user (from all their rooms)."""

    creator_id: int
    user_id: int


class LevelChanged(Notice, frozen=True, tag="level_changed"):
    """A gifter's level badge changed (a level-up, hiding it, showing it again)."""

    user_id: int
    level: int  # the badge everybody else now sees; 0: none


class ClubChanged(Notice, frozen=True, tag="club_changed"):
    """A creator's fan club was named or renamed, or their chat mode switched (with a club or
    without one: the chat gate keeps both per creator)."""

    creator_id: int


class ClubMemberChanged(Notice, frozen=True, tag="club_member_changed"):
    """Someone joined or left a creator's fan club (or was removed from it)."""

    creator_id: int
    user_id: int


class SubscriberChanged(Notice, frozen=True, tag="subscriber_changed"):
    """Someone's subscription to a creator changed (subscribed, resumed, cancelled, gifted):
    the months their badge shows, and a subscribers-only chat's answer, are read again."""

    creator_id: int
    user_id: int


AnyNotice = (
    SessionEnded
    | UserChanged
    | ApiKeyRevoked
    | BanChanged
    | LevelChanged
    | ClubChanged
    | ClubMemberChanged
    | SubscriberChanged
)

_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder(AnyNotice)


def encode_notice(notice: AnyNotice) -> bytes:
    return _ENCODER.encode(notice)


def decode_notice(data: bytes) -> AnyNotice | None:
    """The notice, or None for one this version cannot read (unknown kind, bad fields)."""
    try:
        return _DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
