"""A room's paid messages: pinned once however often their news comes, in frames and in a
late joiner's snapshot, gone at their time, hidden by a moderator for good, and rebuilt from a
seed; the tier a gift's coins buy, from the published table."""

from __future__ import annotations

import msgspec
import pytest

from giftwave.config import DEFAULT_PAID_MESSAGE_TIERS, Settings
from giftwave.economy.paid_messages import pin_for
from giftwave.errors import Code, Conflict
from giftwave.live.events import PaidMessage, PaidMessagePosted, plain
from giftwave.live.room import Room, RoomSeed

T0 = 1_700_000_000_000_000


def _posted(send_id: str = "gift:7:k1", until_us: int = T0 + 60_000_000) -> PaidMessagePosted:
    return PaidMessagePosted(
        send_id=send_id,
        sender_id=7,
        sender="ana",
        text="hello",
        gift_id="hand_hearts",
        coins=100,
        tier=1,
        colour="blue",
        pinned_until_us=until_us,
        at_us=T0,
    )


def _kinds(events: list[object]) -> list[str]:
    return [plain(e)["type"] for e in events]


def test_pinned_once_said_once_and_in_the_snapshot() -> None:
    room = Room("s", combo_quiet_us=1_000_000)
    room.paid_message(_posted())
    room.paid_message(_posted())  # a retry's news
    events = room.tick(T0 + 1)
    assert _kinds(events) == ["paid_message"]
    assert plain(events[0])["pinned_until_us"] == T0 + 60_000_000
    room.paid_message(_posted())
    assert room.tick(T0 + 2) == []
    snapshot = plain(room.snapshot())
    assert [m["send_id"] for m in snapshot["paid_messages"]] == ["gift:7:k1"]


def test_a_room_without_one_snapshots_as_before() -> None:
    assert "paid_messages" not in plain(Room("s", combo_quiet_us=1_000_000).snapshot())


def test_gone_at_its_time() -> None:
    room = Room("s", combo_quiet_us=1_000_000)
    room.paid_message(_posted(until_us=T0 + 10))
    room.tick(T0)
    room.tick(T0 + 10)
    assert "paid_messages" not in plain(room.snapshot())
    # Its news again after its time: never said, never pinned.
    room.paid_message(_posted(until_us=T0 + 10))
    assert room.tick(T0 + 20) == []
    assert "paid_messages" not in plain(room.snapshot())


def test_hidden_for_good() -> None:
    room = Room("s", combo_quiet_us=1_000_000)
    room.paid_message(_posted())
    room.tick(T0)
    room.hide_paid_message("gift:7:k1")
    room.hide_paid_message("gift:7:k1")
    events = room.tick(T0 + 1)
    assert [plain(e) for e in events] == [{"type": "paid_message_hidden", "send_id": "gift:7:k1"}]
    room.paid_message(_posted())  # a late retry's news
    assert room.tick(T0 + 2) == []
    assert "paid_messages" not in plain(room.snapshot())


def test_a_rebuilt_room_shows_the_seeds_pinned_messages() -> None:
    room = Room("s", combo_quiet_us=1_000_000)
    pinned = PaidMessage(**{k: v for k, v in plain(_posted()).items() if k != "type"})
    room.restore(RoomSeed(paid_messages=(pinned,)), T0)
    assert [m["text"] for m in plain(room.snapshot())["paid_messages"]] == ["hello"]


@pytest.mark.parametrize(
    ("coins", "tier", "colour", "pinned_s"),
    [(100, 1, "blue", 60), (499, 1, "blue", 60), (500, 2, "teal", 120), (10_000, 5, "red", 1800)],
)
def test_the_tier_a_gift_buys(coins: int, tier: int, colour: str, pinned_s: int) -> None:
    pin = pin_for(DEFAULT_PAID_MESSAGE_TIERS, coins, T0)
    assert (pin.tier, pin.colour, pin.pinned_until_us) == (tier, colour, T0 + pinned_s * 10**6)


def test_below_the_first_tier_is_refused() -> None:
    with pytest.raises(Conflict) as refused:
        pin_for(DEFAULT_PAID_MESSAGE_TIERS, 99, T0)
    assert refused.value.code is Code.PAID_MESSAGE_BELOW_TIER


def test_a_table_that_does_not_rise_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "GIFTWAVE_PAID_MESSAGE_TIERS",
        '[{"min_coins":500,"pinned_s":60,"colour":"blue"},'
        '{"min_coins":100,"pinned_s":120,"colour":"red"}]',
    )
    with pytest.raises(ValueError, match="must cost more"):
        Settings()


def test_the_senders_level_badge_when_known() -> None:
    room = Room("s", combo_quiet_us=1_000_000)
    room.paid_message(msgspec.structs.replace(_posted("gift:7:a"), level=12))
    room.paid_message(_posted("gift:7:b"))
    shown = [plain(e) for e in room.tick(T0)]
    assert [e.get("level") for e in shown] == [12, None]
    assert "level" not in shown[1]  # unknown: no key, as for chat lines
