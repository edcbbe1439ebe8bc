"""What an admin does to a user's standing and coins, one call each, each its own unit of
work: a coin grant (one adjustment from the coins issued, idempotent by the admin's key,
audited once) and a change of status, role or age check (a block freezes the user's ledger
accounts too). Routes check that the caller is an admin, call one of these, and answer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import Engine

from giftwave.economy.wallets import COINS_ISSUED, Wallets
from giftwave.errors import Code, Conflict, Invalid
from giftwave.identity.users import (
    Role,
    User,
    UserStatus,
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
) -> User:
    """Block or unblock (the ledger freezes their accounts too), change role, verify age;
    audited. Blocking: run it on a worker thread. The caller tells every node the user
    changed (their cached copies are dropped)."""
    with db.begin() as conn:
        user = None
        if status is not None:
            user = set_status(conn, user_id, status)
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
