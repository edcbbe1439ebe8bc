"""A payout in the payee's currency: its US cents at a rate the operator configures, pure.

A payee's country decides their currency (``GIFTWAVE_PAYOUT_CURRENCY_BY_COUNTRY``; US dollars
where none is set). A rate is how many units of that currency one US dollar buys, in
millionths (``GIFTWAVE_PAYOUT_FX_RATE_MICROS``: ``{"MXN": 17250000}`` is 17.25 pesos). The
amount is floored to the currency's minor unit: less than one centavo (or yen) of the exact
value is not paid. Rate, currency and amount are recorded with the payout before its transfer
is made, so a retry sends the same amount whatever the configuration says later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from giftwave.money import exponent

BASE_CURRENCY: Final = "USD"
MICROS: Final = 1_000_000
CENTS_PER_DOLLAR: Final = 100


class FxRateMissing(Exception):
    """No rate is configured for this currency (any more): nothing can be paid in it."""


def convert(amount_cents: int, rate_micros: int, currency_exponent: int) -> int:
    """US cents in the other currency's minor unit, floored."""
    assert amount_cents >= 0
    assert rate_micros > 0
    assert currency_exponent >= 0
    scale = int(10**currency_exponent)
    return amount_cents * rate_micros * scale // (CENTS_PER_DOLLAR * MICROS)


@dataclass(frozen=True, slots=True)
class FxTable:
    currency_by_country: Mapping[str, str] = field(default_factory=dict)
    rate_micros: Mapping[str, int] = field(default_factory=dict)

    def currency_for(self, country: str) -> str:
        return self.currency_by_country.get(country, BASE_CURRENCY)

    def quote(self, amount_cents: int, currency: str) -> tuple[int, int]:
        """(amount in the currency's minor unit, the rate used) for a payout of US cents."""
        if currency == BASE_CURRENCY:
            return amount_cents, MICROS
        rate = self.rate_micros.get(currency)
        if rate is None:
            raise FxRateMissing(currency)
        return convert(amount_cents, rate, exponent(currency)), rate
