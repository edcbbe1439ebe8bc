"""Paid highlighted messages: a chat line sent with a gift, pinned at the top of the room's
chat for a time its price buys (YouTube's Super Chat, on giftwave's ledger).

    SendGift(message=…) ──► the chat rules (live.chat_rules) ──► the tier its coins reach
        ──► the gift's chain, its gift_sends row carrying the message (ledger annex
            GIFT_SENDS_MESSAGE: the message exists exactly when the gift does)
        ──► PaidMessageSent to the message observers (room, webhooks), after the commit

The tiers are a published table (``GIFTWAVE_PAID_MESSAGE_TIERS``, served at
``GET /v1/paid-messages/tiers``); every rule here is a pure function of plain values. A message
with a gift below the first tier is refused before anything is billed: the sender asked for a
highlight their gift does not buy, and turning it silently into a plain chat line would take
their coins for something else than they chose (docs/economy.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from giftwave.config import PaidMessageTier
from giftwave.errors import Code, Conflict


@dataclass(frozen=True, slots=True)
class Pin:
    """What a gift's coins buy its message: tier (1 = the cheapest), colour, and until when."""

    tier: int
    colour: str
    pinned_until_us: int


@dataclass(frozen=True, slots=True)
class PaidMessageSent:
    """A committed gift's message, told to the message observers after the commit (again on
    a retry: observers take each ``send_id`` once)."""

    send_id: str
    stream_id: str
    creator_id: int
    sender_id: int
    sender: str  # the sender's handle
    text: str
    gift_id: str
    coins: int
    tier: int
    colour: str
    pinned_until_us: int
    at_us: int  # when the ledger recorded the gift


PaidMessageObserver = Callable[[PaidMessageSent], Awaitable[None]]
# (sender_id, stream_id, creator_id): raises a DomainError to refuse the message, and so the
# gift (the creator's chat mode, muted in the room, over the chat rate). Asked only for gifts
# that carry a message.
MessageGate = Callable[[int, str, int], Awaitable[None]]


def pin_for(tiers: Sequence[PaidMessageTier], coins: int, at_us: int) -> Pin:
    """The highest tier ``coins`` reach, or ``paid_message_below_tier``."""
    reached = [(i, t) for i, t in enumerate(tiers, start=1) if coins >= t.min_coins]
    if not reached:
        cheapest = tiers[0].min_coins
        raise Conflict(
            Code.PAID_MESSAGE_BELOW_TIER,
            f"a highlighted message needs a gift of at least {cheapest:,} coins",
            min_coins=cheapest,
        )
    number, tier = reached[-1]
    return Pin(number, tier.colour, at_us + tier.pinned_s * 1_000_000)


def published(tiers: Sequence[PaidMessageTier]) -> list[dict[str, object]]:
    """The table as the public route and the docs give it."""
    return [
        {"tier": i, "min_coins": t.min_coins, "pinned_s": t.pinned_s, "colour": t.colour}
        for i, t in enumerate(tiers, start=1)
    ]
