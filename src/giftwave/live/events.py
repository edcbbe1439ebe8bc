"""A room's events as typed values, and the one place they become JSON.

Two tagged unions (msgspec Structs; the tag is the ``type`` key, written first):

    RoomNews    what a room hears, through the broker, on every node: a committed gift, a
                like, a chat line, a goal set, a battle's state… Published by the API, the
                economy's observers and the battle referee; applied by ``realtime.hub`` through
                a table from kind to handler.
    RoomEvent   what a room says to its viewers, in frames (``Room.tick``, ``Room.snapshot``).

And one more, for a single socket: ``PersonalEvent``, what one viewer alone is told (a
spending reminder), sent on their own socket outside the room's frames: no ``seq``, never
broadcast, never replayed (``{"v":1,"personal":{…}}``).

Both wire formats are docs/protocol.md's, byte for byte: a Struct's fields are encoded in the
order they are declared here, so the order of the fields below IS the order of the keys on the
wire (tests/unit/test_golden_frames.py holds the bytes). A new kind is one class here, one
member of its union, and (for news) one line in the hub's table.

Structs rather than dicts: mypy checks every field name and type where an event is built, an
event costs a third of a dict to build, msgspec encodes it as fast as orjson encoded the dict
(docs/benchmarks.md, "Typed room events"), and news read back from Redis is checked against
its type as it is decoded.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec


class News(msgspec.Struct, frozen=True, tag_field="type"):
    """Base of what a room hears through the broker."""


class GiftCommitted(News, frozen=True, tag="gift"):
    """A gift the ledger committed (bill first, then broadcast); sent again on a retry."""

    send_id: str
    sender_id: int
    sender: str  # the sender's handle
    gift_id: str
    count: int
    coins: int
    diamonds: int
    comboable: bool
    at_us: int  # when the ledger recorded it


class GiftReversalCommitted(News, frozen=True, tag="gift_reversed"):
    """An operator's reversal of a committed gift, committed; ``at_us`` is the gift's time."""

    send_id: str
    sender_id: int
    gift_id: str
    count: int
    coins: int
    diamonds: int
    at_us: int


class Liked(News, frozen=True, tag="like"):
    count: int
    user_id: int | None
    handle: str


class ClubBadge(msgspec.Struct, frozen=True):
    """A member's fan club badge: the creator's club name and the member's level in it."""

    name: str
    level: int


# ``level``: the sender's gifter level badge as the node that took the line knew it (None: none
# shown). Left out of the JSON when None, so lines without a badge keep their bytes.
# ``club``: the sender's fan club badge (docs/community.md), also left out when None.
class ChatPosted(News, frozen=True, tag="chat", omit_defaults=True):
    message_id: str | None
    user_id: int
    handle: str
    text: str
    level: int | None = None
    sub_months: int = 0  # the subscriber badge: months subscribed to the creator (0: none)
    club: ClubBadge | None = None


class PaidMessage(msgspec.Struct, frozen=True, omit_defaults=True):
    """A paid highlighted message (economy/paid_messages.py): the same fields as news, in a
    frame, and in a snapshot's ``paid_messages``."""

    send_id: str  # its gift's: the id a moderator hides it by
    sender_id: int
    sender: str  # the sender's handle
    text: str
    gift_id: str
    coins: int
    tier: int  # 1 = the cheapest of the published table
    colour: str
    pinned_until_us: int
    at_us: int  # when the ledger recorded its gift
    level: int | None = None  # the sender's gifter level badge, when the node knows it


class PaidMessagePosted(PaidMessage, News, frozen=True, tag="paid_message"):
    """A committed gift's message; sent again on a retry (the room pins it once)."""


class PaidMessageHidden(News, frozen=True, tag="paid_message_hidden"):
    send_id: str


class Joined(News, frozen=True, tag="join", omit_defaults=True):
    user_id: int
    handle: str
    level: int | None = None
    sub_months: int = 0
    club: ClubBadge | None = None


class LevelReached(News, frozen=True, tag="level_up"):
    """A gifter reached a level with a gift in this room (social/level_follower.py)."""

    user_id: int
    handle: str
    level: int


class GiftedTo(msgspec.Struct, frozen=True):
    """One recipient of gifted subscriptions, with the months their badge shows now."""

    user_id: int
    handle: str
    months: int


class SubsGifted(News, frozen=True, tag="subs_gifted"):
    """A viewer's gifted subscriptions, given (economy/subscription_gifts.py): "ana gifted 5
    subs!", each recipient named. Sent again on a retry; a room says it once per ``gift_id``."""

    gift_id: str  # "gsub:<buyer id>:<idempotency key>"
    buyer_id: int
    buyer: str  # the buyer's handle
    count: int
    recipients: list[GiftedTo]
    at_us: int


class ChatDeleted(News, frozen=True, tag="chat_deleted"):
    message_id: str


class Muted(News, frozen=True, tag="mute"):
    user_id: int
    until_us: int


class ThankedUser(msgspec.Struct, frozen=True):
    """One supporter a creator thanked."""

    user_id: int
    handle: str


class Thanked(msgspec.Struct, frozen=True):
    """A creator's thank-you to the top supporters of their last stream (live/thanks.py), as
    their next stream's room shows it: in news, in a frame, and in a snapshot's ``thanks``."""

    stream_id: str  # the stream thanked for (the room is the creator's next one)
    title: str  # that stream's title
    text: str  # the creator's message
    recipients: list[ThankedUser]  # in the stream's ranking, best first
    at_us: int  # when it was sent


class ThanksPosted(Thanked, News, frozen=True, tag="thanks"):
    """Sent while the next stream is live (a room seeded later reads it from the database)."""


class ThanksHidden(News, frozen=True, tag="thanks_hidden"):
    stream_id: str  # the stream thanked for


class StreamEnded(News, frozen=True, tag="end"):
    pass


class GoalSet(News, frozen=True, tag="goal_set"):
    goal_id: int
    kind: str  # live.goals.GoalKind's value
    gift_id: str | None
    target: int
    title: str
    created_at_us: int


class GoalCleared(News, frozen=True, tag="goal_cleared"):
    pass


class BattleState(News, frozen=True):
    """Everything about a battle, flat: a room on any node rebuilds it (``Battle.of_state``)."""

    battle_id: int
    status: str  # live.battles.BattleStatus's value
    stream_a: str
    creator_a: int
    handle_a: str
    stream_b: str
    creator_b: int
    handle_b: str
    duration_s: int
    created_at_us: int
    started_at_us: int | None
    ends_at_us: int | None
    ended_at_us: int | None
    score_a: int
    score_b: int
    winner: str | None  # live.battles.Winner's value


class BattleSet(BattleState, frozen=True, tag="battle_set"):
    """A battle's new state (invited, started, cut short, declined, expired)."""


class BattleEnded(BattleState, frozen=True, tag="battle_ended"):
    """Its result, read from the database."""


class BattleRescored(BattleState, frozen=True, tag="battle_rescored"):
    """An ended battle's result computed again (a gift in it was reversed)."""


class BattleScored(News, frozen=True, tag="battle_points"):
    battle_id: int
    side: str
    points: int
    at_us: int
    send_id: str | None


class BattleScoreReversed(News, frozen=True, tag="battle_points_reversed"):
    battle_id: int
    side: str
    points: int
    at_us: int
    send_id: str


RoomNews = (
    GiftCommitted
    | GiftReversalCommitted
    | Liked
    | ChatPosted
    | Joined
    | ChatDeleted
    | Muted
    | StreamEnded
    | GoalSet
    | GoalCleared
    | BattleSet
    | BattleScored
    | BattleScoreReversed
    | BattleEnded
    | BattleRescored
    | LevelReached
    | PaidMessagePosted
    | PaidMessageHidden
    | SubsGifted
    | ThanksPosted
    | ThanksHidden
)


class Shown(msgspec.Struct, frozen=True, tag_field="type"):
    """Base of what a room says to its viewers."""


class GiftShown(Shown, frozen=True, tag="gift"):
    """A combo announced (``final`` false), or finished with its total, or a single gift."""

    combo_id: str
    sender_id: int
    sender: str
    gift_id: str
    count: int
    coins: int
    final: bool
    at_us: int  # when its latest gift was committed
    n: int  # its short number in this epoch, as ``combo_counts`` names it


class ComboCounts(Shown, frozen=True, tag="combo_counts"):
    at_us: int
    counts: list[list[int]]  # [n, count, coins, ms after at_us] per combo that grew


class Ranked(msgspec.Struct, frozen=True, omit_defaults=True):
    rank: int
    user_id: int
    handle: str
    coins: int
    level: int | None = None  # the gifter's level badge, when shown
    sub_months: int = 0  # the subscriber badge, as the room last saw it (0: none)


class RankedLiker(msgspec.Struct, frozen=True):
    rank: int
    user_id: int
    handle: str
    likes: int


class LeaderboardShown(Shown, frozen=True, tag="leaderboard"):
    top: list[Ranked]
    coins: int  # the stream's totals
    diamonds: int


class LikesShown(Shown, frozen=True, tag="like"):
    count: int  # this tick
    total: int


class LikersShown(Shown, frozen=True, tag="likers"):
    top: list[RankedLiker]


class ChatLine(msgspec.Struct, frozen=True, omit_defaults=True):
    """A chat line as a room keeps it (the snapshot's ``chat``, a report's copy)."""

    message_id: str | None
    user_id: int
    handle: str
    text: str
    level: int | None = None
    sub_months: int = 0
    club: ClubBadge | None = None


class ChatShown(Shown, frozen=True, tag="chat", omit_defaults=True):
    message_id: str | None
    user_id: int
    handle: str
    text: str
    level: int | None = None  # the sender's gifter level badge (absent: none shown)
    sub_months: int = 0
    club: ClubBadge | None = None


class ChatDeletedShown(Shown, frozen=True, tag="chat_deleted"):
    message_ids: list[str]


class MutesShown(Shown, frozen=True, tag="muted"):
    mutes: list[tuple[int, int]]  # (user_id, until_us)


class GoalShown(Shown, frozen=True, tag="goal"):
    goal_id: int
    kind: str
    gift_id: str | None
    target: int
    title: str
    progress: int
    reached: bool


class NoGoal(Shown, frozen=True, tag="goal"):
    """The goal was cleared: screens take it down."""

    goal_id: None = None


class GoalReachedShown(Shown, frozen=True, tag="goal_reached"):
    goal_id: int


class BattleSide(msgspec.Struct, frozen=True):
    side: str  # "a" challenger, "b" invited
    stream_id: str
    creator_id: int
    handle: str
    score: int


class BattleShown(Shown, frozen=True, tag="battle"):
    battle_id: int
    status: str
    sides: list[BattleSide]
    duration_s: int
    invitation_expires_at_us: int
    starts_at_us: int | None
    ends_at_us: int | None
    winner: str | None


class NoBattle(Shown, frozen=True, tag="battle"):
    """No battle, or its result was shown long enough: screens take it down."""

    battle_id: None = None


class BattleEndedShown(Shown, frozen=True, tag="battle_ended"):
    battle_id: int
    winner: str
    sides: list[BattleSide]
    ended_at_us: int | None


class GiftReversedShown(Shown, frozen=True, tag="gift_reversed"):
    send_id: str
    sender_id: int
    gift_id: str
    count: int
    coins: int
    at_us: int
    combo_id: str | None  # the combo it was in, and the count it has left (0: gone)
    combo_count: int | None


class ViewersShown(Shown, frozen=True, tag="viewers"):
    count: int


class JoinedUser(msgspec.Struct, frozen=True, omit_defaults=True):
    user_id: int
    handle: str
    level: int | None = None
    sub_months: int = 0
    club: ClubBadge | None = None


class LevelUpShown(Shown, frozen=True, tag="level_up"):
    """ "ana reached level 12", in the room where the gift that crossed the threshold was sent."""

    user_id: int
    handle: str
    level: int


class JoinsShown(Shown, frozen=True, tag="join"):
    users: list[JoinedUser]
    others: int


class StreamEndedShown(Shown, frozen=True, tag="stream_ended"):
    pass


class PaidMessageShown(PaidMessage, Shown, frozen=True, tag="paid_message"):
    """Pinned at the top of chat until ``pinned_until_us`` (screens take it down then)."""


class PaidMessageHiddenShown(Shown, frozen=True, tag="paid_message_hidden"):
    send_id: str


class SubsGiftedShown(Shown, frozen=True, tag="subs_gifted"):
    """ "ana gifted 5 subs!", with each recipient and their months."""

    gift_id: str
    buyer_id: int
    buyer: str
    count: int
    recipients: list[GiftedTo]
    at_us: int


class ThanksShown(Thanked, Shown, frozen=True, tag="thanks_shown"):
    """ "Thanks to ana, bo and cy for last stream's support", with the creator's message."""


class ThanksHiddenShown(Shown, frozen=True, tag="thanks_hidden"):
    stream_id: str


class Snapshot(Shown, frozen=True, tag="snapshot", omit_defaults=True):
    """Everything a viewer needs to draw the room from scratch. (``omit_defaults``: only the
    fields with a default, none of the others, are left out when empty.)"""

    stream_id: str
    viewers: int
    likes: int
    likers: LikersShown
    ended: bool
    combos: list[GiftShown]
    recent_gifts: list[GiftShown]
    chat: list[ChatLine]
    leaderboard: LeaderboardShown
    goal: GoalShown | NoGoal
    battle: BattleShown | NoBattle
    # The paid messages pinned now, oldest first; the key is absent when there are none.
    paid_messages: list[PaidMessage] = []
    # The creator's thank-you for their last stream, shown in this one; absent when none.
    thanks: Thanked | None = None


RoomEvent = (
    GiftShown
    | ComboCounts
    | LeaderboardShown
    | LikesShown
    | LikersShown
    | ChatShown
    | ChatDeletedShown
    | MutesShown
    | GoalShown
    | NoGoal
    | GoalReachedShown
    | BattleShown
    | NoBattle
    | BattleEndedShown
    | GiftReversedShown
    | ViewersShown
    | JoinsShown
    | LevelUpShown
    | StreamEndedShown
    | PaidMessageShown
    | PaidMessageHiddenShown
    | SubsGiftedShown
    | ThanksShown
    | ThanksHiddenShown
    | Snapshot
)


class Personal(msgspec.Struct, frozen=True, tag_field="type"):
    """Base of what one viewer alone is told, on their own socket."""


class SpendingReminderShown(Personal, frozen=True, tag="spending_reminder"):
    """A gentle reminder (economy/spending_reminders.py): ``gifting_time`` (``minutes`` of
    continuous gifting) or ``above_average`` (``month_coins`` against
    ``average_month_coins``); the other reason's fields are 0."""

    reason: str
    minutes: int
    month_coins: int
    average_month_coins: int


PersonalEvent = SpendingReminderShown

PROTOCOL_VERSION: Final = 1


class _Frame(msgspec.Struct):
    v: int
    seq: int
    epoch: str
    events: list[RoomEvent]


class _PersonalMessage(msgspec.Struct):
    v: int
    personal: PersonalEvent


_encoder: Final = msgspec.json.Encoder()
_news_decoder: Final = msgspec.json.Decoder(RoomNews)


def encode_frame_text(seq: int, epoch: str, events: list[RoomEvent]) -> str:
    """A viewer frame, ``{"v":1,"seq":n,"epoch":"…","events":[…]}``."""
    return _encoder.encode(_Frame(PROTOCOL_VERSION, seq, epoch, events)).decode()


def encode_personal_text(event: PersonalEvent) -> str:
    """A message for one socket alone, ``{"v":1,"personal":{"type":…}}``: not a frame (no
    ``seq``: it is not part of the room's sequence, and a resume does not replay it)."""
    return _encoder.encode(_PersonalMessage(PROTOCOL_VERSION, event)).decode()


def encode_news(news: RoomNews) -> bytes:
    """News as the broker carries it between nodes."""
    return _encoder.encode(news)


def decode_news(raw: bytes) -> RoomNews:
    """News read back from the broker, every field checked against its type; raises
    ``msgspec.DecodeError`` (``ValidationError`` among them) for anything else."""
    return _news_decoder.decode(raw)


def plain(value: Any) -> Any:
    """An event (or list of them) as the dicts and lists its JSON holds: for reading one the
    way a client does (tests, logs)."""
    return msgspec.to_builtins(value)
