"""A simulation scenario: TOML parsed with ``tomllib`` into a strict, bounded model.

Unknown keys, negative populations, probabilities outside 0..1 and the like are refused with
``ScenarioError``, whose message names each bad field (``population.viewers: …``), before
anything runs. See ``scenarios/README.md`` for a commented example.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Probability = Annotated[float, Field(ge=0, le=1)]


class ScenarioError(Exception):
    """The scenario file cannot be simulated; the message names every bad field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Population(_Strict):
    viewers: Annotated[int, Field(ge=1, le=1_000_000)] = 1_000
    creators: Annotated[int, Field(ge=1, le=10_000)] = 20
    # Share of viewers who ever buy coins and gift.
    gifter_share: Probability = 0.05
    # Creator popularity: viewers pick a creator with weight 1 / rank ** popularity_skew.
    popularity_skew: Annotated[float, Field(ge=0, le=3)] = 1.0


class Spending(_Strict):
    distribution: Literal["pareto", "lognormal"] = "pareto"
    # Pareto tail index: smaller means heavier whales (1.16 puts ~80% of spend with ~20%).
    pareto_alpha: Annotated[float, Field(gt=1, le=10)] = 1.5
    lognormal_sigma: Annotated[float, Field(gt=0, le=4)] = 1.0
    # What a typical (smallest) gifter means to spend per day they watch, in coins.
    daily_coins_min: Annotated[int, Field(ge=1, le=1_000_000)] = 30
    # No single gifter spends more than this per day (the distribution is cut there).
    daily_coins_max: Annotated[int, Field(ge=1, le=10_000_000)] = 200_000

    @model_validator(mode="after")
    def _ordered(self) -> Spending:
        if self.daily_coins_max < self.daily_coins_min:
            raise ValueError("daily_coins_max must be at least daily_coins_min")
        return self


class Sessions(_Strict):
    # Chance an active viewer watches on a given day, and for how long (exponential mean).
    watch_probability: Probability = 0.6
    minutes_mean: Annotated[float, Field(ge=1, le=600)] = 25.0
    # Each creator streams once a day, for this long.
    stream_minutes: Annotated[int, Field(ge=10, le=720)] = 120


class Reactions(_Strict):
    # Gifts lean towards moments: a goal push (its last minutes), a battle, a combo.
    goal_boost: Annotated[float, Field(ge=1, le=50)] = 3.0
    battle_boost: Annotated[float, Field(ge=1, le=50)] = 4.0
    battle_share: Probability = 0.3  # streams with a battle in them
    combo_probability: Probability = 0.1  # a send that becomes a combo (the gift again and again)
    combo_max: Annotated[int, Field(ge=2, le=200)] = 30


class Churn(_Strict):
    daily_churn: Probability = 0.02  # an active viewer leaves for good, per day


class Package(_Strict):
    coins: Annotated[int, Field(ge=1, le=2_500_000)]
    price_cents: Annotated[int, Field(ge=1, le=1_000_000_000)]


class EconomyRules(_Strict):
    # Diamonds a creator earns per coin gifted (the platform's rate; 1.0 by default).
    diamonds_per_coin: Annotated[float, Field(ge=0.01, le=1)] = 1.0
    # Coin packages in USD; empty keeps giftwave's published defaults.
    packages: Annotated[list[Package], Field(max_length=20)] = []
    payout_min_cents: Annotated[int, Field(ge=1, le=10**9)] = 5_000
    diamond_value_usd_micros: Annotated[int, Field(ge=1, le=1_000_000)] = 5_000
    refund_rate: Probability = 0.01  # top-ups refunded in full (honest buyers)
    chargeback_rate: Probability = 0.002  # top-ups disputed the next day
    # An honest refund is asked for 0 to this many days after its top-up (uniformly drawn),
    # at the end of that day; 0: at the end of the top-up's own day.
    refund_delay_days_max: Annotated[int, Field(ge=0, le=60)] = 0


class Fraud(_Strict):
    """Fraudulent actors the simulator adds, knowing who they are (docs/risk.md measures the
    rules on them). None by default: the honest population alone."""

    # Laundering rings: a new creator and fresh accounts that buy coins (with a few shared,
    # often stolen, cards) and gift them all to that creator, who then asks for a payout.
    rings: Annotated[int, Field(ge=0, le=1_000)] = 0
    ring_accounts: Annotated[int, Field(ge=1, le=500)] = 8
    ring_coins_each: Annotated[int, Field(ge=1, le=1_000_000)] = 2_000
    ring_cards: Annotated[int, Field(ge=1, le=500)] = 2
    ring_chargeback_rate: Probability = 0.5  # the stolen cards' owners dispute the next day
    # Card testers: an account that tries many small top-ups with a list of card numbers,
    # nearly all declined.
    card_testers: Annotated[int, Field(ge=0, le=1_000)] = 0
    card_tests_each: Annotated[int, Field(ge=1, le=1_000)] = 12
    # Refund abusers: a new account buys coins with its own card, gifts them all to a live
    # creator, then asks for its money back within ``refund_abuse_delay_min`` minutes of the
    # gifts; a share of them disputes the payment instead (a chargeback, "friendly fraud").
    refund_abusers: Annotated[int, Field(ge=0, le=1_000)] = 0
    refund_abuse_coins: Annotated[int, Field(ge=1, le=1_000_000)] = 1_000
    refund_abuse_delay_min: Annotated[int, Field(ge=1, le=12 * 60)] = 120
    refund_abuse_dispute_share: Probability = 0.0


class Scenario(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=60)]
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 1
    days: Annotated[int, Field(ge=1, le=365)] = 7
    population: Population = Population()
    spending: Spending = Spending()
    sessions: Sessions = Sessions()
    reactions: Reactions = Reactions()
    churn: Churn = Churn()
    economy: EconomyRules = EconomyRules()
    fraud: Fraud = Fraud()

    @property
    def diamonds_per_100_coins(self) -> int:
        return max(1, round(self.economy.diamonds_per_coin * 100))


def parse_scenario(text: str, source: str = "scenario") -> Scenario:
    """The scenario in ``text``; ``ScenarioError`` naming every bad field otherwise."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            lines.append(f"{where}: {error['msg']}")
        raise ScenarioError(f"{source}: invalid scenario:\n  " + "\n  ".join(lines)) from None


def load_scenario(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_scenario(text, str(path))
