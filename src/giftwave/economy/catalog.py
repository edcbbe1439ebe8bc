"""The gift catalogue: versioned, so a price change never rewrites what was already sent."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any, Final

from sqlalchemy import Connection, Engine, func, insert, select

from giftwave.clock import now_us
from giftwave.db.tables import gift_catalog
from giftwave.errors import Code, Invalid, NotFound
from giftwave.ttl_cache import TtlCache

GIFT_ID_RE: Final = re.compile(r"[a-z0-9_]{1,32}")
LOCALES: Final = ("en", "es", "ar")
PRICE_MAX_COINS: Final = 10_000_000


@dataclass(frozen=True, slots=True)
class Gift:
    gift_id: str
    version: int
    price_coins: int
    combo: bool  # cheap gifts combo ("Rose x57"); big ones arrive once
    image: str
    names: dict[str, str]
    on_sale: bool
    available_from_us: int | None
    available_until_us: int | None
    sort_order: int

    def name(self, locale: str) -> str:
        return self.names.get(locale) or self.names["en"]

    def available_at(self, ts_us: int) -> bool:
        return (
            self.on_sale
            and (self.available_from_us is None or self.available_from_us <= ts_us)
            and (self.available_until_us is None or ts_us < self.available_until_us)
        )


# The fields an operator edits; anything else about a gift is derived.
EDITABLE: Final = (
    "price_coins",
    "combo",
    "image",
    "names",
    "on_sale",
    "available_from_us",
    "available_until_us",
    "sort_order",
)


def _to_gift(m: Any) -> Gift:
    return Gift(
        gift_id=m["gift_id"],
        version=int(m["version"]),
        price_coins=int(m["price_coins"]),
        combo=bool(m["combo"]),
        image=m["image"],
        names=json.loads(m["names_json"]),
        on_sale=bool(m["on_sale"]),
        available_from_us=m["available_from_us"],
        available_until_us=m["available_until_us"],
        sort_order=int(m["sort_order"]),
    )


def _latest_versions() -> Any:
    return (
        select(gift_catalog.c.gift_id, func.max(gift_catalog.c.version).label("version"))
        .group_by(gift_catalog.c.gift_id)
        .subquery()
    )


def current_gifts(conn: Connection) -> list[Gift]:
    """The newest version of every gift, in display order."""
    latest = _latest_versions()
    rows = conn.execute(
        select(gift_catalog)
        .join(
            latest,
            (gift_catalog.c.gift_id == latest.c.gift_id)
            & (gift_catalog.c.version == latest.c.version),
        )
        .order_by(gift_catalog.c.sort_order, gift_catalog.c.gift_id)
    ).all()
    return [_to_gift(r._mapping) for r in rows]


def gift_version(conn: Connection, gift_id: str, version: int) -> Gift | None:
    row = conn.execute(
        select(gift_catalog).where(
            gift_catalog.c.gift_id == gift_id, gift_catalog.c.version == version
        )
    ).first()
    return None if row is None else _to_gift(row._mapping)


def _check(gift: Gift) -> None:
    if not GIFT_ID_RE.fullmatch(gift.gift_id):
        raise Invalid(Code.INVALID_GIFT_ID, "a gift id is 1-32 of a-z, 0-9 and '_'")
    if not 0 < gift.price_coins <= PRICE_MAX_COINS:
        raise Invalid(Code.INVALID_PRICE, f"a price is 1..{PRICE_MAX_COINS:,} coins")
    if "en" not in gift.names or any(
        k not in LOCALES or not 0 < len(v) <= 64 for k, v in gift.names.items()
    ):
        raise Invalid(Code.INVALID_NAMES, f"names need 'en', may add {LOCALES}, 1-64 chars each")
    if len(gift.image) > 256:
        raise Invalid(Code.INVALID_IMAGE, "an image path is at most 256 characters")
    start, end = gift.available_from_us, gift.available_until_us
    if start is not None and end is not None and end <= start:
        raise Invalid(Code.INVALID_WINDOW, "a gift's availability must end after it starts")


def put_gift(conn: Connection, gift_id: str, changes: dict[str, Any]) -> Gift:
    """Create a gift, or a new version of it when anything changed; unchanged is a no-op."""
    unknown = set(changes) - set(EDITABLE)
    assert not unknown, f"not editable: {unknown}"
    current = next((g for g in current_gifts(conn) if g.gift_id == gift_id), None)
    if current is None:
        base = Gift(gift_id, 0, 1, False, f"/static/gifts/{gift_id}.svg", {}, True, None, None, 0)
        if "price_coins" not in changes or "names" not in changes:
            raise Invalid(Code.INCOMPLETE_GIFT, "a new gift needs price_coins and names")
    else:
        base = current
    wanted = replace(base, **changes)
    _check(wanted)
    if current is not None and replace(wanted, version=current.version) == current:
        return current
    wanted = replace(wanted, version=base.version + 1)
    conn.execute(
        insert(gift_catalog).values(
            gift_id=wanted.gift_id,
            version=wanted.version,
            price_coins=wanted.price_coins,
            combo=wanted.combo,
            image=wanted.image,
            names_json=json.dumps(wanted.names, ensure_ascii=False, sort_keys=True),
            on_sale=wanted.on_sale,
            available_from_us=wanted.available_from_us,
            available_until_us=wanted.available_until_us,
            sort_order=wanted.sort_order,
            created_at_us=now_us(),
        )
    )
    return wanted


def seed_default_catalog(conn: Connection) -> int:
    """Load the default catalogue into an empty one; returns how many gifts were added."""
    if conn.execute(select(func.count()).select_from(gift_catalog)).scalar_one():
        return 0
    text = resources.files("giftwave.economy").joinpath("default_catalog.json").read_text("utf-8")
    defaults = json.loads(text)
    for order, entry in enumerate(defaults):
        put_gift(
            conn,
            entry["gift_id"],
            {
                "price_coins": entry["price_coins"],
                "combo": entry["combo"],
                "names": entry["names"],
                "sort_order": order,
            },
        )
    return len(defaults)


class Catalog:
    """The current catalogue, re-read at most every ``ttl_s`` (edits in this process: at once)."""

    def __init__(self, db: Engine, ttl_s: float = 2.0) -> None:
        self._db = db
        self._cache: TtlCache[str, dict[str, Gift]] = TtlCache(max_entries=1, ttl_s=ttl_s)

    def gifts(self) -> dict[str, Gift]:
        gifts = self._cache.get("all")
        if gifts is None:
            with self._db.connect() as conn:
                gifts = {g.gift_id: g for g in current_gifts(conn)}
            self._cache.put("all", gifts)
        return gifts

    def get(self, gift_id: str) -> Gift:
        gift = self.gifts().get(gift_id)
        if gift is None:
            raise NotFound(Code.GIFT_NOT_FOUND, f"no gift {gift_id!r} in the catalogue")
        return gift

    def invalidate(self) -> None:
        self._cache.clear()
