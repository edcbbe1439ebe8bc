"""Amounts of money: integers in a currency's minor unit, and what they are as decimals and text.

Every amount giftwave stores or sends is an ``int`` in its currency's minor unit
(``price_minor``, ``amount_minor``): the cent for USD and EUR, the yen itself for JPY, the won
for KRW, the fils (a thousandth) for KWD and BHD. How many decimal digits separate the minor
unit from the major one is the currency's *exponent* (ISO 4217's minor unit), read from CLDR
through Babel, so 160 JPY is ¥160 and 310 KWD is KWD 0.310. Dividing by 100 everywhere
was the bug this module ends: every display, form and provider boundary goes through here (the
page scripts get the same table in their boot data, ``EXPONENTS_NOT_TWO``).

Where CLDR and ISO 4217 differ (HUF, IDR, COP, ISK, IQD… CLDR counts whole units, since no
one prices in their fractions), CLDR's count is giftwave's minor unit; a provider with another
convention converts at its boundary (``payments/stripe_checkout.py``).
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Final

from babel.numbers import format_currency, get_currency_precision, list_currencies

from giftwave.errors import Code, Invalid

# Card networks clear the three-decimal currencies in steps of ten minor units, and Stripe
# refuses a charge whose last digit is not 0 in them (docs.stripe.com/currencies, "Three-decimal
# currencies"); a price giftwave could not charge exactly is refused when it is set.
_STEP_TEN: Final = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


@cache
def known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def check_currency(currency: str) -> str:
    """``currency`` if it is an ISO 4217 code CLDR knows, else ``invalid_currency``."""
    if currency not in known_currencies():
        raise Invalid(Code.INVALID_CURRENCY, f"{currency!r} is not an ISO 4217 currency code")
    return currency


@cache
def exponent(currency: str) -> int:
    """Decimal digits of the currency's minor unit: 2 for USD, 0 for JPY, 3 for KWD."""
    return int(get_currency_precision(currency))


def step_minor(currency: str) -> int:
    """The smallest difference two prices in ``currency`` may have (10 fils for KWD)."""
    return 10 if currency in _STEP_TEN else 1


def check_price(amount_minor: int, currency: str) -> None:
    """A price that can be charged exactly, or ``price_not_chargeable``."""
    step = step_minor(currency)
    if amount_minor % step:
        raise Invalid(
            Code.PRICE_NOT_CHARGEABLE,
            f"a {currency} price is a multiple of {step} minor units "
            f"({format_money(step, currency)})",
        )


def round_up_to_step(amount_minor: int, currency: str) -> int:
    step = step_minor(currency)
    return -(-amount_minor // step) * step


def to_decimal(amount_minor: int, currency: str) -> Decimal:
    """The amount in major units, exact: 310 KWD fils → Decimal('0.310')."""
    return Decimal(amount_minor).scaleb(-exponent(currency))


def format_money(amount_minor: int, currency: str, locale: str = "en_US") -> str:
    """The amount as a reader of ``locale`` writes it, every digit of the minor unit shown."""
    return format_currency(to_decimal(amount_minor, currency), currency, locale=locale)


EXPONENTS_NOT_TWO: Final = {c: exponent(c) for c in sorted(list_currencies()) if exponent(c) != 2}
