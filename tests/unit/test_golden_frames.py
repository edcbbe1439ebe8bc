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

from giftwave.live.events import RoomNews, decode_news
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
