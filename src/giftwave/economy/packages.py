"""Coin packages per currency, and the price of a custom amount."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from sqlalchemy import Connection, Engine, func, insert, select, update

from giftwave.db.tables import coin_packages
from giftwave.errors import Code, Invalid, NotFound
from giftwave.money import check_currency, check_price, round_up_to_step

# The public TikTok list, in US cents (DESIGN.md: we publish our rates openly).
DEFAULT_PACKAGES: Final = {
    "USD": (
        (70, 99),
        (350, 499),
        (700, 999),
        (1400, 1999),
        (3500, 4999),
        (7000, 9999),
        (17500, 24999),
    ),
}
CUSTOM_MIN_COINS: Final = 30
CUSTOM_MAX_COINS: Final = 2_500_000
PRICE_MAX_MINOR: Final = 10**9


@dataclass(frozen=True, slots=True)
class CoinPackage:
    id: int
    currency: str
    coins: int
    price_minor: int
    active: bool


def _to_package(m: object) -> CoinPackage:
    r = m._mapping  # type: ignore[attr-defined]
    return CoinPackage(
        int(r["id"]), r["currency"], int(r["coins"]), int(r["price_minor"]), bool(r["active"])
    )


def list_packages(
    conn: Connection, currency: str, *, include_inactive: bool = False
) -> list[CoinPackage]:
    query = select(coin_packages).where(coin_packages.c.currency == currency)
    if not include_inactive:
        query = query.where(coin_packages.c.active.is_(True))
    return [_to_package(r) for r in conn.execute(query.order_by(coin_packages.c.coins))]


def packages_in(db: Engine, currencies: Sequence[str]) -> list[CoinPackage]:
    """The packages in the first of ``currencies`` that has any (none has: empty)."""
    with db.connect() as conn:
        for currency in currencies:
            found = list_packages(conn, currency)
            if found:
                return found
    return []


def all_packages(conn: Connection) -> list[CoinPackage]:
    """Every package of every currency, inactive ones too: the operator's list."""
    query = select(coin_packages).order_by(coin_packages.c.currency, coin_packages.c.coins)
    return [_to_package(r) for r in conn.execute(query)]


def get_package(conn: Connection, package_id: int) -> CoinPackage:
    row = None
    if 0 < package_id < 2**63:
        row = conn.execute(select(coin_packages).where(coin_packages.c.id == package_id)).first()
    if row is None:
        raise NotFound(Code.PACKAGE_NOT_FOUND, f"no coin package {package_id}")
    return _to_package(row)


def put_package(
    conn: Connection, currency: str, coins: int, price_minor: int, active: bool = True
) -> CoinPackage:
    """Create the package for (currency, coins) or change its price or availability."""
    if not (len(currency) == 3 and currency.isalpha() and currency.isupper()):
        raise Invalid(Code.INVALID_CURRENCY, "a currency is a three-letter ISO 4217 code")
    check_currency(currency)
    if not 0 < coins <= CUSTOM_MAX_COINS or not 0 < price_minor <= PRICE_MAX_MINOR:
        raise Invalid(Code.INVALID_PACKAGE, "coins and price must be positive and within limits")
    check_price(price_minor, currency)
    where = (coin_packages.c.currency == currency) & (coin_packages.c.coins == coins)
    if conn.execute(select(coin_packages.c.id).where(where)).first() is None:
        conn.execute(
            insert(coin_packages).values(
                currency=currency, coins=coins, price_minor=price_minor, active=active
            )
        )
    else:
        conn.execute(
            update(coin_packages).where(where).values(price_minor=price_minor, active=active)
        )
    row = conn.execute(select(coin_packages).where(where)).one()
    return _to_package(row)


def seed_default_packages(conn: Connection) -> int:
    if conn.execute(select(func.count()).select_from(coin_packages)).scalar_one():
        return 0
    added = 0
    for currency, offers in DEFAULT_PACKAGES.items():
        for coins, price in offers:
            put_package(conn, currency, coins, price)
            added += 1
    return added


def custom_rate(packages: list[CoinPackage]) -> CoinPackage:
    """The package whose price per coin a custom amount pays: the dearest per coin, so every
    package stays at least as good a deal as any custom amount (docs/economy.md)."""
    if not packages:
        raise NotFound(Code.NO_PACKAGES, "there are no coin packages in this currency")
    # price_a / coins_a > price_b / coins_b, compared exactly in integers; ties: the bigger.
    return max(packages, key=lambda p: (Fraction(p.price_minor, p.coins), p.coins))


def custom_price_minor(packages: list[CoinPackage], coins: int) -> int:
    """A custom amount costs the dearest package's rate per coin (``custom_rate``), rounded up
    to a price the currency can be charged in (a minor unit; ten fils in KWD, see
    ``money.step_minor``): its price per coin is never below any package's."""
    if not CUSTOM_MIN_COINS <= coins <= CUSTOM_MAX_COINS:
        raise Invalid(
            Code.INVALID_COIN_AMOUNT,
            f"a custom amount is {CUSTOM_MIN_COINS:,}..{CUSTOM_MAX_COINS:,} coins",
            min_coins=CUSTOM_MIN_COINS,
            max_coins=CUSTOM_MAX_COINS,
        )
    rate = custom_rate(packages)
    return round_up_to_step(-(-coins * rate.price_minor // rate.coins), rate.currency)
