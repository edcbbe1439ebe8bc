"""Fan club rules, pure: names, the points table, levels (validated); who may chat under each
chat mode, with a club and without."""

from __future__ import annotations

import pytest

from giftwave.errors import DomainError
from giftwave.social.chat_settings import EVERYONE, ChatMode, ChatSetting, in_force, may_chat
from giftwave.social.clubs import LEVELS, NAME_MAX_CHARS, Club, Levels, clean_name, points_of


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


CLUB = Club(1, "Club", None)


def _mode(mode: ChatMode, min_level: int = 1) -> ChatSetting:
    return ChatSetting(mode, min_level)


def test_who_may_chat() -> None:
    assert may_chat(EVERYONE, None, None)  # no club, never chose: everyone
    assert may_chat(_mode(ChatMode.EVERYONE), CLUB, None)
    assert not may_chat(_mode(ChatMode.MEMBERS), CLUB, None)
    assert may_chat(_mode(ChatMode.MEMBERS), CLUB, 1)
    assert not may_chat(_mode(ChatMode.MEMBERS_LEVEL, 3), CLUB, 2)
    assert may_chat(_mode(ChatMode.MEMBERS_LEVEL, 3), CLUB, 3)
    assert not may_chat(_mode(ChatMode.MEMBERS_LEVEL, 3), CLUB, None)
    assert not may_chat(_mode(ChatMode.SUBSCRIBERS), CLUB, 5)  # a member, not subscribed
    assert may_chat(_mode(ChatMode.SUBSCRIBERS), CLUB, None, subscribed=True)
    # every mode has its rule (a new mode without one fails here)
    assert all(isinstance(may_chat(_mode(mode), CLUB, 1), bool) for mode in ChatMode)


def test_subscribers_only_needs_no_club() -> None:
    assert not may_chat(_mode(ChatMode.SUBSCRIBERS), None, None)
    assert may_chat(_mode(ChatMode.SUBSCRIBERS), None, None, subscribed=True)


def test_a_club_mode_without_its_club_is_everyone() -> None:
    # The safe answer should the club go: nobody could meet the mode, nor join a club.
    for mode in (ChatMode.MEMBERS, ChatMode.MEMBERS_LEVEL):
        assert in_force(_mode(mode, 3), None) == EVERYONE
        assert may_chat(_mode(mode, 3), None, None)
        assert in_force(_mode(mode, 3), CLUB) == _mode(mode, 3)
