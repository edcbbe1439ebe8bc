"""A room's gifted subscriptions (no I/O): "ana gifted 2 subscriptions!" said once however
often the news comes, and the recipients' badges on the top gifters' board."""

from __future__ import annotations

from giftwave.live.events import (
    GiftCommitted,
    GiftedTo,
    LeaderboardShown,
    SubsGifted,
    SubsGiftedShown,
    plain,
)
from giftwave.live.room import Room

S = 1_000_000


def _news(gift_id: str = "gsub:1:k") -> SubsGifted:
    return SubsGifted(
        gift_id=gift_id,
        buyer_id=1,
        buyer="ana",
        count=2,
        recipients=[GiftedTo(2, "bo", 1), GiftedTo(3, "cy", 4)],
        at_us=5 * S,
    )


def test_said_once_per_purchase() -> None:
    room = Room("st", combo_quiet_us=3 * S)
    room.subs_gifted(_news())
    room.subs_gifted(_news())  # the buyer's retry: the same news again
    room.subs_gifted(_news("gsub:1:other"))
    said = [e for e in room.tick(10 * S) if isinstance(e, SubsGiftedShown)]
    assert [e.gift_id for e in said] == ["gsub:1:k", "gsub:1:other"]
    assert plain(said[0])["recipients"] == [
        {"user_id": 2, "handle": "bo", "months": 1},
        {"user_id": 3, "handle": "cy", "months": 4},
    ]


def test_the_board_shows_a_recipients_badge() -> None:
    room = Room("st", combo_quiet_us=3 * S)
    for sender, handle in ((3, "cy"), (9, "zed")):
        room.gift(
            GiftCommitted(
                send_id=f"gift:{sender}:a",
                sender_id=sender,
                sender=handle,
                gift_id="rose",
                count=1,
                coins=10,
                diamonds=10,
                comboable=False,
                at_us=S,
            )
        )
    room.tick(2 * S)
    room.subs_gifted(_news())
    boards = [e for e in room.tick(60 * S) if isinstance(e, LeaderboardShown)]
    rows = {row["handle"]: row for row in plain(boards[-1])["top"]}
    assert rows["cy"]["sub_months"] == 4
    assert "sub_months" not in rows["zed"]  # no badge: the row's bytes are as before
