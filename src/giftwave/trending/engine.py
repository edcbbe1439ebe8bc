"""The trending engine: pure, standard library only, no clock of its own (times are passed in).

An item's score at time ``t`` is ``Σ w_signal · value · 2^(-(t - t_event) / half_life)`` over
its counted events. Every score decays by the same factor as time passes, so the ORDER of items
never changes by waiting: the engine keeps each score normalised to one reference time ``t0``
(``norm = Σ w · value · 2^((t_event - t0) / half_life)``), adds an event in O(1), and turns a
norm back into a score only when it is read (``norm · 2^((t0 - t) / half_life)``). When the
exponents grow large, everything is rescaled to a newer ``t0`` (rare, O(items)).

Reads: one sorted list per (kind, language, country), with ``""`` meaning any, so an item is in
four lists. Recording only marks the item dirty in its lists; a list is brought up to date when
it is read, so a burst of events on one stream costs one re-placement, not one per event, and a
list nobody reads costs nothing (a list where many items moved is sorted again instead).

Anti-gaming, before anything counts:
  - an event whose actor is the item's creator counts for nothing (self-likes, self-shares);
  - shares, likes and new viewers count once per (item, signal, actor) per dedupe window (fixed
    windows of ``dedupe_window_s``; an event more than one window late is not counted);
  - an event with an ``event_id`` (a gift's send id) counts once: observers may see it twice.

Every structure is bounded: items (``max_items``; past it the lowest go), dedupe keys
(``max_dedupe_keys``; past it new keys do NOT count: refusing is the safe side against a flood),
event ids (``max_event_ids``, oldest forgotten first). ``prune`` evicts items whose score fell
below ``min_score``; ``end`` removes an item at once (a stream that ended).
"""

from __future__ import annotations

import enum
import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

US_PER_S: Final = 1_000_000
ANY: Final = ""
# Rescale to a newer reference time before 2^exponent gets near a float's range (2^1023).
REBASE_EXPONENT: Final = 512.0
# A list read with more than 1/REBUILD_SHARE of its items moved is sorted again as a whole.
REBUILD_SHARE: Final = 8


class Signal(enum.StrEnum):
    GIFT_COIN = "gift_coin"
    SHARE = "share"
    LIKE = "like"
    NEW_VIEWER = "new_viewer"


# Counted once per actor per window, whatever their value: one person is one like, one share,
# one new viewer, however often they tap or reconnect.
DEDUPED: Final = frozenset({Signal.SHARE, Signal.LIKE, Signal.NEW_VIEWER})
DEFAULT_WEIGHTS: Final[Mapping[Signal, float]] = {
    Signal.GIFT_COIN: 1.0,
    Signal.SHARE: 50.0,
    Signal.LIKE: 0.5,
    Signal.NEW_VIEWER: 5.0,
}


@dataclass(frozen=True, slots=True)
class TrendingConfig:
    half_life_s: float = 1800.0
    weights: Mapping[Signal, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    dedupe_window_s: float = 3600.0
    max_items: int = 50_000
    max_dedupe_keys: int = 1_000_000
    max_event_ids: int = 200_000
    min_score: float = 0.01  # below this (a fiftieth of one like) an item is forgotten

    def __post_init__(self) -> None:
        assert self.half_life_s > 0
        assert self.dedupe_window_s > 0
        assert self.max_items >= 1
        assert self.max_dedupe_keys >= 1
        assert self.max_event_ids >= 1
        assert self.min_score >= 0
        assert set(self.weights) == set(Signal), "a weight for every signal"
        assert all(w >= 0 and math.isfinite(w) for w in self.weights.values())


@dataclass(frozen=True, slots=True)
class Item:
    """What can trend: ``kind`` "stream" (the only kind); ``creator`` is the creator's actor."""

    id: str
    kind: str
    creator: str
    language: str
    country: str


@dataclass(frozen=True, slots=True)
class Ranked:
    item: Item
    score: float


@dataclass(slots=True)
class Stats:
    """What the anti-gaming rules and the bounds refused (for operators and tests)."""

    counted: int = 0
    self_ignored: int = 0
    duplicates: int = 0
    too_late: int = 0
    dedupe_full: int = 0
    evicted: int = 0


def _exp2(exponent: float) -> float:
    """2^exponent; past a float's range, infinity (only ever compared, never summed)."""
    return math.exp2(exponent) if exponent < 1023 else math.inf


def user_actor(user_id: int) -> str:
    return f"u:{user_id}"


ListKey = tuple[str, str, str]  # (kind, language, country), "" meaning any


@dataclass(slots=True)
class _Entry:
    item: Item
    norm: float
    lists: tuple[_List, ...]  # the four lists it is in


class _List:
    """One ranking: ``ranked`` ascending by (-norm, item id), so best first and ties by id.
    Items recorded since its last read are ``dirty``: placed again only when it is read."""

    __slots__ = ("dirty", "placed", "ranked")

    def __init__(self) -> None:
        self.ranked: list[tuple[float, str]] = []
        self.placed: dict[str, float] = {}  # item id → the -norm it has in ``ranked``
        self.dirty: set[str] = set()

    def place(self, entries: dict[str, _Entry]) -> None:
        dirty, placed = self.dirty, self.placed
        if not dirty:
            return
        if len(dirty) * REBUILD_SHARE > len(placed):
            # Many moved (a busy list read now and then): sorting all at once is cheaper.
            for item_id in dirty:
                placed[item_id] = -entries[item_id].norm
            self.ranked = sorted([(neg, item_id) for item_id, neg in placed.items()])
        else:
            ranked = self.ranked
            for item_id in dirty:
                self.remove(item_id)
                neg = placed[item_id] = -entries[item_id].norm
                insort(ranked, (neg, item_id))
        dirty.clear()

    def remove(self, item_id: str) -> None:
        neg = self.placed.pop(item_id, None)
        if neg is not None:
            at = bisect_left(self.ranked, (neg, item_id))
            assert self.ranked[at] == (neg, item_id)
            del self.ranked[at]


def _list_keys(item: Item) -> tuple[ListKey, ...]:
    return (
        (item.kind, ANY, ANY),
        (item.kind, item.language, ANY),
        (item.kind, ANY, item.country),
        (item.kind, item.language, item.country),
    )


class TrendingEngine:
    def __init__(self, config: TrendingConfig) -> None:
        self.config = config
        self.stats = Stats()
        self._half_life_us = config.half_life_s * US_PER_S
        self._window_us = int(config.dedupe_window_s * US_PER_S)
        self._weights = {signal: float(w) for signal, w in config.weights.items()}
        self._t0_us: int | None = None
        self._entries: dict[str, _Entry] = {}
        self._lists: dict[ListKey, _List] = {}
        self._buckets: dict[int, set[int]] = {}  # dedupe window number → hashed keys
        self._dedupe_keys = 0
        self._newest_bucket: int | None = None
        self._event_ids: set[str] = set()
        self._event_order: deque[str] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def record(
        self,
        signal: Signal,
        item: Item,
        actor: str,
        value: float,
        at_us: int,
        event_id: str | None = None,
    ) -> float:
        """Count one engagement event; returns the points it added (0: it did not count)."""
        assert value >= 0
        assert math.isfinite(value)
        if actor == item.creator:
            self.stats.self_ignored += 1
            return 0.0
        if event_id is not None and not self._first_time(event_id):
            self.stats.duplicates += 1
            return 0.0
        if signal in DEDUPED:
            if not self._first_in_window(item.id, signal, actor, at_us):
                return 0.0
            value = 1.0
        points = self._weights[signal] * value
        if points <= 0:
            return 0.0
        self._add(item, points, at_us)
        self.stats.counted += 1
        return points

    def item_ids(self) -> list[str]:
        return list(self._entries)

    def end(self, item_id: str) -> None:
        """The item stops trending now (a stream that ended)."""
        entry = self._entries.pop(item_id, None)
        if entry is None:
            return
        for key, ranking in zip(_list_keys(entry.item), entry.lists, strict=True):
            ranking.dirty.discard(item_id)
            ranking.remove(item_id)
            if not ranking.placed and not ranking.dirty:
                del self._lists[key]  # no entry holds it any more

    def score(self, item_id: str, now_us: int) -> float:
        entry = self._entries.get(item_id)
        return 0.0 if entry is None else self._decayed(entry.norm, now_us)

    def top(
        self,
        now_us: int,
        limit: int,
        *,
        kind: str = "stream",
        language: str = ANY,
        country: str = ANY,
    ) -> list[Ranked]:
        """The ``limit`` best items of one list, best first; equal scores by item id."""
        assert limit >= 0
        ranking = self._lists.get((kind, language, country))
        if ranking is None:
            return []
        ranking.place(self._entries)
        ranked: list[Ranked] = []
        for neg_norm, item_id in ranking.ranked[:limit]:
            score = self._decayed(-neg_norm, now_us)
            if score < self.config.min_score:
                break  # the rest are lower still
            ranked.append(Ranked(self._entries[item_id].item, score))
        return ranked

    def prune(self, now_us: int) -> int:
        """Forget items whose score fell below ``min_score``; returns how many went."""
        if self._t0_us is None:
            return 0
        # norm < floor ⇔ score at now_us < min_score
        floor = self.config.min_score * _exp2((now_us - self._t0_us) / self._half_life_us)
        gone = [item_id for item_id, e in self._entries.items() if e.norm < floor]
        for item_id in gone:
            self.end(item_id)
        self.stats.evicted += len(gone)
        return len(gone)

    def _first_time(self, event_id: str) -> bool:
        if event_id in self._event_ids:
            return False
        self._event_ids.add(event_id)
        self._event_order.append(event_id)
        if len(self._event_order) > self.config.max_event_ids:
            self._event_ids.discard(self._event_order.popleft())
        return True

    def _first_in_window(self, item_id: str, signal: Signal, actor: str, at_us: int) -> bool:
        bucket = at_us // self._window_us
        newest = self._newest_bucket
        if newest is None or bucket > newest:
            self._newest_bucket = newest = bucket
            for old in [b for b in self._buckets if b < bucket - 1]:
                self._dedupe_keys -= len(self._buckets.pop(old))
        if bucket < newest - 1:
            self.stats.too_late += 1
            return False
        keys = self._buckets.setdefault(bucket, set())
        key = hash((item_id, signal, actor))
        if key in keys:
            self.stats.duplicates += 1
            return False
        if self._dedupe_keys >= self.config.max_dedupe_keys:
            self.stats.dedupe_full += 1
            return False
        keys.add(key)
        self._dedupe_keys += 1
        return True

    def _add(self, item: Item, points: float, at_us: int) -> None:
        if self._t0_us is None:
            self._t0_us = at_us
        exponent = (at_us - self._t0_us) / self._half_life_us
        if exponent > REBASE_EXPONENT:
            self._rebase(at_us)
            exponent = 0.0
        item_id = item.id
        entry = self._entries.get(item_id)
        if entry is None:
            if len(self._entries) >= self.config.max_items:
                self._evict_lowest(item.kind)
            lists = self._lists
            rankings = tuple(lists.get(k) or lists.setdefault(k, _List()) for k in _list_keys(item))
            entry = self._entries[item_id] = _Entry(item, 0.0, rankings)
        entry.norm += points * math.exp2(exponent)  # exponent ≤ REBASE_EXPONENT: finite
        for ranking in entry.lists:
            ranking.dirty.add(item_id)

    def _evict_lowest(self, kind: str) -> None:
        """Room for one more item: the lowest-scored of its kind (or of any kind) goes."""
        ranking = self._lists.get((kind, ANY, ANY)) or next(
            lst for key, lst in self._lists.items() if key[1:] == (ANY, ANY)
        )
        ranking.place(self._entries)
        self.end(ranking.ranked[-1][1])
        self.stats.evicted += 1

    def _rebase(self, t_us: int) -> None:
        """A newer reference time: every norm scaled by the same factor, order unchanged."""
        assert self._t0_us is not None
        factor = _exp2((self._t0_us - t_us) / self._half_life_us)
        self._t0_us = t_us
        for entry in self._entries.values():
            entry.norm *= factor
        for ranking in self._lists.values():
            ranking.dirty.update(ranking.placed)  # every stored key changed

    def _decayed(self, norm: float, now_us: int) -> float:
        if self._t0_us is None:
            return 0.0
        return norm * _exp2((self._t0_us - now_us) / self._half_life_us)


@dataclass(frozen=True, slots=True)
class Event:
    """One engagement event as the reference rescan takes it."""

    signal: Signal
    item: Item
    actor: str
    value: float
    at_us: int
    event_id: str | None = None


def rescan(config: TrendingConfig, events: Iterable[Event], now_us: int) -> dict[str, float]:
    """Every item's score at ``now_us``, recomputed from all events with the same rules: the
    definition the engine must agree with, and the naive baseline `giftwave bench trending`
    measures it against. Events in time order, as they happened."""
    window_us = int(config.dedupe_window_s * US_PER_S)
    half_life_us = config.half_life_s * US_PER_S
    seen_ids: set[str] = set()
    seen_keys: set[tuple[str, Signal, str, int]] = set()
    newest_bucket: int | None = None
    scores: dict[str, float] = {}
    for event in events:
        if event.actor == event.item.creator:
            continue
        if event.event_id is not None:
            if event.event_id in seen_ids:
                continue
            seen_ids.add(event.event_id)
        value = event.value
        if event.signal in DEDUPED:
            bucket = event.at_us // window_us
            newest_bucket = bucket if newest_bucket is None else max(newest_bucket, bucket)
            key = (event.item.id, event.signal, event.actor, bucket)
            if bucket < newest_bucket - 1 or key in seen_keys:
                continue
            seen_keys.add(key)
            value = 1.0
        points = config.weights[event.signal] * value
        if points <= 0:
            continue
        decay = _exp2(-(now_us - event.at_us) / half_life_us)
        scores[event.item.id] = scores.get(event.item.id, 0.0) + points * decay
    return scores
