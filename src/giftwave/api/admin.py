"""Operator routes: payouts review, users, gift reversal, catalogue, packages, API keys.

An admin is a user with the admin role, or the holder of ``GIFTWAVE_ADMIN_TOKEN``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import AdminPrincipal, AuthCache, auth_cache_of, economy_of
from giftwave.api.creators import PayoutOut
from giftwave.api.fields import PlainText, StrictBool
from giftwave.api.identity import UserOut
from giftwave.api.problems import Problem
from giftwave.api.shop import GiftOut
from giftwave.economy.catalog import Gift, put_gift
from giftwave.economy.packages import CoinPackage, put_package
from giftwave.economy.payouts import PayoutStatus
from giftwave.economy.reversals import reverse_gift
from giftwave.economy.services import Economy
from giftwave.economy.wallets import COINS_ISSUED
from giftwave.identity.sessions import create_api_key, parse_scopes, revoke_api_key
from giftwave.identity.users import Role, User, UserStatus, set_age_verified, set_role, set_status
from giftwave.ledger.model import Transfer, TransferCode

router = APIRouter(prefix="/v1/admin", tags=["admin"])
Econ = Annotated[Economy, Depends(economy_of)]
Cache = Annotated[AuthCache, Depends(auth_cache_of)]


class Review(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: PlainText | None = Field(default=None, max_length=500)


@router.get("/payouts", response_model=list[PayoutOut])
async def payouts_queue(
    economy: Econ, admin: AdminPrincipal, status: PayoutStatus | None = PayoutStatus.PENDING
) -> list[PayoutOut]:
    return [PayoutOut.of(p) for p in await economy.payouts.find(status=status)]


@router.post("/payouts/{payout_id}/{decision}", response_model=PayoutOut)
async def review_payout(
    payout_id: str,
    decision: Literal["approve", "reject"],
    economy: Econ,
    admin: AdminPrincipal,
    body: Review | None = None,
) -> PayoutOut:
    payout = await economy.payouts.review(
        payout_id, admin.user, decision == "approve", None if body is None else body.note
    )
    return PayoutOut.of(payout)


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["active", "blocked"] | None = None
    role: Role | None = None
    age_verified: StrictBool | None = None


@router.patch("/users/{user_id}", response_model=UserOut)
async def change_user(
    user_id: Annotated[int, Path(ge=1, le=2**62)],
    body: UserChange,
    economy: Econ,
    cache: Cache,
    admin: AdminPrincipal,
) -> UserOut:
    """Block or unblock (the ledger freezes their accounts too), change role, verify age."""

    def work() -> User:
        with economy.db.begin() as conn:
            user = None
            if body.status is not None:
                user = set_status(conn, user_id, UserStatus(body.status))
            if body.role is not None:
                user = set_role(conn, user_id, body.role)
            if body.age_verified is not None:
                user = set_age_verified(conn, user_id, body.age_verified)
            if user is None:
                raise Problem(422, "nothing_to_change", "send status, role or age_verified")
        if body.status is not None:
            economy.wallets.set_frozen(user_id, body.status == "blocked")
        return user

    user = await run_in_threadpool(work)
    cache.forget_user(user_id)
    economy.gifting.forget_user(user_id)
    return UserOut.of(user, economy)


class Grant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    coins: int = Field(ge=1, le=10**9)
    idempotency_key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")


@router.post("/users/{user_id}/coins")
async def grant_coins(
    user_id: Annotated[int, Path(ge=1, le=2**62)],
    body: Grant,
    economy: Econ,
    admin: AdminPrincipal,
) -> dict[str, Any]:
    """Give a user coins (promotion, goodwill): an adjustment from the coins issued."""
    mine = await run_in_threadpool(economy.wallets.user, user_id)
    issued = await run_in_threadpool(economy.wallets.platform, COINS_ISSUED, "COIN")
    transfer_id = f"grant:{user_id}:{body.idempotency_key}"
    (outcome,) = await economy.engine.submit(
        [Transfer(transfer_id, issued, mine.coins, body.coins, TransferCode.ADJUSTMENT)]
    )
    if not outcome.succeeded:
        raise Problem(409, outcome.value, f"the ledger refused the grant: {outcome.value}")
    return {"transfer_id": transfer_id, "result": outcome.value}


@router.post("/gift-sends/{send_id}/reverse")
async def reverse(send_id: str, economy: Econ, admin: AdminPrincipal) -> dict[str, Any]:
    """Undo one gift: coins back to the viewer, diamonds back from the creator (or a debt)."""
    if not send_id.startswith("gift:") or len(send_id) > 100:
        raise Problem(404, "gift_send_not_found", f"no gift {send_id!r}")
    done = await reverse_gift(economy.db, economy.engine, economy.wallets, send_id)
    return {
        "send_id": done.send_id,
        "coins_returned": done.coins_returned,
        "diamonds_taken": done.diamonds_taken,
        "diamonds_debt": done.diamonds_debt,
    }


class GiftChange(BaseModel):
    """Only the fields sent change. null is no value: only the availability window takes it
    (null: open-ended); the other fields are left out to keep them."""

    model_config = ConfigDict(extra="forbid")
    # SkipJsonSchema[None]: optional, yet not nullable in the schema; sent null is refused below.
    # (The bounds sit on the value's own type: on the union they would be applied to None.)
    price_coins: Annotated[int, Field(ge=1, le=10_000_000)] | SkipJsonSchema[None] = None
    combo: StrictBool | SkipJsonSchema[None] = None
    image: Annotated[PlainText, Field(max_length=256)] | SkipJsonSchema[None] = None
    names: dict[str, PlainText] | SkipJsonSchema[None] = None
    on_sale: StrictBool | SkipJsonSchema[None] = None
    available_from_us: int | None = Field(default=None, ge=0, le=2**62)
    available_until_us: int | None = Field(default=None, ge=0, le=2**62)
    sort_order: Annotated[int, Field(ge=0, le=10_000)] | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _null_only_for_the_window(self) -> GiftChange:
        nulled = sorted(
            name
            for name in self.model_fields_set
            if getattr(self, name) is None and not name.startswith("available_")
        )
        if nulled:
            raise ValueError(f"leave out what does not change; null is no value for {nulled}")
        return self


@router.put("/gifts/{gift_id}", response_model=GiftOut)
async def put_gift_route(
    gift_id: str, body: GiftChange, economy: Econ, admin: AdminPrincipal
) -> GiftOut:
    """Create a gift or change one: a change is a new version, history keeps the old price."""
    changes = body.model_dump(exclude_unset=True)

    def work() -> Gift:
        with economy.db.begin() as conn:
            return put_gift(conn, gift_id, changes)

    gift = await run_in_threadpool(work)
    economy.catalog.invalidate()
    return GiftOut.of(gift, "en")


class PackageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    coins: int = Field(ge=1, le=2_500_000)
    price_minor: int = Field(ge=1, le=10**9)
    active: StrictBool = True


@router.put("/coin-packages")
async def put_package_route(
    body: PackageIn, economy: Econ, admin: AdminPrincipal
) -> dict[str, Any]:
    def work() -> CoinPackage:
        with economy.db.begin() as conn:
            return put_package(conn, body.currency, body.coins, body.price_minor, body.active)

    p = await run_in_threadpool(work)
    return {
        "id": p.id,
        "currency": p.currency,
        "coins": p.coins,
        "price_minor": p.price_minor,
        "active": p.active,
    }


class NewApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    integration: str = Field(min_length=1, max_length=64)
    scopes: list[str] = Field(min_length=1, max_length=10)


@router.post("/api-keys", status_code=201)
async def new_api_key(body: NewApiKey, economy: Econ, admin: AdminPrincipal) -> dict[str, Any]:
    """A key for a platform integration; the secret is shown once."""
    scopes = parse_scopes(body.scopes)

    def work() -> dict[str, Any]:
        with economy.db.begin() as conn:
            key, secret = create_api_key(conn, body.integration, scopes)
        return {
            "id": key.id,
            "integration": key.integration,
            "scopes": sorted(key.scopes),
            "key": secret,
        }

    return await run_in_threadpool(work)


@router.delete("/api-keys/{key_id}", status_code=204)
async def revoke_key(
    key_id: Annotated[int, Path(ge=1, le=2**62)],
    economy: Econ,
    cache: Cache,
    admin: AdminPrincipal,
) -> None:
    def work() -> bool:
        with economy.db.begin() as conn:
            return revoke_api_key(conn, key_id)

    if not await run_in_threadpool(work):
        raise Problem(404, "api_key_not_found", f"no active API key {key_id}")
    cache.keys.clear()
