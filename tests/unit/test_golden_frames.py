"""The room's wire format, byte for byte (docs/protocol.md): the events every node publishes to
the broker and reads back, and the frames viewers receive, of every kind, key order included.

Both fixtures were recorded from the code before room events became typed values:
``room_news.jsonl`` is a scenario (broker events, one JSON object a line, and the commands
``tick <µs after T0>``, ``viewers <n>``, ``snapshot``), ``room_frames.jsonl`` every frame it
made. A change to a field's name, order or encoding fails here before a client or an older
node notices."""

from __future__ import annotations

from pathlib import Path

import orjson

from giftwave.live.events import (
    RoomNews,
    SpendingReminderShown,
    decode_news,
    encode_personal_text,
)
from giftwave.realtime.hub import Hub

GOLDEN = Path(__file__).parent.parent / "fixtures" / "golden"
STREAM = "st_g"
T0 = 1_700_000_000_000_000
EPOCH = "e0e0e0e0"


def _lines(name: str) -> list[bytes]:
    return (GOLDEN / name).read_bytes().splitlines()


def _news(raw: bytes) -> RoomNews:
    return decode_news(raw)


def _play() -> list[bytes]:
    now = [T0]
    hub = Hub(clock_us=lambda: now[0])
    channel = hub.channel(STREAM)
    channel.epoch = EPOCH
    frames: list[bytes] = []
    for line in _lines("room_news.jsonl"):
        if line.startswith(b"{"):
            hub.apply(STREAM, _news(line))
            continue
        command, _, arg = line.decode().partition(" ")
        if command == "tick":
            now[0] = T0 + int(arg)
            if channel.tick(now[0]):
                frames.append(channel.ring[-1].text.encode())
        elif command == "viewers":
            channel.room.set_viewers(int(arg))
        else:
            assert command == "snapshot", command
            frames.append(channel.snapshot_frame().text.encode())
    return frames


def test_every_frame_is_the_recorded_bytes() -> None:
    frames = _play()
    assert frames == _lines("room_frames.jsonl")
    kinds = {e["type"] for f in frames for e in orjson.loads(f)["events"]}
    assert kinds == {
        "snapshot", "gift", "combo_counts", "leaderboard", "like", "likers", "chat",
        "chat_deleted", "muted", "goal", "goal_reached", "battle", "battle_ended",
        "gift_reversed", "viewers", "join", "stream_ended",
    }  # fmt: skip


def test_a_personal_event_is_its_documented_bytes() -> None:
    """What one viewer alone is told (docs/protocol.md, "For one viewer alone"): not a frame
    (no seq, so a client's resume position is not touched), the event's keys in order."""
    said = SpendingReminderShown(
        reason="gifting_time", minutes=30, month_coins=0, average_month_coins=0
    )
    assert encode_personal_text(said) == (
        '{"v":1,"personal":{"type":"spending_reminder","reason":"gifting_time",'
        '"minutes":30,"month_coins":0,"average_month_coins":0}}'
    )
