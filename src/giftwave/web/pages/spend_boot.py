"""What the pages that spend or buy coins tell their scripts (the boot data, web/pages/site.py):
who may spend, the currency a viewer buys in, what a custom amount costs, and what coins are
worth in money, all from the same rules the API charges by (economy/packages.py, money.py)."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from functools import cache
from typing import Any, Final

from babel import Locale
from babel.numbers import get_territory_currencies
from sqlalchemy import Engine

from giftwave.economy.packages import (
    CUSTOM_MAX_COINS,
    CUSTOM_MIN_COINS,
    CoinPackage,
    custom_rate,
    packages_in,
)
from giftwave.economy.services import Economy
from giftwave.errors import Invalid
from giftwave.identity.users import User, check_country
from giftwave.money import step_minor


def spender(economy: Economy, user: User) -> dict[str, Any]:
    """May ``user`` send gifts and buy coins now, and from what age one may in their country."""
    rule = economy.age_rule
    today = datetime.now(UTC).date()
    return {
        "can_gift": not user.blocked and rule.allows(user, today),
        "min_age": rule.min_age_for(user.country),
    }


def shop_packages(db: Engine, country: str | None, default: str) -> list[CoinPackage]:
    """The packages a viewer from ``country`` buys: in their country's currency when it has
    packages, else in the default currency, else in USD (the seeded list)."""
    currencies = get_territory_currencies(country) if country else []
    return packages_in(db, [*currencies[:1], default, "USD"])


def coin_prices(packages: list[CoinPackage]) -> dict[str, Any] | None:
    """What a custom amount costs, as the page computes it live: ceil(coins * rate_minor /
    rate_coins), rounded up to step_minor; the same figure approximates what coins are worth."""
    if not packages:
        return None
    rate = custom_rate(packages)
    return {
        "currency": rate.currency,
        "rate_coins": rate.coins,
        "rate_minor": rate.price_minor,
        "step_minor": step_minor(rate.currency),
        "min_coins": CUSTOM_MIN_COINS,
        "max_coins": CUSTOM_MAX_COINS,
    }


# Two-letter codes CLDR names that are no one's country: unions, pseudo-locales, "outlying".
_NOT_COUNTRIES: Final = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"})


@cache
def countries(locale: str) -> tuple[tuple[str, str], ...]:
    """ISO 3166 countries giftwave accepts, named in ``locale``, in that language's order
    (accents aside: "Ántico" sorts with the As)."""
    names = Locale.parse(locale).territories
    found = []
    for code, name in names.items():
        try:
            check_country(str(code))
        except Invalid:  # a region of the world ("001", "419"), not a country
            continue
        if str(code) not in _NOT_COUNTRIES:
            found.append((str(code), str(name)))
    return tuple(sorted(found, key=lambda c: _sort_key(c[1])))


def _sort_key(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
