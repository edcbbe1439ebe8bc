"""A room's thank-you (no I/O): the creator's thanks for their last stream, said once however
often its news comes, kept for the snapshots of late joiners, taken down once by a hide (and
never shown again), and the exact bytes of each frame (docs/protocol.md, "thanks_shown")."""

from __future__ import annotations

from giftwave.live.events import (
    RoomEvent,
    Thanked,
    ThankedUser,
    ThanksHidden,
    ThanksHiddenShown,
    ThanksPosted,
    ThanksShown,
    decode_news,
    encode_frame_text,
    encode_news,
    plain,
)
from giftwave.live.room import Room, RoomSeed

S = 1_000_000


def _news(stream_id: str = "st_last") -> ThanksPosted:
    return ThanksPosted(
        stream_id=stream_id,
        title="Friday jazz",
        text="You made my night",
        recipients=[ThankedUser(2, "ana"), ThankedUser(3, "bo")],
        at_us=5 * S,
    )


def _thanks(events: list[RoomEvent]) -> list[RoomEvent]:
    return [e for e in events if isinstance(e, ThanksShown | ThanksHiddenShown)]


def test_said_once_kept_for_snapshots_and_hidden_once() -> None:
    room = Room("st_now", combo_quiet_us=3 * S)
    assert "thanks" not in plain(room.snapshot())  # none: the snapshot's bytes as before
    room.thanks(_news())
    room.thanks(_news())  # the same news again (a retry, a republish)
    [said] = _thanks(room.tick(S))
    assert encode_frame_text(1, "e", [said]) == (
        '{"v":1,"seq":1,"epoch":"e","events":[{"type":"thanks_shown","stream_id":"st_last",'
        '"title":"Friday jazz","text":"You made my night","recipients":[{"user_id":2,'
        '"handle":"ana"},{"user_id":3,"handle":"bo"}],"at_us":5000000}]}'
    )
    assert plain(room.snapshot())["thanks"]["text"] == "You made my night"

    room.hide_thanks("st_last")
    room.hide_thanks("st_last")
    [hidden] = _thanks(room.tick(2 * S))
    assert encode_frame_text(2, "e", [hidden]) == (
        '{"v":1,"seq":2,"epoch":"e","events":[{"type":"thanks_hidden","stream_id":"st_last"}]}'
    )
    assert "thanks" not in plain(room.snapshot())
    room.thanks(_news())  # late news of a hidden one: stays hidden
    assert _thanks(room.tick(3 * S)) == []
    # A room rebuilt from the database keeps it hidden too (a seed read before the hide).
    seed = Thanked(stream_id="st_last", title="t", text="hi", recipients=[], at_us=1)
    room.restore(RoomSeed(thanks=seed), 4 * S)
    assert "thanks" not in plain(room.snapshot())


def test_a_seeded_room_shows_it_to_every_joiner() -> None:
    room = Room("st_now", combo_quiet_us=3 * S)
    seed = RoomSeed(
        thanks=Thanked(
            stream_id="st_last", title="t", text="hi", recipients=[ThankedUser(2, "ana")], at_us=1
        )
    )
    room.restore(seed, S)
    assert plain(room.snapshot())["thanks"] == {
        "stream_id": "st_last",
        "title": "t",
        "text": "hi",
        "recipients": [{"user_id": 2, "handle": "ana"}],
        "at_us": 1,
    }


def test_news_travels_between_nodes_as_it_was_sent() -> None:
    for news in (_news(), ThanksHidden(stream_id="st_last")):
        assert decode_news(encode_news(news)) == news
    assert encode_news(ThanksHidden(stream_id="st_x")) == (
        b'{"type":"thanks_hidden","stream_id":"st_x"}'
    )
