"""What a webhook says: the event types a creator subscribes to, and the body of each, a typed
value (a msgspec Struct per type's ``data``) encoded here, in one place.

Every body is one envelope::

    {"id": "<event id>", "type": "gift", "created_at_us": …, "creator_id": …, "data": {…}}

Event ids are derived from what happened (``gift:<sender>:<key>``, ``combo:<combo id>``,
``goal_reached:<goal id>``, ``battle_ended:<battle id>``, ``gift_reversed:<send id>``,
``level_up:<user id>:<level>``, ``paid_message:<send id>``, ``subscription.<kind>:<subscription
id>:<period>``, ``subscription.gifted:<buyer>:<key>``, ``thanks.sent:<stream id>``), never
drawn at random: the same
event enqueued twice, by a retry or by two nodes, is one outbox row.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from typing import Final

import msgspec

from giftwave.economy.gifting import GiftSent
from giftwave.economy.paid_messages import PaidMessageSent
from giftwave.economy.reversals import GiftReversed
from giftwave.economy.subscription_gifts import SubsGiven
from giftwave.economy.subscriptions import ChangeKind, SubscriptionChange
from giftwave.live.battles import Battle
from giftwave.live.events import BattleSide
from giftwave.live.goals import Goal
from giftwave.live.thanks import Thanks
from giftwave.social.level_follower import LevelUp

EVENT_ID_MAX_CHARS: Final = 160


class EventType(enum.StrEnum):
    GIFT = "gift"  # one committed gift send
    COMBO_END = "combo_end"  # a combo's final total ("Rose x57"); a gift that cannot combo
    GOAL_REACHED = "goal_reached"
    BATTLE_ENDED = "battle_ended"
    GIFT_REVERSED = "gift_reversed"  # an operator reversed a committed gift
    GIFTER_LEVEL_UP = "gifter.level_up"  # a gifter reached a level with a gift to the creator
    PAID_MESSAGE = "chat.paid_message"  # a chat message sent with a gift, pinned by its tier
    SUBSCRIPTION_STARTED = "subscription.started"  # a first period paid (or one taken anew)
    SUBSCRIPTION_RENEWED = "subscription.renewed"  # the next period paid
    SUBSCRIPTION_LAPSED = "subscription.lapsed"  # the grace ran out unpaid
    SUBSCRIPTION_GIFTED = "subscription.gifted"  # a viewer gifted subscriptions in a room
    THANKS_SENT = "thanks.sent"  # the creator thanked a stream's top supporters
    PING = "ping"  # sent by the test route only; nobody subscribes to it


SUBSCRIBABLE: Final = (
    EventType.GIFT,
    EventType.COMBO_END,
    EventType.GOAL_REACHED,
    EventType.BATTLE_ENDED,
    EventType.GIFT_REVERSED,
    EventType.GIFTER_LEVEL_UP,
    EventType.PAID_MESSAGE,
    EventType.SUBSCRIPTION_STARTED,
    EventType.SUBSCRIPTION_RENEWED,
    EventType.SUBSCRIPTION_LAPSED,
    EventType.SUBSCRIPTION_GIFTED,
    EventType.THANKS_SENT,
)


class GiftData(msgspec.Struct, frozen=True):
    stream_id: str
    send_id: str
    sender_id: int
    sender: str
    gift_id: str
    count: int
    coins: int
    diamonds: int


class GiftReversedData(GiftData, frozen=True):
    """The gift's own fields (``GiftData``, in its order), then the reversal's."""

    sent_at_us: int
    diamonds_taken: int
    diamonds_debt: int


class ComboEndData(msgspec.Struct, frozen=True):
    stream_id: str
    combo_id: str  # its first gift's send id, as in the room's ``gift`` events
    sender_id: int
    sender: str
    gift_id: str
    count: int
    coins: int
    diamonds: int
    sends: int
    started_at_us: int
    last_gift_at_us: int


class GoalReachedData(msgspec.Struct, frozen=True):
    stream_id: str
    goal_id: int
    kind: str
    gift_id: str | None
    target: int
    title: str
    created_at_us: int
    progress: int


class BattleEndedData(msgspec.Struct, frozen=True):
    battle_id: str
    winner: str
    sides: list[BattleSide]
    ended_at_us: int | None


class GifterLevelUpData(msgspec.Struct, frozen=True):
    stream_id: str
    send_id: str  # the gift that crossed the level's threshold
    user_id: int
    handle: str
    level: int


class PaidMessageData(msgspec.Struct, frozen=True):
    stream_id: str
    send_id: str  # its gift's (the ``gift`` event's id)
    sender_id: int
    sender: str
    text: str
    gift_id: str
    coins: int
    tier: int
    colour: str
    pinned_until_us: int


class SubscriptionData(msgspec.Struct, frozen=True):
    """A subscription as a move left it (started, renewed, lapsed)."""

    subscription_id: int
    subscriber_id: int
    price_coins: int
    status: str
    months: int  # periods paid over its whole life (gifted ones included)
    paid_until_us: int


class SubscriptionStartedData(SubscriptionData, frozen=True):
    gifted_by: int | None = None  # the buyer's user id when a gifted subscription started it


class SubscriptionRenewedData(SubscriptionData, frozen=True):
    pass


class SubscriptionLapsedData(SubscriptionData, frozen=True):
    pass


class GiftRecipient(msgspec.Struct, frozen=True):
    user_id: int
    handle: str
    months: int


class SubscriptionGiftedData(msgspec.Struct, frozen=True):
    stream_id: str
    gift_id: str  # "gsub:<buyer id>:<idempotency key>", as in the room's ``subs_gifted``
    buyer_id: int
    buyer: str
    count: int
    price_coins: int
    coins: int
    diamonds: int
    recipients: list[GiftRecipient]


class ThankedSupporter(msgspec.Struct, frozen=True):
    user_id: int
    handle: str


class ThanksSentData(msgspec.Struct, frozen=True):
    stream_id: str  # the stream thanked for
    title: str
    message: str
    to_all: bool  # to every top supporter shown, not to chosen ones
    recipients: list[ThankedSupporter]  # in the stream's ranking, best first


class PingData(msgspec.Struct, frozen=True):
    endpoint_id: int
    message: str


# Each body's ``data``, and the event type that carries it: one class and one line per type.
EventData = (
    GiftData
    | GiftReversedData
    | ComboEndData
    | GoalReachedData
    | BattleEndedData
    | GifterLevelUpData
    | PaidMessageData
    | SubscriptionStartedData
    | SubscriptionRenewedData
    | SubscriptionLapsedData
    | SubscriptionGiftedData
    | ThanksSentData
    | PingData
)
TYPE_OF: Final[dict[type[EventData], EventType]] = {
    GiftData: EventType.GIFT,
    GiftReversedData: EventType.GIFT_REVERSED,
    ComboEndData: EventType.COMBO_END,
    GoalReachedData: EventType.GOAL_REACHED,
    BattleEndedData: EventType.BATTLE_ENDED,
    GifterLevelUpData: EventType.GIFTER_LEVEL_UP,
    PaidMessageData: EventType.PAID_MESSAGE,
    SubscriptionStartedData: EventType.SUBSCRIPTION_STARTED,
    SubscriptionRenewedData: EventType.SUBSCRIPTION_RENEWED,
    SubscriptionLapsedData: EventType.SUBSCRIPTION_LAPSED,
    SubscriptionGiftedData: EventType.SUBSCRIPTION_GIFTED,
    ThanksSentData: EventType.THANKS_SENT,
    PingData: EventType.PING,
}


class _Envelope(msgspec.Struct):
    """The body's keys, in their order on the wire (docs/webhooks.md)."""

    id: str
    type: EventType
    created_at_us: int
    creator_id: int
    data: EventData


_encoder: Final = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    creator_id: int
    created_at_us: int
    data: EventData

    def __post_init__(self) -> None:
        assert 0 < len(self.event_id) <= EVENT_ID_MAX_CHARS, self.event_id

    @property
    def type(self) -> EventType:
        return TYPE_OF[type(self.data)]

    def body(self) -> str:
        """The JSON that is signed and sent, the same bytes on every attempt."""
        envelope = _Envelope(
            self.event_id, self.type, self.created_at_us, self.creator_id, self.data
        )
        return _encoder.encode(envelope).decode()


def gift_event(sent: GiftSent, sender_handle: str) -> Event:
    return Event(
        event_id=sent.send_id,  # already "gift:<sender>:<key>"
        creator_id=sent.creator_id,
        created_at_us=sent.created_at_us,
        data=GiftData(
            stream_id=sent.stream_id,
            send_id=sent.send_id,
            sender_id=sent.sender_id,
            sender=sender_handle,
            gift_id=sent.gift_id,
            count=sent.count,
            coins=sent.coins,
            diamonds=sent.diamonds,
        ),
    )


def gift_reversed_event(done: GiftReversed) -> Event:
    """The same body on every replay: the reversal's time is the ledger's."""
    gift = done.gift
    return Event(
        event_id=f"gift_reversed:{done.send_id}",
        creator_id=gift.creator_id,
        created_at_us=done.reversed_at_us,
        data=GiftReversedData(
            stream_id=gift.stream_id,
            send_id=done.send_id,
            sender_id=gift.sender_id,
            sender=gift.sender_handle,
            gift_id=gift.gift_id,
            count=gift.count,
            coins=gift.coins,
            diamonds=gift.diamonds,
            sent_at_us=gift.created_at_us,
            diamonds_taken=done.diamonds_taken,
            diamonds_debt=done.diamonds_debt,
        ),
    )


def combo_end_event(
    *,
    creator_id: int,
    stream_id: str,
    combo_id: str,
    sender_id: int,
    sender_handle: str,
    gift_id: str,
    count: int,
    coins: int,
    diamonds: int,
    sends: int,
    started_at_us: int,
    last_at_us: int,
) -> Event:
    """The combo's combo_id is its first gift's send id, as in the room's ``gift`` events."""
    return Event(
        event_id=f"combo:{combo_id}",
        creator_id=creator_id,
        created_at_us=last_at_us,
        data=ComboEndData(
            stream_id=stream_id,
            combo_id=combo_id,
            sender_id=sender_id,
            sender=sender_handle,
            gift_id=gift_id,
            count=count,
            coins=coins,
            diamonds=diamonds,
            sends=sends,
            started_at_us=started_at_us,
            last_gift_at_us=last_at_us,
        ),
    )


def goal_reached_event(goal: Goal, creator_id: int, progress: int | None, at_us: int) -> Event:
    return Event(
        event_id=f"goal_reached:{goal.id}",
        creator_id=creator_id,
        created_at_us=at_us,
        data=GoalReachedData(
            stream_id=goal.stream_id,
            goal_id=goal.id,
            kind=goal.kind.value,
            gift_id=goal.gift_id,
            target=goal.target,
            title=goal.title,
            created_at_us=goal.created_at_us,
            progress=progress if progress is not None else goal.target,
        ),
    )


def battle_ended_event(battle: Battle, creator_id: int, at_us: int) -> Event:
    """An ended battle's result, for one of its two creators."""
    result = battle.ended_event()
    return Event(
        event_id=f"battle_ended:{battle.id}",
        creator_id=creator_id,
        created_at_us=at_us,
        data=BattleEndedData(
            battle_id=str(battle.id),
            winner=result.winner,
            sides=result.sides,
            ended_at_us=result.ended_at_us,
        ),
    )


def level_up_event(up: LevelUp) -> Event:
    """Once per gifter and level, to the creator of the room the crossing gift was sent in."""
    return Event(
        event_id=f"level_up:{up.user_id}:{up.level}",
        creator_id=up.creator_id,
        created_at_us=up.at_us,
        data=msgspec.convert(up, GifterLevelUpData, from_attributes=True),  # its fields, by name
    )


def paid_message_event(said: PaidMessageSent) -> Event:
    """The same body on every replay: everything in it was stored with the gift."""
    return Event(
        event_id=f"paid_message:{said.send_id}",
        creator_id=said.creator_id,
        created_at_us=said.at_us,
        data=msgspec.convert(said, PaidMessageData, from_attributes=True),  # its fields, by name
    )


def ping_event(endpoint_id: int, creator_id: int, at_us: int) -> Event:
    return Event(
        event_id=f"ping:{secrets.token_hex(8)}",  # every test is its own event
        creator_id=creator_id,
        created_at_us=at_us,
        data=PingData(endpoint_id=endpoint_id, message="a test delivery from giftwave"),
    )


_CHANGE_DATA: Final[
    dict[
        ChangeKind,
        type[SubscriptionStartedData | SubscriptionRenewedData | SubscriptionLapsedData],
    ]
] = {
    ChangeKind.STARTED: SubscriptionStartedData,
    ChangeKind.RENEWED: SubscriptionRenewedData,
    ChangeKind.LAPSED: SubscriptionLapsedData,
}


def subscription_event(change: SubscriptionChange) -> Event:
    """Once per subscription, period and kind: a retry or a second node queues nothing new."""
    sub = change.subscription
    data = _CHANGE_DATA[change.kind](
        subscription_id=sub.id,
        subscriber_id=sub.subscriber_id,
        price_coins=sub.price_coins,
        status=sub.status.value,
        months=sub.months,
        paid_until_us=sub.paid_until_us,
    )
    if isinstance(data, SubscriptionStartedData):
        data = msgspec.structs.replace(data, gifted_by=change.gifted_by)
    return Event(
        event_id=f"subscription.{change.kind.value}:{sub.id}:{sub.months}",
        creator_id=sub.creator_id,
        created_at_us=change.at_us,
        data=data,
    )


def subscriptions_gifted_event(given: SubsGiven) -> Event:
    """Once per purchase (its buyer and key)."""
    return Event(
        event_id=f"subscription.gifted:{given.gift_id.removeprefix('gsub:')}",
        creator_id=given.creator_id,
        created_at_us=given.created_at_us,
        # Its fields by name, the recipients' too (the purchase's tuple becomes the list).
        data=msgspec.convert(given, SubscriptionGiftedData, from_attributes=True),
    )


def thanks_sent_event(thanks: Thanks) -> Event:
    """Once per stream (one thank-you each): a retry queues nothing new."""
    return Event(
        event_id=f"thanks.sent:{thanks.stream_id}",
        creator_id=thanks.creator_id,
        created_at_us=thanks.created_at_us,
        data=ThanksSentData(
            stream_id=thanks.stream_id,
            title=thanks.stream_title,
            message=thanks.message,
            to_all=thanks.to_all,
            recipients=[ThankedSupporter(r.user_id, r.handle) for r in thanks.recipients],
        ),
    )
