"""Operator routes: payouts review, users, gift reversal, catalogue, packages, top-ups,
API keys, ledger health.

An admin is a user with the admin role, or the holder of ``GIFTWAVE_ADMIN_TOKEN``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from functools import partial
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import (
    AdminPrincipal,
    economy_of,
)
from giftwave.api.fields import PlainText, StrictBool
from giftwave.api.identity import UserOut, today
from giftwave.api.problems import Problem
from giftwave.api.shop import GiftOut, OrderOut
from giftwave.api.state import services
from giftwave.clock import now_us
from giftwave.economy import admin_actions
from giftwave.economy.catalog import Gift
from giftwave.economy.payout_decisions import LIST_MAX, PayoutDecision
from giftwave.economy.payouts import Payout, PayoutStatus
from giftwave.economy.reconcile import MismatchKind
from giftwave.economy.reconcile_runs import last_run
from giftwave.economy.reversals import RECENT_MAX_SENDS, SentGift
from giftwave.economy.services import Economy
from giftwave.economy.topups import Order
from giftwave.economy.wallets import EconomyTotals
from giftwave.errors import Code
from giftwave.identity.users import (
    SEARCH_MAX_USERS,
    Role,
    UserStatus,
)
from giftwave.ledger.verify import VerifyReport, verify_snapshot
from giftwave.payments.records import RecordKind
from giftwave.realtime.notices import ApiKeyRevoked, UserChanged

router = APIRouter(prefix="/v1/admin", tags=["admin"])
Econ = Annotated[Economy, Depends(economy_of)]
UserId = Annotated[int, Query(ge=1, le=2**62)]
RECENT_MAX_ORDERS: Final = 200


class Review(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: PlainText | None = Field(default=None, max_length=500)


@dataclass(frozen=True, slots=True)
class QueuedPayout(Payout):
    creator_handle: Annotated[
        str | None, Field(description="whom the operator pays: @handle, not an id")
    ]
    decisions: Annotated[
        list[PayoutDecision],
        Field(description="who decided it and why, newest first: the policy's, a person's"),
    ]


@router.get("/payouts", response_model=list[QueuedPayout])
async def payouts_queue(
    economy: Econ, admin: AdminPrincipal, status: PayoutStatus | None = PayoutStatus.PENDING
) -> list[QueuedPayout]:
    found = await economy.payouts.find(status=status)
    creator_ids = sorted({p.creator_id for p in found})
    creators = await run_in_threadpool(admin_actions.users_by_id, economy.db, creator_ids)
    decided = await run_in_threadpool(
        admin_actions.payout_decisions_of, economy.db, [p.id for p in found]
    )
    return [
        QueuedPayout(
            **asdict(p),
            creator_handle=None if (c := creators.get(p.creator_id)) is None else c.handle,
            decisions=decided.get(p.id, []),
        )
        for p in found
    ]


@router.get("/payout-decisions", response_model=list[PayoutDecision])
async def payout_decision_log(
    economy: Econ,
    admin: AdminPrincipal,
    payout_id: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=LIST_MAX)] = 100,
) -> list[PayoutDecision]:
    """Every decision on payouts, newest first (of one payout): the policy's at the request,
    with the conditions that sent it to review, and each person's approval or rejection."""
    return await run_in_threadpool(admin_actions.payout_decision_log, economy.db, payout_id, limit)


@router.post("/payouts/{payout_id}/{decision}", response_model=Payout)
async def review_payout(
    payout_id: str,
    decision: Literal["approve", "reject"],
    economy: Econ,
    admin: AdminPrincipal,
    body: Review | None = None,
) -> Payout:
    return await economy.payouts.review(
        payout_id, admin.user, decision == "approve", None if body is None else body.note
    )


@router.get("/users", response_model=list[UserOut])
async def find_users(
    economy: Econ,
    admin: AdminPrincipal,
    q: Annotated[
        PlainText, Query(min_length=1, max_length=254, description="handle, e-mail or id")
    ],
    limit: Annotated[int, Query(ge=1, le=SEARCH_MAX_USERS)] = 20,
) -> list[UserOut]:
    """Users whose handle or e-mail contains ``q``, or whose id it is; exact matches first."""
    found = await run_in_threadpool(admin_actions.search, economy.db, q, limit)
    return [UserOut.of(u, economy) for u in found]


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["active", "blocked"] | None = None
    role: Role | None = None
    age_verified: StrictBool | None = None


@router.patch("/users/{user_id}", response_model=UserOut)
async def change_user(
    user_id: Annotated[int, Path(ge=1, le=2**62)],
    body: UserChange,
    request: Request,
    economy: Econ,
    admin: AdminPrincipal,
) -> UserOut:
    """Block or unblock (the ledger freezes their accounts too), change role, verify age."""
    user = await run_in_threadpool(
        partial(
            admin_actions.change_user,
            economy.db,
            economy.wallets,
            user_id,
            status=None if body.status is None else UserStatus(body.status),
            role=body.role,
            age_verified=body.age_verified,
            by_user_id=None if admin.user is None else admin.user.id,
            age_rule=economy.age_rule,
            today=today(),
        )
    )
    # Committed: every node (this one at once) drops the user it cached (api/auth.py).
    await services(request).broker.notify(UserChanged(user_id=user_id))
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
    granted = await admin_actions.grant_coins(
        economy.wallets,
        economy.engine,
        user_id,
        body.coins,
        body.idempotency_key,
        by_user_id=None if admin.user is None else admin.user.id,
    )
    return {"transfer_id": granted.transfer_id, "result": granted.outcome.value}


@router.get("/gift-sends", response_model=list[SentGift])
async def gift_sends(
    economy: Econ,
    admin: AdminPrincipal,
    stream_id: Annotated[str | None, Query(pattern=r"^st_[A-Za-z0-9_\-]{1,21}$")] = None,
    user_id: Annotated[int | None, Query(ge=1, le=2**62, description="sender or creator")] = None,
    limit: Annotated[int, Query(ge=1, le=RECENT_MAX_SENDS)] = 50,
) -> list[SentGift]:
    """Committed gifts, newest first, with whether each was reversed."""
    return await run_in_threadpool(
        partial(
            admin_actions.gift_sends, economy.db, stream_id=stream_id, user_id=user_id, limit=limit
        )
    )


@router.post("/gift-sends/{send_id}/reverse")
async def reverse(send_id: str, economy: Econ, admin: AdminPrincipal) -> dict[str, Any]:
    """Undo one gift: coins back to the viewer, diamonds back from the creator (or a debt);
    every live room, battle and webhook is told before the answer (again on a replay)."""
    if not send_id.startswith("gift:") or len(send_id) > 100:
        raise Problem(404, Code.GIFT_SEND_NOT_FOUND, f"no gift {send_id!r}")
    done = await economy.reversals.reverse(send_id)
    return {
        "send_id": done.send_id,
        "coins_returned": done.coins_returned,
        "diamonds_taken": done.diamonds_taken,
        "diamonds_debt": done.diamonds_debt,
    }


class AdminGiftOut(GiftOut):
    available_from_us: int | None
    available_until_us: int | None
    sort_order: int

    @classmethod
    def of_gift(cls, gift: Gift) -> AdminGiftOut:
        return cls(
            **GiftOut.of(gift, "en").model_dump(),
            available_from_us=gift.available_from_us,
            available_until_us=gift.available_until_us,
            sort_order=gift.sort_order,
        )


@router.get("/gifts", response_model=list[AdminGiftOut])
async def all_gifts(economy: Econ, admin: AdminPrincipal) -> list[AdminGiftOut]:
    """The newest version of every gift, on sale or not, read from the database."""
    found = await run_in_threadpool(admin_actions.gifts, economy.db)
    return [AdminGiftOut.of_gift(g) for g in found]


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
    gift = await run_in_threadpool(
        admin_actions.change_gift, economy.db, economy.catalog, gift_id, changes
    )
    return GiftOut.of(gift, "en")


class AdminPackageOut(BaseModel):
    id: int
    currency: str
    coins: int
    price_minor: int
    active: bool


@router.get("/coin-packages", response_model=list[AdminPackageOut])
async def packages(economy: Econ, admin: AdminPrincipal) -> list[AdminPackageOut]:
    """Every package of every currency, inactive ones too."""
    found = await run_in_threadpool(admin_actions.packages, economy.db)
    return [AdminPackageOut.model_validate(p, from_attributes=True) for p in found]


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
    p = await run_in_threadpool(
        admin_actions.change_package,
        economy.db,
        body.currency,
        body.coins,
        body.price_minor,
        body.active,
    )
    return {
        "id": p.id,
        "currency": p.currency,
        "coins": p.coins,
        "price_minor": p.price_minor,
        "active": p.active,
    }


class AdminOrderOut(OrderOut):
    user_id: int

    @classmethod
    def of(cls, order: Order) -> AdminOrderOut:
        return cls.model_validate(order, from_attributes=True)


@router.get("/topups", response_model=list[AdminOrderOut])
async def topups(
    economy: Econ,
    admin: AdminPrincipal,
    user_id: UserId | None = None,
    limit: Annotated[int, Query(ge=1, le=RECENT_MAX_ORDERS)] = 50,
) -> list[AdminOrderOut]:
    """Coin purchases, newest first. Refunds happen at the payment provider, which reports
    them by webhook: the coins are then taken back and the order's status says so."""

    found = await run_in_threadpool(admin_actions.orders, economy.db, user_id, limit)
    return [AdminOrderOut.of(o) for o in found]


class NewApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    integration: str = Field(min_length=1, max_length=64)
    scopes: list[str] = Field(min_length=1, max_length=10)


@router.post("/api-keys", status_code=201)
async def new_api_key(body: NewApiKey, economy: Econ, admin: AdminPrincipal) -> dict[str, Any]:
    """A key for a platform integration; the secret is shown once."""
    key, secret = await run_in_threadpool(
        admin_actions.new_api_key, economy.db, body.integration, body.scopes
    )
    return {
        "id": key.id,
        "integration": key.integration,
        "scopes": sorted(key.scopes),
        "key": secret,
    }


@router.delete("/api-keys/{key_id}", status_code=204)
async def revoke_key(
    key_id: Annotated[int, Path(ge=1, le=2**62)],
    request: Request,
    economy: Econ,
    admin: AdminPrincipal,
) -> None:
    await run_in_threadpool(admin_actions.revoke_key, economy.db, key_id)
    await services(request).broker.notify(ApiKeyRevoked())  # every node's keys


class LedgerCheckOut(BaseModel):
    ok: bool
    accounts: int
    transfers: int
    batches: int
    problems: list[str]
    started_at_us: int
    duration_ms: int


class TotalsOut(BaseModel):
    coins_issued: int
    coins_spent: int
    coins_outstanding: int
    diamonds_issued: int
    diamonds_paid_out: int
    diamonds_outstanding: int

    @classmethod
    def of(cls, t: EconomyTotals) -> TotalsOut:
        # By name; the two outstanding figures are the totals' own properties.
        return cls.model_validate(t, from_attributes=True)


class LedgerHealthOut(BaseModel):
    last_check: LedgerCheckOut | None = Field(description="this server process's last check")
    totals: TotalsOut


class LedgerChecks:
    """``ledger verify`` for the admin console: one run at a time per process, on a worker
    thread (it reads the whole ledger), the last result kept to show."""

    def __init__(self) -> None:
        self._running = asyncio.Lock()
        self.last: LedgerCheckOut | None = None

    async def run(self, economy: Economy) -> LedgerCheckOut:
        asked_at_us = now_us()
        async with self._running:
            # Waited for a run that started after the ask: its answer is as fresh as ours.
            if self.last is not None and self.last.started_at_us >= asked_at_us:
                return self.last
            started_at_us, started = now_us(), time.perf_counter()
            report: VerifyReport = await asyncio.to_thread(verify_snapshot, economy.db)
            self.last = LedgerCheckOut(
                ok=report.ok,
                accounts=report.accounts,
                transfers=report.transfers,
                batches=report.batches,
                problems=report.problems,
                started_at_us=started_at_us,
                duration_ms=round((time.perf_counter() - started) * 1000),
            )
            return self.last


async def ledger_checks_of(request: Request) -> LedgerChecks:
    checks: LedgerChecks = services(request).ledger_checks
    return checks


Checks = Annotated[LedgerChecks, Depends(ledger_checks_of)]


@router.get("/ledger", response_model=LedgerHealthOut)
async def ledger_health(economy: Econ, checks: Checks, admin: AdminPrincipal) -> LedgerHealthOut:
    """The last ledger check and the economy's totals (coins and diamonds in circulation)."""
    totals = await run_in_threadpool(economy.wallets.totals)
    return LedgerHealthOut(last_check=checks.last, totals=TotalsOut.of(totals))


@router.post("/ledger/verify", response_model=LedgerCheckOut)
async def verify_ledger_now(economy: Econ, checks: Checks, admin: AdminPrincipal) -> LedgerCheckOut:
    """Check every ledger invariant now (``giftwave ledger verify``), from one snapshot."""
    return await checks.run(economy)


class RecordOut(BaseModel):
    amount_minor: int
    currency: str
    state: str
    at_us: int


class MismatchOut(BaseModel):
    mismatch: MismatchKind
    kind: RecordKind
    reference: str
    ledger: RecordOut | None
    provider: RecordOut | None


class RecordCountsOut(BaseModel):
    ledger: int
    provider: int


class ReconcileRunOut(BaseModel):
    provider: str
    since_us: int
    started_at_us: int
    finished_at_us: int
    clean: bool
    records: RecordCountsOut
    counts: dict[MismatchKind, int]
    mismatch_count: int
    mismatches: list[MismatchOut] = Field(description="the first mismatches of the run")
    truncated: bool = Field(description="the run found more mismatches than it kept")


class ReconciliationOut(BaseModel):
    last_run: ReconcileRunOut | None = Field(description="None before the first run")


@router.get("/reconciliation", response_model=ReconciliationOut)
async def reconciliation(economy: Econ, admin: AdminPrincipal) -> ReconciliationOut:
    """The last `giftwave reconcile` run: the ledger's top-ups, refunds, disputes and payouts
    compared with the payment provider's records (docs/operations.md, "Reconciliation")."""
    run = await run_in_threadpool(last_run, economy.db)
    return ReconciliationOut(
        last_run=None if run is None else ReconcileRunOut.model_validate(run.as_dict())
    )
