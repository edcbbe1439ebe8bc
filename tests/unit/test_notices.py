"""Node notices: one typed codec, the wire form of every kind pinned (nodes of two versions
share one Redis stream during a rolling upgrade), and what cannot be read is None."""

from __future__ import annotations

import orjson
import pytest

from giftwave.realtime.notices import (
    AnyNotice,
    ApiKeyRevoked,
    BanChanged,
    LevelChanged,
    SessionEnded,
    SubscriberChanged,
    UserChanged,
    decode_notice,
    encode_notice,
)

WIRE: list[tuple[AnyNotice, dict[str, object]]] = [
    (SessionEnded(token_hash="ab12"), {"type": "session_ended", "token_hash": "ab12"}),
    (UserChanged(user_id=7), {"type": "user_changed", "user_id": 7}),
    (ApiKeyRevoked(), {"type": "api_key_revoked"}),
    (BanChanged(creator_id=3, user_id=9), {"type": "ban_changed", "creator_id": 3, "user_id": 9}),
    (LevelChanged(user_id=9, level=12), {"type": "level_changed", "user_id": 9, "level": 12}),
    (
        SubscriberChanged(creator_id=3, user_id=9),
        {"type": "subscriber_changed", "creator_id": 3, "user_id": 9},
    ),
]


@pytest.mark.parametrize(("notice", "wire"), WIRE)
def test_each_kind_keeps_its_wire_form_and_comes_back_equal(
    notice: AnyNotice, wire: dict[str, object]
) -> None:
    data = encode_notice(notice)
    assert orjson.loads(data) == wire
    assert decode_notice(data) == notice
    assert decode_notice(orjson.dumps(wire)) == notice  # an older node's dict reads the same


@pytest.mark.parametrize(
    "data",
    [
        b'{"type": "club_changed", "user_id": 1}',  # a newer node's kind
        b'{"type": "user_changed"}',  # a field missing
        b'{"type": "user_changed", "user_id": "7"}',  # a field of another type
        b'{"user_id": 7}',  # no kind
        b"[1, 2]",
        b"not json",
        b"",
    ],
)
def test_a_notice_this_version_cannot_read_is_none(data: bytes) -> None:
    assert decode_notice(data) is None
