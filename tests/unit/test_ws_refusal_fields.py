"""A WebSocket command's refusal carries the problem's own fields, as REST does: a gift
stopped mid-combo by the viewer's own limit says which limit, the limit, what was spent and
when it resets (api/live.py)."""

from __future__ import annotations

import orjson

from giftwave.api.live import _reply
from giftwave.errors import Code, RateLimited


async def test_a_refused_gift_answer_carries_the_limit() -> None:
    async def refused() -> dict[str, object]:
        raise RateLimited(
            Code.SPENDING_LIMIT_REACHED,
            "you reached your own daily spending limit of 150 coins",
            retry_after_s=60,
            limit="day",
            limit_coins=150,
            spent_coins=150,
            resets_at="2026-12-07T00:00:00+00:00",
        )

    answer = orjson.loads(await _reply("g7", refused()))
    assert answer["ack"] == "g7"
    assert answer["error"] == {
        "code": "spending_limit_reached",
        "detail": "you reached your own daily spending limit of 150 coins",
        "limit": "day",
        "limit_coins": 150,
        "spent_coins": 150,
        "resets_at": "2026-12-07T00:00:00+00:00",
    }
