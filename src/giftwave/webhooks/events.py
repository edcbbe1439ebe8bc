"""What a webhook says: the event types a creator subscribes to, and the body of each.

Every body is one envelope::

    {"id": "<event id>", "type": "gift", "created_at_us": …, "creator_id": …, "data": {…}}

Event ids are derived from what happened (``gift:<sender>:<key>``, ``combo:<combo id>``,
``goal_reached:<goal id>``, ``battle_ended:<battle id>``, ``gift_reversed:<send id>``), never
drawn at random: the same
event enqueued twice, by a retry or by two nodes, is one outbox row.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from giftwave.economy.gifting import GiftSent
from giftwave.economy.reversals import GiftReversed
from giftwave.live.goals import Goal

EVENT_ID_MAX_CHARS: Final = 160


class EventType(enum.StrEnum):
    GIFT = "gift"  # one committed gift send
    COMBO_END = "combo_end"  # a combo's final total ("Rose x57"); a gift that cannot combo
    GOAL_REACHED = "goal_reached"
    BATTLE_ENDED = "battle_ended"
    GIFT_REVERSED = "gift_reversed"  # an operator reversed a committed gift
    PING = "ping"  # sent by the test route only; nobody subscribes to it


SUBSCRIBABLE: Final = (
    EventType.GIFT,
    EventType.COMBO_END,
    EventType.GOAL_REACHED,
    EventType.BATTLE_ENDED,
    EventType.GIFT_REVERSED,
)


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    type: EventType
    creator_id: int
    created_at_us: int
    data: Mapping[str, Any]

    def __post_init__(self) -> None:
        assert 0 < len(self.event_id) <= EVENT_ID_MAX_CHARS, self.event_id

    def body(self) -> str:
        """The JSON that is signed and sent, the same bytes on every attempt."""
        envelope = {
            "id": self.event_id,
            "type": self.type.value,
            "created_at_us": self.created_at_us,
            "creator_id": self.creator_id,
            "data": dict(self.data),
        }
        return orjson.dumps(envelope).decode()


def gift_event(sent: GiftSent, sender_handle: str) -> Event:
    return Event(
        event_id=sent.send_id,  # already "gift:<sender>:<key>"
        type=EventType.GIFT,
        creator_id=sent.creator_id,
        created_at_us=sent.created_at_us,
        data={
            "stream_id": sent.stream_id,
            "send_id": sent.send_id,
            "sender_id": sent.sender_id,
            "sender": sender_handle,
            "gift_id": sent.gift_id,
            "count": sent.count,
            "coins": sent.coins,
            "diamonds": sent.diamonds,
        },
    )


def gift_reversed_event(done: GiftReversed) -> Event:
    """The same body on every replay: the reversal's time is the ledger's."""
    gift = done.gift
    return Event(
        event_id=f"gift_reversed:{done.send_id}",
        type=EventType.GIFT_REVERSED,
        creator_id=gift.creator_id,
        created_at_us=done.reversed_at_us,
        data={
            "stream_id": gift.stream_id,
            "send_id": done.send_id,
            "sender_id": gift.sender_id,
            "sender": gift.sender_handle,
            "gift_id": gift.gift_id,
            "count": gift.count,
            "coins": gift.coins,
            "diamonds": gift.diamonds,
            "sent_at_us": gift.created_at_us,
            "diamonds_taken": done.diamonds_taken,
            "diamonds_debt": done.diamonds_debt,
        },
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
        type=EventType.COMBO_END,
        creator_id=creator_id,
        created_at_us=last_at_us,
        data={
            "stream_id": stream_id,
            "combo_id": combo_id,
            "sender_id": sender_id,
            "sender": sender_handle,
            "gift_id": gift_id,
            "count": count,
            "coins": coins,
            "diamonds": diamonds,
            "sends": sends,
            "started_at_us": started_at_us,
            "last_gift_at_us": last_at_us,
        },
    )


def single_combo_end(sent: GiftSent, sender_handle: str, at_us: int) -> Event:
    """A gift that cannot combo ends at once, like its ``final`` event in the room."""
    return combo_end_event(
        creator_id=sent.creator_id,
        stream_id=sent.stream_id,
        combo_id=sent.send_id,
        sender_id=sent.sender_id,
        sender_handle=sender_handle,
        gift_id=sent.gift_id,
        count=sent.count,
        coins=sent.coins,
        diamonds=sent.diamonds,
        sends=1,
        started_at_us=at_us,
        last_at_us=at_us,
    )


def goal_reached_event(goal: Goal, creator_id: int, progress: int | None, at_us: int) -> Event:
    return Event(
        event_id=f"goal_reached:{goal.id}",
        type=EventType.GOAL_REACHED,
        creator_id=creator_id,
        created_at_us=at_us,
        data={
            "stream_id": goal.stream_id,
            **goal.as_event_fields(),
            "progress": progress if progress is not None else goal.target,
        },
    )


def battle_ended_event(
    battle_id: str, creator_id: int, data: Mapping[str, Any], at_us: int
) -> Event:
    return Event(
        event_id=f"battle_ended:{battle_id}",
        type=EventType.BATTLE_ENDED,
        creator_id=creator_id,
        created_at_us=at_us,
        data={"battle_id": battle_id, **data},
    )


def ping_event(endpoint_id: int, creator_id: int, at_us: int) -> Event:
    return Event(
        event_id=f"ping:{secrets.token_hex(8)}",  # every test is its own event
        type=EventType.PING,
        creator_id=creator_id,
        created_at_us=at_us,
        data={"endpoint_id": endpoint_id, "message": "a test delivery from giftwave"},
    )
