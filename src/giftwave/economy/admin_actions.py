"""What an admin does to a user's standing and coins, one call each, each its own unit of
work: a coin grant (one adjustment from the coins issued, idempotent by the admin's key,
audited once) and a change of status, role or age check (a block freezes the user's ledger
accounts too). Routes check that the caller is an admin, call one of these, and answer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine

from giftwave.economy.catalog import Catalog, Gift, current_gifts, put_gift
from giftwave.economy.packages import CoinPackage, all_packages, put_package
from giftwave.economy.payout_decisions import PayoutDecision, decisions, decisions_by_payout
from giftwave.economy.reversals import SentGift, recent_sends
from giftwave.economy.topups import Order, recent_orders
from giftwave.economy.wallets import COINS_ISSUED, Wallets
from giftwave.errors import Code, Conflict, Invalid, NotFound
from giftwave.identity.sessions import ApiKey, create_api_key, parse_scopes, revoke_api_key
from giftwave.identity.users import (
    AgeRule,
    Role,
    User,
    UserStatus,
    find_users,
    get_user,
    require_creator_age,
    search_users,
    set_age_verified,
    set_role,
    set_status,
)
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.model import Outcome, Transfer, TransferCode
from giftwave.logs import audit


@dataclass(frozen=True, slots=True)
class Granted:
    transfer_id: str
    outcome: Outcome  # OK, or EXISTS for a replay of the same key


async def grant_coins(
    wallets: Wallets,
    engine: PostingEngine,
    user_id: int,
    coins: int,
    idempotency_key: str,
    *,
    by_user_id: int | None,
) -> Granted:
    """Coins given to a user (promotion, goodwill); 409 with the ledger's outcome as code
    when it refuses. ``by_user_id`` None: the operator's token."""
    mine = await asyncio.to_thread(wallets.user, user_id)
    issued = await asyncio.to_thread(wallets.platform, COINS_ISSUED, "COIN")
    transfer_id = f"grant:{user_id}:{idempotency_key}"
    (outcome,) = await engine.submit(
        [Transfer(transfer_id, issued, mine.coins, coins, TransferCode.ADJUSTMENT)]
    )
    if not outcome.succeeded:
        raise Conflict(Code(outcome.value), f"the ledger refused the grant: {outcome.value}")
    if outcome is Outcome.OK:  # not a replay of the same key
        audit(
            "audit.admin_grant",
            user_id=user_id,
            coins=coins,
            transfer_id=transfer_id,
            by_user_id=by_user_id,
        )
    return Granted(transfer_id, outcome)


def change_user(
    db: Engine,
    wallets: Wallets,
    user_id: int,
    *,
    status: UserStatus | None,
    role: Role | None,
    age_verified: bool | None,
    by_user_id: int | None,
    age_rule: AgeRule,
    today: date,
) -> User:
    """Block or unblock (the ledger freezes their accounts too), change role, verify age;
    audited. A creator must be of the creator age (the same rule as signing up or becoming
    one: 403 ``creator_too_young``, nothing changed). Blocking: run it on a worker thread. The
    caller tells every node the user changed (their cached copies are dropped)."""
    with db.begin() as conn:
        user = None
        if status is not None:
            user = set_status(conn, user_id, status)
        if role is Role.CREATOR:
            target = get_user(conn, user_id)
            require_creator_age(age_rule, target.birth_date, target.country, today)
        if role is not None:
            user = set_role(conn, user_id, role)
        if age_verified is not None:
            user = set_age_verified(conn, user_id, age_verified)
        if user is None:
            raise Invalid(Code.NOTHING_TO_CHANGE, "send status, role or age_verified")
    if status is not None:
        wallets.set_frozen(user_id, status is UserStatus.BLOCKED)
    if role is not None:
        audit("audit.role_changed", user_id=user_id, role=role.value, by_user_id=by_user_id)
    if status is not None:
        blocked = status is UserStatus.BLOCKED
        event = "audit.account_blocked" if blocked else "audit.account_unblocked"
        frozen = int(blocked)  # the ledger freezes a blocked user's accounts
        audit(event, user_id=user_id, ledger_frozen=frozen, by_user_id=by_user_id)
    return user


# ---- the console's other calls: one connection or transaction each (blocking) ----------


def payout_decisions_of(db: Engine, payout_ids: list[str]) -> dict[str, list[PayoutDecision]]:
    """The decisions on each of these payouts, newest first."""
    with db.connect() as conn:
        return decisions_by_payout(conn, payout_ids)


def payout_decision_log(db: Engine, payout_id: str | None, limit: int) -> list[PayoutDecision]:
    with db.connect() as conn:
        return decisions(conn, payout_id=payout_id, limit=limit)


def users_by_id(db: Engine, user_ids: list[int]) -> dict[int, User | None]:
    with db.connect() as conn:
        return find_users(conn, user_ids)


def search(db: Engine, query: str, limit: int) -> list[User]:
    """Users whose handle or e-mail contains ``query``, or whose id it is (422 for blank)."""
    if not query.strip():
        raise Invalid(Code.EMPTY_QUERY, "search for part of a handle, an e-mail or an id")
    with db.connect() as conn:
        return search_users(conn, query, limit)


def gift_sends(
    db: Engine, *, stream_id: str | None, user_id: int | None, limit: int
) -> list[SentGift]:
    """Committed gifts, newest first, with whether each was reversed."""
    with db.connect() as conn:
        return recent_sends(conn, stream_id=stream_id, user_id=user_id, limit=limit)


def gifts(db: Engine) -> list[Gift]:
    """The newest version of every gift, on sale or not, read from the database."""
    with db.connect() as conn:
        return current_gifts(conn)


def change_gift(db: Engine, catalog: Catalog, gift_id: str, changes: dict[str, Any]) -> Gift:
    """A gift created or changed (a new version: history keeps the old price)."""
    with db.begin() as conn:
        gift = put_gift(conn, gift_id, changes)
    catalog.invalidate()
    return gift


def packages(db: Engine) -> list[CoinPackage]:
    """Every package of every currency, inactive ones too."""
    with db.connect() as conn:
        return all_packages(conn)


def change_package(
    db: Engine, currency: str, coins: int, price_minor: int, active: bool
) -> CoinPackage:
    with db.begin() as conn:
        return put_package(conn, currency, coins, price_minor, active)


def orders(db: Engine, user_id: int | None, limit: int) -> list[Order]:
    """Coin purchases, newest first (of one user, or everyone's)."""
    with db.connect() as conn:
        return recent_orders(conn, user_id, limit)


def new_api_key(db: Engine, integration: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """A key for a platform integration and its secret (shown once)."""
    parsed = parse_scopes(scopes)
    with db.begin() as conn:
        return create_api_key(conn, integration, parsed)


def revoke_key(db: Engine, key_id: int) -> None:
    """The key stops working (404 ``api_key_not_found`` for none active); the caller tells
    every node."""
    with db.begin() as conn:
        revoked = revoke_api_key(conn, key_id)
    if not revoked:
        raise NotFound(Code.API_KEY_NOT_FOUND, f"no active API key {key_id}")
