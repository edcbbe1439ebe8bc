"""The trending engine (no I/O): decay against the formula, order and ties, per-language and
per-country lists, anti-gaming, bounds, and the incremental scores equal to a full rescan."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from giftwave.trending.engine import (
    DEFAULT_WEIGHTS,
    Event,
    Item,
    Signal,
    TrendingConfig,
    TrendingEngine,
    rescan,
    user_actor,
)

S = 1_000_000
HALF_LIFE_S = 1800.0
T0 = 1_700_000_000 * S  # an ordinary wall-clock time, as the server passes them


def _item(n: int, language: str = "en", country: str = "US") -> Item:
    return Item(f"st_{n:03d}", "stream", user_actor(1000 + n), language, country)


def _engine(**overrides: object) -> TrendingEngine:
    return TrendingEngine(TrendingConfig(half_life_s=HALF_LIFE_S, **overrides))  # type: ignore[arg-type]


def _direct(events: list[tuple[float, int]], now_us: int) -> float:
    """Σ points · 2^(-(now - t) / half_life), written out."""
    return sum(p * 0.5 ** ((now_us - t) / (HALF_LIFE_S * S)) for p, t in events)


def test_a_score_decays_by_half_every_half_life_as_the_formula_says() -> None:
    engine = _engine()
    item = _item(1)
    events: list[tuple[float, int]] = []
    for i, (coins, at) in enumerate([(100, T0), (7, T0 + 600 * S), (30, T0 + 2000 * S)]):
        engine.record(Signal.GIFT_COIN, item, user_actor(i), coins, at)
        events.append((coins * 1.0, at))
    engine.record(Signal.LIKE, item, user_actor(9), 1, T0 + 100 * S)
    events.append((0.5, T0 + 100 * S))
    for now in (T0 + 2000 * S, T0 + 3800 * S, T0 + 9 * 3600 * S):
        assert engine.score(item.id, now) == pytest.approx(_direct(events, now), rel=1e-12)
    # one half-life after the last event with no news: exactly half of what it was
    last = T0 + 2000 * S
    assert engine.score(item.id, last + 1800 * S) == pytest.approx(
        engine.score(item.id, last) / 2, rel=1e-12
    )
    ranked = engine.top(T0 + 3800 * S, 10)
    assert [(r.item.id, r.score) for r in ranked] == [
        (item.id, pytest.approx(_direct(events, T0 + 3800 * S), rel=1e-12))
    ]


def test_the_default_weights_are_applied_per_signal() -> None:
    engine = _engine()
    item = _item(1)
    assert engine.record(Signal.GIFT_COIN, item, user_actor(1), 25, T0) == 25.0
    assert engine.record(Signal.SHARE, item, user_actor(1), 1, T0) == DEFAULT_WEIGHTS[Signal.SHARE]
    assert engine.record(Signal.LIKE, item, user_actor(1), 1, T0) == DEFAULT_WEIGHTS[Signal.LIKE]
    assert engine.record(Signal.NEW_VIEWER, item, "h:ab", 1, T0) == 5.0
    assert engine.score(item.id, T0) == pytest.approx(25 + 50 + 0.5 + 5)


def test_configured_weights_replace_the_defaults() -> None:
    weights = dict(DEFAULT_WEIGHTS) | {Signal.LIKE: 0.0, Signal.GIFT_COIN: 2.0}
    engine = _engine(weights=weights)
    item = _item(1)
    assert engine.record(Signal.LIKE, item, user_actor(1), 1, T0) == 0.0
    assert engine.record(Signal.GIFT_COIN, item, user_actor(1), 10, T0) == 20.0


def test_newer_engagement_outranks_older_engagement_of_the_same_size() -> None:
    engine = _engine()
    old, new = _item(1), _item(2)
    engine.record(Signal.GIFT_COIN, old, user_actor(5), 1000, T0)
    engine.record(Signal.GIFT_COIN, new, user_actor(5), 600, T0 + 1800 * S)  # 600 > 1000 / 2
    assert [r.item.id for r in engine.top(T0 + 1800 * S, 10)] == [new.id, old.id]


def test_equal_scores_are_ordered_by_item_id_whatever_the_arrival_order() -> None:
    for order in ([3, 1, 2], [2, 3, 1], [1, 2, 3]):
        engine = _engine()
        for n in order:
            engine.record(Signal.GIFT_COIN, _item(n), user_actor(7), 50, T0)
        engine.record(Signal.GIFT_COIN, _item(9), user_actor(7), 51, T0)
        assert [r.item.id for r in engine.top(T0, 10)] == ["st_009", "st_001", "st_002", "st_003"]


def test_lists_per_language_per_country_and_both() -> None:
    engine = _engine()
    items = [
        _item(1, "en", "US"),
        _item(2, "es", "MX"),
        _item(3, "es", "ES"),
        _item(4, "en", "GB"),
        _item(5, "es", "US"),
    ]
    for n, item in enumerate(items, start=1):
        engine.record(Signal.GIFT_COIN, item, user_actor(99), 10 * n, T0)

    def ids(**where: str) -> list[str]:
        return [r.item.id for r in engine.top(T0, 10, **where)]

    assert ids() == ["st_005", "st_004", "st_003", "st_002", "st_001"]
    assert ids(language="es") == ["st_005", "st_003", "st_002"]
    assert ids(country="US") == ["st_005", "st_001"]
    assert ids(language="es", country="US") == ["st_005"]
    assert ids(language="fr") == []
    assert ids(kind="clip") == []
    assert [r.item.id for r in engine.top(T0, 2, language="es")] == ["st_005", "st_003"]
    # a later event moves an item within every list it is in
    engine.record(Signal.GIFT_COIN, items[1], user_actor(99), 1000, T0)
    assert ids(language="es")[0] == "st_002"
    assert ids(country="MX") == ["st_002"]
    assert ids()[0] == "st_002"


def test_likes_and_shares_count_once_per_actor_per_window() -> None:
    engine = _engine(dedupe_window_s=3600)
    item, other = _item(1), _item(2)
    start = (T0 // (3600 * S)) * 3600 * S  # the start of a window
    assert engine.record(Signal.LIKE, item, user_actor(1), 50, start) == 0.5  # 50 taps: one
    assert engine.record(Signal.LIKE, item, user_actor(1), 1, start + 10 * S) == 0.0
    assert engine.record(Signal.SHARE, item, user_actor(1), 1, start + 20 * S) == 50.0
    assert engine.record(Signal.SHARE, item, user_actor(1), 1, start + 30 * S) == 0.0
    assert engine.record(Signal.SHARE, item, "h:1234", 1, start + 30 * S) == 50.0
    assert engine.record(Signal.SHARE, item, "h:1234", 1, start + 40 * S) == 0.0
    assert engine.record(Signal.NEW_VIEWER, item, "h:1234", 1, start + 40 * S) == 5.0
    assert engine.record(Signal.NEW_VIEWER, item, "h:1234", 1, start + 41 * S) == 0.0
    assert (
        engine.record(Signal.LIKE, other, user_actor(1), 1, start + 50 * S) == 0.5
    )  # another item
    assert engine.record(Signal.LIKE, item, user_actor(2), 1, start + 50 * S) == 0.5  # another user
    # the next window: they count again
    assert engine.record(Signal.LIKE, item, user_actor(1), 1, start + 3600 * S) == 0.5
    assert engine.record(Signal.SHARE, item, user_actor(1), 1, start + 3601 * S) == 50.0
    assert engine.stats.duplicates == 4
    # gifts are not "once per window": every coin counts
    assert engine.record(Signal.GIFT_COIN, item, user_actor(1), 5, start + 3602 * S) == 5.0
    assert engine.record(Signal.GIFT_COIN, item, user_actor(1), 5, start + 3603 * S) == 5.0


def test_an_event_more_than_one_window_late_does_not_count() -> None:
    engine = _engine(dedupe_window_s=3600)
    item = _item(1)
    engine.record(Signal.LIKE, item, user_actor(1), 1, T0 + 3 * 3600 * S)
    assert engine.record(Signal.LIKE, item, user_actor(2), 1, T0 + 2 * 3600 * S) == 0.5
    assert engine.record(Signal.LIKE, item, user_actor(3), 1, T0) == 0.0
    assert engine.stats.too_late == 1


def test_the_same_gift_seen_twice_counts_once() -> None:
    engine = _engine()
    item = _item(1)
    assert engine.record(Signal.GIFT_COIN, item, user_actor(1), 100, T0, "gift:1:a") == 100
    assert engine.record(Signal.GIFT_COIN, item, user_actor(1), 100, T0, "gift:1:a") == 0
    assert engine.record(Signal.GIFT_COIN, item, user_actor(1), 100, T0, "gift:1:b") == 100
    assert engine.score(item.id, T0) == pytest.approx(200)


@pytest.mark.parametrize("signal", list(Signal))
def test_the_creators_own_engagement_counts_for_nothing(signal: Signal) -> None:
    engine = _engine()
    item = _item(1)
    assert engine.record(signal, item, item.creator, 1000, T0) == 0.0
    assert engine.top(T0, 10) == []
    assert engine.stats.self_ignored == 1


def test_items_that_decayed_to_nothing_are_pruned_and_ended_ones_leave_at_once() -> None:
    engine = _engine()
    hot, cold, ended = _item(1), _item(2), _item(3)
    engine.record(Signal.GIFT_COIN, cold, user_actor(5), 1, T0)
    engine.record(Signal.GIFT_COIN, ended, user_actor(5), 10**6, T0)
    engine.record(Signal.GIFT_COIN, hot, user_actor(5), 10**6, T0 + 10 * 1800 * S)
    engine.end(ended.id)
    assert [r.item.id for r in engine.top(T0 + 10 * 1800 * S, 10)] == [hot.id]  # cold: < 0.01
    assert engine.prune(T0 + 10 * 1800 * S) == 1
    assert sorted(engine.item_ids()) == [hot.id]
    engine.end("st_unknown")  # nothing to end: no error
    assert engine.prune(T0 + 40 * 1800 * S) == 1  # 10^6 / 2^30 < 0.01
    assert len(engine) == 0
    assert engine.top(T0 + 40 * 1800 * S, 10) == []


def test_items_are_bounded_and_the_lowest_goes_first() -> None:
    engine = _engine(max_items=3)
    for n, coins in enumerate([50, 10, 30, 40, 5], start=1):
        engine.record(Signal.GIFT_COIN, _item(n), user_actor(99), coins, T0)
        assert len(engine) <= 3
    # 2 (10) went for 4, then 3 (30) for 5; 5 itself is the lowest but was just recorded
    assert [r.item.id for r in engine.top(T0, 10)] == ["st_001", "st_004", "st_005"]
    assert engine.stats.evicted == 2


def test_dedupe_keys_are_bounded_and_refuse_new_actors_when_full() -> None:
    engine = _engine(max_dedupe_keys=3, dedupe_window_s=3600)
    item = _item(1)
    start = (T0 // (3600 * S)) * 3600 * S
    counted = [engine.record(Signal.LIKE, item, user_actor(u), 1, start) for u in range(5)]
    assert counted == [0.5, 0.5, 0.5, 0.0, 0.0]
    assert engine.stats.dedupe_full == 2
    # two windows on, the old keys are gone and there is room again
    assert engine.record(Signal.LIKE, item, user_actor(4), 1, start + 2 * 3600 * S) == 0.5


def test_remembered_gift_ids_are_bounded() -> None:
    engine = _engine(max_event_ids=2)
    item = _item(1)
    for key in ("a", "b", "c"):
        engine.record(Signal.GIFT_COIN, item, user_actor(1), 1, T0, key)
    assert engine.record(Signal.GIFT_COIN, item, user_actor(1), 1, T0, "c") == 0  # remembered
    assert engine.record(Signal.GIFT_COIN, item, user_actor(1), 1, T0, "a") == 1  # forgotten


def test_scores_stay_exact_across_the_rescaling_of_the_reference_time() -> None:
    engine = _engine()
    a, b = _item(1), _item(2)
    engine.record(Signal.GIFT_COIN, a, user_actor(5), 1000, T0)
    late = T0 + 600 * 1800 * S  # 600 half-lives later: 2^600 is past the rescaling point
    engine.record(Signal.GIFT_COIN, b, user_actor(5), 10, late)
    engine.record(Signal.GIFT_COIN, a, user_actor(5), 20, late)
    assert engine.score(a.id, late) == pytest.approx(20 + 1000 * 2.0**-600, rel=1e-12)
    assert engine.score(b.id, late + 1800 * S) == pytest.approx(5, rel=1e-12)
    assert [r.item.id for r in engine.top(late, 10)] == [a.id, b.id]
    assert all(math.isfinite(r.score) for r in engine.top(late + 10**6 * S, 10))


_ITEMS = [
    _item(n, lang, country)
    for n, (lang, country) in enumerate(
        [("en", "US"), ("es", "MX"), ("es", "US"), ("ar", "EG"), ("en", "GB")]
    )
]
_event = st.builds(
    lambda signal, item, actor, value, gap_s, gift_no: (signal, item, actor, value, gap_s, gift_no),
    st.sampled_from(list(Signal)),
    st.sampled_from(_ITEMS),
    st.sampled_from([user_actor(1), user_actor(2), "h:aa", _ITEMS[0].creator, _ITEMS[1].creator]),
    st.integers(min_value=1, max_value=5000),
    st.integers(min_value=0, max_value=2400),
    st.integers(min_value=0, max_value=30),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_event, max_size=120), st.integers(min_value=0, max_value=20_000))
def test_incremental_scores_equal_a_full_rescan(
    raw: list[tuple[Signal, Item, str, int, int, int]], read_after_s: int
) -> None:
    engine = _engine(dedupe_window_s=3600)
    events: list[Event] = []
    at = T0
    for signal, item, actor, value, gap_s, gift_no in raw:
        at += gap_s * S
        event_id = f"gift:{gift_no}" if signal is Signal.GIFT_COIN else None
        events.append(Event(signal, item, actor, value, at, event_id))
        engine.record(signal, item, actor, value, at, event_id)
        if gap_s % 7 == 0:  # reads in between place items in their lists
            engine.top(at, 3, language=item.language)
    now = at + read_after_s * S
    expected = rescan(engine.config, events, now)
    for item in _ITEMS:
        assert engine.score(item.id, now) == pytest.approx(expected.get(item.id, 0.0), rel=1e-9)
    ranked = engine.top(now, len(_ITEMS))
    want = sorted(
        (i for i, score in expected.items() if score >= engine.config.min_score),
        key=lambda i: (-expected[i], i),
    )
    got = [r.item.id for r in ranked]
    assert sorted(got) == sorted(want)
    scores = [expected[i] for i in got]  # best first, by the rescan's own scores too
    assert all(x >= y * (1 - 1e-9) for x, y in itertools.pairwise(scores))
    for lang in ("en", "es", "ar"):
        in_lang = [r.item.id for r in engine.top(now, 10, language=lang)]
        assert in_lang == [i for i in got if i in {it.id for it in _ITEMS if it.language == lang}]
