"""The level badge and the level-up on the wire (docs/protocol.md): exact bytes of the new
fields and kind, and news without a level (an older node's) read as before."""

from __future__ import annotations

import orjson

from giftwave.live.events import (
    ChatPosted,
    GiftCommitted,
    Joined,
    LevelReached,
    decode_news,
    encode_news,
)
from giftwave.realtime.hub import Hub

T0 = 1_700_000_000_000_000
LEVELS = {7: 12}  # ana shows level 12; bo (8) has none


def _hub() -> Hub:
    return Hub(clock_us=lambda: T0, levels=LEVELS.get)


def _events(hub: Hub, stream: str) -> list[bytes]:
    channel = hub.channel(stream)
    channel.epoch = "e0"
    assert channel.tick(T0)
    frame = orjson.loads(channel.ring[-1].text)
    return [orjson.dumps(e) for e in frame["events"]]


def test_chat_and_join_carry_the_badge_the_node_gave_them() -> None:
    hub = _hub()
    hub.apply("s", Joined(user_id=7, handle="ana", level=hub.level_of(7)))
    hub.apply("s", Joined(user_id=8, handle="bo", level=hub.level_of(8)))
    hub.apply("s", ChatPosted(message_id="m1", user_id=7, handle="ana", text="hi", level=12))
    hub.apply("s", ChatPosted(message_id="m2", user_id=8, handle="bo", text="yo"))
    assert _events(hub, "s") == [
        b'{"type":"chat","message_id":"m1","user_id":7,"handle":"ana","text":"hi","level":12}',
        b'{"type":"chat","message_id":"m2","user_id":8,"handle":"bo","text":"yo"}',
        b'{"type":"join","users":[{"user_id":7,"handle":"ana","level":12},'
        b'{"user_id":8,"handle":"bo"}],"others":0}',
    ]
    snapshot = orjson.loads(hub.channel("s").snapshot_frame().text)["events"][0]
    assert [line.get("level") for line in snapshot["chat"]] == [12, None]


def test_level_up_and_top_gifters_badges() -> None:
    hub = _hub()
    for sender, handle, coins in ((7, "ana", 100), (8, "bo", 30)):
        gift = GiftCommitted(
            send_id=f"gift:{sender}:k",
            sender_id=sender,
            sender=handle,
            gift_id="hand_hearts",
            count=1,
            coins=coins,
            diamonds=coins,
            comboable=False,
            at_us=T0,
        )
        hub.apply("s", gift)
    hub.apply("s", LevelReached(user_id=7, handle="ana", level=12))
    events = _events(hub, "s")
    assert b'{"type":"level_up","user_id":7,"handle":"ana","level":12}' in events
    board = next(orjson.loads(e) for e in events if e.startswith(b'{"type":"leaderboard"'))
    assert board["top"] == [
        {"rank": 1, "user_id": 7, "handle": "ana", "coins": 100, "level": 12},
        {"rank": 2, "user_id": 8, "handle": "bo", "coins": 30},
    ]


def test_news_round_trip_and_older_news_without_a_level() -> None:
    chat = ChatPosted(message_id=None, user_id=7, handle="ana", text="hi", level=3)
    assert decode_news(encode_news(chat)) == chat
    old = b'{"type":"chat","message_id":null,"user_id":7,"handle":"ana","text":"hi"}'
    assert decode_news(old) == ChatPosted(message_id=None, user_id=7, handle="ana", text="hi")
    assert encode_news(ChatPosted(message_id=None, user_id=7, handle="ana", text="hi")) == old
    up = LevelReached(user_id=7, handle="ana", level=50)
    assert encode_news(up) == b'{"type":"level_up","user_id":7,"handle":"ana","level":50}'
    assert decode_news(encode_news(up)) == up
