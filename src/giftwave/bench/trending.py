"""``giftwave bench trending``: 100,000 engagement events through the trending engine.

A synthetic hour of a busy platform (fixed seed): 2,000 live streams in 6 languages and 12
countries, 30,000 viewers; events are likes (40%), committed gifts (30%, some seen twice),
new viewers (20%, half of them anonymous) and shares (10%), a few of them the creator's own.
After every 1,000 events the lists are read as a page would (the top 20 overall, in one
language, in one country): 100 reads.

The measured run (3 times, the median reported): the incremental engine (O(1) per event, lists
placed when read). The baseline, in the same run: the same reads answered by a naive full rescan
that recomputes every score from all events so far (``trending.engine.rescan``), then sorts and
filters the three lists. Both must agree on the final top 20 (``verified``). No database, no
server: this measures the ranking itself, on one core.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final

from giftwave.trending.engine import (
    Event,
    Item,
    Signal,
    TrendingConfig,
    TrendingEngine,
    rescan,
    user_actor,
)

EVENTS: Final = 100_000
STREAMS: Final = 2_000
VIEWERS: Final = 30_000
READ_EVERY: Final = 1_000
TOP: Final = 20
HOUR_US: Final = 3600 * 1_000_000
LANGUAGES: Final = ("en", "es", "pt-BR", "ar", "fr", "id")
COUNTRIES: Final = ("US", "MX", "BR", "EG", "FR", "ID", "ES", "AR", "SA", "GB", "CO", "CA")
GIFT_COINS: Final = (1, 1, 1, 5, 5, 30, 99, 500, 1000, 29_999)


@dataclass(slots=True)
class TrendingBenchResult:
    events: int
    streams: int
    reads: int
    trending_100k_events_s: float  # the median of the runs
    runs_s: list[float]
    baseline_full_rescan_s: float  # the same reads, each a full rescan of the events so far
    ratio: float
    full_rescan_once_s: float  # one rescan of all 100,000 events: one request's cost
    read_us_mean: float  # one read of the three lists, incremental
    events_per_s: float
    counted: int
    ignored: dict[str, int]
    verified: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def synthetic_events(seed: int = 7) -> list[Event]:
    rng = random.Random(seed)
    items = [
        Item(
            f"st_{n:05d}",
            "stream",
            user_actor(1_000_000 + n),
            LANGUAGES[n % len(LANGUAGES)],
            COUNTRIES[(n * 7) % len(COUNTRIES)],
        )
        for n in range(STREAMS)
    ]
    # Popularity is skewed, as on any platform: a few streams get most of the attention.
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(STREAMS)]
    chosen = rng.choices(items, weights=weights, k=EVENTS)
    events: list[Event] = []
    gift_ids: list[str] = []
    for n, item in enumerate(chosen):
        at_us = n * HOUR_US // EVENTS
        roll = rng.random()
        viewer = user_actor(rng.randrange(VIEWERS))
        if rng.random() < 0.01:
            viewer = item.creator  # the creator's own: counts for nothing
        if roll < 0.4:
            events.append(Event(Signal.LIKE, item, viewer, rng.randint(1, 50), at_us))
        elif roll < 0.7:
            if gift_ids and rng.random() < 0.05:  # an observer saw it twice
                events.append(Event(Signal.GIFT_COIN, item, viewer, 1, at_us, gift_ids[-1]))
                continue
            gift_ids.append(f"gift:{n}")
            coins = rng.choice(GIFT_COINS)
            events.append(Event(Signal.GIFT_COIN, item, viewer, coins, at_us, gift_ids[-1]))
        elif roll < 0.9:
            actor = viewer if rng.random() < 0.5 else f"h:{rng.randrange(VIEWERS):08x}"
            events.append(Event(Signal.NEW_VIEWER, item, actor, 1, at_us))
        else:
            events.append(Event(Signal.SHARE, item, viewer, 1, at_us))
    return events


def _reads(_events: list[Event], index: int) -> tuple[str, str]:
    """Which language and country the read after event ``index`` asks for."""
    n = index // READ_EVERY
    return LANGUAGES[n % len(LANGUAGES)], COUNTRIES[n % len(COUNTRIES)]


def _incremental(config: TrendingConfig, events: list[Event]) -> tuple[float, float, Any]:
    engine = TrendingEngine(config)
    record = engine.record
    read_s = 0.0
    top: list[str] = []
    started = time.perf_counter()
    for index, e in enumerate(events, start=1):
        record(e.signal, e.item, e.actor, e.value, e.at_us, e.event_id)
        if index % READ_EVERY == 0:
            language, country = _reads(events, index)
            read_started = time.perf_counter()
            top = [r.item.id for r in engine.top(e.at_us, TOP)]
            engine.top(e.at_us, TOP, language=language)
            engine.top(e.at_us, TOP, country=country)
            read_s += time.perf_counter() - read_started
    return time.perf_counter() - started, read_s, (top, engine)


def _rescan_top(
    config: TrendingConfig, events: list[Event], now_us: int, reads: tuple[str, str]
) -> list[list[str]]:
    """One request answered naively: every score from all events, then the three lists."""
    scores = rescan(config, events, now_us)
    items = {e.item.id: e.item for e in events}
    best = sorted(
        (i for i, s in scores.items() if s >= config.min_score), key=lambda i: (-scores[i], i)
    )
    language, country = reads
    return [
        best[:TOP],
        [i for i in best if items[i].language == language][:TOP],
        [i for i in best if items[i].country == country][:TOP],
    ]


def _baseline(config: TrendingConfig, events: list[Event]) -> tuple[float, list[str]]:
    top: list[str] = []
    started = time.perf_counter()
    for index in range(READ_EVERY, len(events) + 1, READ_EVERY):
        now = events[index - 1].at_us
        top = _rescan_top(config, events[:index], now, _reads(events, index))[0]
    return time.perf_counter() - started, top


def run_trending_bench(say: Callable[[str], None], repeat: int = 3) -> TrendingBenchResult:
    config = TrendingConfig()
    say(f"generating {EVENTS:,} events on {STREAMS:,} streams")
    events = synthetic_events()
    runs = []
    for n in range(repeat):
        runs.append(_incremental(config, events))
        say(f"incremental engine, run {n + 1}: {runs[-1][0]:.3f} s")
    runs.sort(key=lambda run: run[0])
    incremental_s, read_s, (top, engine) = runs[len(runs) // 2]  # the median run
    say("baseline: a full rescan per read (about half a minute)")
    baseline_s, baseline_top = _baseline(config, events)
    started = time.perf_counter()
    rescan(config, events, events[-1].at_us)
    once_s = time.perf_counter() - started
    reads = len(events) // READ_EVERY
    stats = engine.stats
    return TrendingBenchResult(
        events=len(events),
        streams=STREAMS,
        reads=reads,
        trending_100k_events_s=round(incremental_s, 4),
        runs_s=[round(run[0], 4) for run in runs],
        baseline_full_rescan_s=round(baseline_s, 3),
        ratio=round(baseline_s / incremental_s, 1),
        full_rescan_once_s=round(once_s, 4),
        read_us_mean=round(read_s / reads * 1e6, 1),
        events_per_s=round(len(events) / incremental_s),
        counted=stats.counted,
        ignored={
            "self": stats.self_ignored,
            "duplicates": stats.duplicates,
            "too_late": stats.too_late,
            "dedupe_full": stats.dedupe_full,
        },
        verified=top == baseline_top and len(top) == TOP,
    )
