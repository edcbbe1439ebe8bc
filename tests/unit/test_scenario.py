"""A bad scenario file is refused before anything runs, with the field named."""

from __future__ import annotations

import pytest

from giftwave.simulate.scenario import ScenarioError, parse_scenario


def refused(text: str) -> str:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "s.toml")
    return str(caught.value)


def test_a_good_scenario_parses_with_defaults() -> None:
    s = parse_scenario('name = "a"\n[economy]\ndiamonds_per_coin = 0.8\n')
    assert s.diamonds_per_100_coins == 80
    assert s.population.viewers == 1000


def test_a_negative_population_names_the_field() -> None:
    message = refused('name = "a"\n[population]\nviewers = -5\n')
    assert "population.viewers" in message
    assert "greater than or equal to 1" in message


def test_a_probability_outside_zero_to_one_names_the_field() -> None:
    message = refused('name = "a"\n[reactions]\ncombo_probability = 1.5\n')
    assert "reactions.combo_probability" in message


def test_an_unknown_key_names_it() -> None:
    assert "economy.creator_rate" in refused('name = "a"\n[economy]\ncreator_rate = 1\n')
    assert "colour" in refused('name = "a"\ncolour = "red"\n')


def test_every_bad_field_is_named_at_once() -> None:
    message = refused('name = ""\ndays = 0\n[churn]\ndaily_churn = -0.1\n')
    for field in ("name", "days", "churn.daily_churn"):
        assert field in message


def test_impossible_combinations_and_bad_toml() -> None:
    message = refused('name = "a"\n[spending]\ndaily_coins_min = 500\ndaily_coins_max = 10\n')
    assert "spending" in message
    assert "daily_coins_max" in message
    assert "not valid TOML" in refused("name = ")
    assert "name" in refused("days = 3\n")  # the name is required
