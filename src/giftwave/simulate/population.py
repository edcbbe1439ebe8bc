"""Who the simulated viewers and creators are, and what they do each day: pure and seeded.

The same scenario and seed plan the same days, send for send; ``run.py`` then plays the plan
through the real economy code. Minutes are counted from the simulated day's midnight (UTC).
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from itertools import accumulate
from typing import Final

from giftwave.simulate.scenario import Scenario

FIRST_START_MINUTE: Final = 10 * 60  # streams start between 10:00 and 20:00 UTC
START_SPREAD_MINUTES: Final = 10 * 60
FAVOURITE_SHARE: Final = 0.8  # a session goes to the viewer's favourite creator this often
SENDS_PER_DAY_MAX: Final = 500  # one viewer's sends in a day, combos included
BATTLE_MINUTES: Final = 5
GOAL_PUSH_SHARE: Final = 0.1  # the last tenth of a stream is its goal push


@dataclass(frozen=True, slots=True)
class Viewer:
    gifter: bool
    daily_coins: int  # what they mean to spend on a day they watch (drawn once)
    favourite: int  # a creator index


@dataclass(frozen=True, slots=True)
class StreamPlan:
    creator: int
    start_minute: int
    minutes: int
    goal_from: int  # minute (of the day) the goal push starts
    battle_from: int | None  # minute a battle starts, if there is one


@dataclass(frozen=True, slots=True)
class Send:
    minute: int
    viewer: int
    creator: int
    gift_id: str
    price_coins: int


@dataclass(frozen=True, slots=True)
class DayPlan:
    streams: list[StreamPlan]
    viewers_per_minute: dict[int, list[int]]  # creator → viewers in each minute of its stream
    sessions: int
    watchers: set[int]
    sends: list[Send]  # in minute order
    churned: int


class Population:
    def __init__(self, scenario: Scenario, gifts: list[tuple[str, int]]) -> None:
        assert gifts, "a catalogue to gift from"
        self._s = scenario
        self._rng = random.Random(scenario.seed)
        self._gifts = sorted(gifts, key=lambda g: (g[1], g[0]))
        self._prices = [price for _, price in self._gifts]
        pop = scenario.population
        weights = [1 / (rank + 1) ** pop.popularity_skew for rank in range(pop.creators)]
        self._creator_cum = list(accumulate(weights))
        self.viewers = [self._viewer() for _ in range(pop.viewers)]
        self.active = [True] * pop.viewers

    def _pick_creator(self) -> int:
        x = self._rng.random() * self._creator_cum[-1]
        return min(bisect.bisect_left(self._creator_cum, x), len(self._creator_cum) - 1)

    def _viewer(self) -> Viewer:
        rng, sp = self._rng, self._s.spending
        gifter = rng.random() < self._s.population.gifter_share
        if sp.distribution == "pareto":
            coins = sp.daily_coins_min * (1 - rng.random()) ** (-1 / sp.pareto_alpha)
        else:
            coins = sp.daily_coins_min * math.exp(sp.lognormal_sigma * abs(rng.gauss(0, 1)))
        return Viewer(gifter, int(min(coins, sp.daily_coins_max)), self._pick_creator())

    def plan_day(self) -> DayPlan:
        rng, s = self._rng, self._s
        streams = [self._stream(k) for k in range(s.population.creators)]
        counts = {p.creator: [0] * (p.minutes + 1) for p in streams}
        sends: list[Send] = []
        sessions = churned = 0
        watchers: set[int] = set()
        for v, viewer in enumerate(self.viewers):
            if not self.active[v]:
                continue
            if rng.random() < s.churn.daily_churn:
                self.active[v] = False
                churned += 1
                continue
            if rng.random() >= s.sessions.watch_probability:
                continue
            creator = viewer.favourite if rng.random() < FAVOURITE_SHARE else self._pick_creator()
            plan = streams[creator]
            length = min(plan.minutes, max(1, round(rng.expovariate(1 / s.sessions.minutes_mean))))
            offset = rng.randrange(plan.minutes - length + 1)
            counts[creator][offset] += 1
            counts[creator][offset + length] -= 1
            sessions += 1
            watchers.add(v)
            if viewer.gifter:
                sends.extend(self._sends(v, viewer, plan, offset, length))
        viewers_per_minute = {c: list(accumulate(d[:-1])) for c, d in counts.items()}
        sends.sort(key=lambda x: (x.minute, x.viewer))
        return DayPlan(streams, viewers_per_minute, sessions, watchers, sends, churned)

    def _stream(self, k: int) -> StreamPlan:
        rng, s = self._rng, self._s
        minutes = s.sessions.stream_minutes
        start = FIRST_START_MINUTE + (k * 37) % START_SPREAD_MINUTES
        push = max(1, int(minutes * GOAL_PUSH_SHARE))
        battle = None
        if rng.random() < s.reactions.battle_share and minutes - push > BATTLE_MINUTES:
            battle = start + rng.randrange(minutes - push - BATTLE_MINUTES)
        return StreamPlan(k, start, minutes, start + minutes - push, battle)

    def _sends(
        self, v: int, viewer: Viewer, plan: StreamPlan, offset: int, length: int
    ) -> list[Send]:
        rng, r = self._rng, self._s.reactions
        first = plan.start_minute + offset
        weights = []
        for m in range(first, first + length):
            w = 1.0
            if m >= plan.goal_from:
                w *= r.goal_boost
            if plan.battle_from is not None and plan.battle_from <= m < plan.battle_from + 5:
                w *= r.battle_boost
            weights.append(w)
        cum = list(accumulate(weights))
        budget = int(viewer.daily_coins * (0.5 + rng.random()))
        out: list[Send] = []
        while budget >= self._prices[0] and len(out) < SENDS_PER_DAY_MAX:
            affordable = bisect.bisect_right(self._prices, budget)
            # Cheap gifts are sent most; a whale's budget still reaches the big ones.
            pick = min(int(affordable * rng.random() ** 2.0), affordable - 1)
            pick = affordable - 1 - pick if rng.random() < 0.3 else pick
            gift_id, price = self._gifts[pick]
            minute = first + bisect.bisect_left(cum, rng.random() * cum[-1])
            times = 1
            if rng.random() < r.combo_probability:
                times = rng.randint(2, r.combo_max)
            times = min(times, budget // price, SENDS_PER_DAY_MAX - len(out))
            out.extend(Send(minute, v, plan.creator, gift_id, price) for _ in range(times))
            budget -= times * price
        return out
