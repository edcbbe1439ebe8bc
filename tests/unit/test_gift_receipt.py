"""A gift's receipt is built by hand on the hot path (api/streams.py ``receipt``) and must be
what the documented model, ``GiftSentOut``, answers: the same fields in the same order, no
``reminder`` when there is none, and the retry flag never in it."""

from __future__ import annotations

import orjson
import pytest

from giftwave.api.streams import GiftSentOut, receipt
from giftwave.economy.gifting import GiftSent
from giftwave.economy.spending_reminders import ABOVE_AVERAGE, GIFTING_TIME, Reminder

SENT = GiftSent(
    send_id="s-1",
    stream_id="st-9",
    creator_id=7,
    sender_id=11,
    gift_id="rose",
    gift_version=2,
    count=3,
    coins=3,
    diamonds=1,
    balance_coins=97,
    created_at_us=1_765_000_000_123_456,
)


@pytest.mark.parametrize(
    "reminder",
    [
        None,
        Reminder(GIFTING_TIME, minutes=31),
        Reminder(ABOVE_AVERAGE, month_coins=5_001, average_month_coins=5_000),
    ],
)
@pytest.mark.parametrize("replayed", [False, True])
def test_the_receipt_is_the_documented_model_byte_for_byte(
    reminder: Reminder | None, replayed: bool
) -> None:
    sent = GiftSent(**{**SENT.as_dict(), "replayed": replayed})  # type: ignore[arg-type]
    documented = GiftSentOut.of(sent, reminder).model_dump_json(exclude_none=True).encode()
    assert orjson.dumps(receipt(sent, reminder)) == documented
    assert ("reminder" in orjson.loads(documented)) == (reminder is not None)
    assert "replayed" not in orjson.loads(documented)
