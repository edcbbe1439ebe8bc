"""Fan club rules, pure: names, the points table, levels (validated), who may chat."""

from __future__ import annotations

import pytest

from giftwave.errors import DomainError
from giftwave.social.clubs import (
    LEVELS,
    NAME_MAX_CHARS,
    ChatMode,
    Club,
    Levels,
    clean_name,
    may_chat,
    points_of,
)


def test_names() -> None:
    assert clean_name("  Luna Lovers ") == "Luna Lovers"
    assert clean_name("عشاق لونا") == "عشاق لونا"
    for bad in ("", " x ", "a" * (NAME_MAX_CHARS + 1), "a\u0000b", "line\nbreak", "\u202eab"):
        with pytest.raises(DomainError) as caught:
            clean_name(bad)
        assert caught.value.code == "invalid_club_name"


def test_points_table() -> None:
    assert points_of(0, 0, 0) == 0
    assert points_of(3, 0, 0) == 30
    assert points_of(0, 7, 0) == 7
    assert points_of(0, 0, 59) == 0  # whole minutes only
    assert points_of(0, 0, 120) == 10
    assert points_of(2, 3, 61) == 20 + 3 + 5


def test_levels() -> None:
    assert LEVELS.level(0) == 1
    assert LEVELS.level(99) == 1
    assert LEVELS.level(100) == 2
    assert LEVELS.level(10**12) == LEVELS.top
    assert Levels((0, 5)).level(5) == 2
    for bad in ((), (1, 2), (0, 5, 5), (0, 5, 3), tuple(range(51))):
        with pytest.raises(ValueError, match="club level"):
            Levels(bad)


def _club(mode: ChatMode, min_level: int = 1) -> Club:
    return Club(1, "Club", None, mode, min_level)


def test_who_may_chat() -> None:
    assert may_chat(None, None)  # no club: everyone
    assert may_chat(_club(ChatMode.EVERYONE), None)
    assert not may_chat(_club(ChatMode.MEMBERS), None)
    assert may_chat(_club(ChatMode.MEMBERS), 1)
    assert not may_chat(_club(ChatMode.MEMBERS_LEVEL, 3), 2)
    assert may_chat(_club(ChatMode.MEMBERS_LEVEL, 3), 3)
    assert not may_chat(_club(ChatMode.MEMBERS_LEVEL, 3), None)
    assert not may_chat(_club(ChatMode.SUBSCRIBERS), 5)  # a member, not subscribed
    assert may_chat(_club(ChatMode.SUBSCRIBERS), None, subscribed=True)
    # every mode has its rule (a new mode without one fails here)
    assert all(isinstance(may_chat(_club(mode), 1), bool) for mode in ChatMode)
