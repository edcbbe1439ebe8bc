"""Responsible spending, the viewer's own (docs/economy.md, "Responsible spending"); a session
only, never an API key: an integration may not raise a person's limits.

    GET  /v1/me/spending                 limits in force, what each period spent, a raise
                                         waiting out its cooling-off, a self-exclusion
    PUT  /v1/me/spending/limits          {"unit": "COIN"|"EUR"…, "day": 500, "week": null…}:
                                         a period named is set (null: removed), others kept;
                                         lowering at once, raising after the cooling-off
    POST /v1/me/spending/exclusion       {"days": 30} or {"ends_at": "…Z"}: no top-ups, gifts,
                                         paid messages or renewals until then; never undone
    GET  /v1/me/spending/report          this month and last: per creator, per day, in coins
                                         and money
    GET  /v1/me/spending/summary.txt     the month's summary as e-mail-ready text
    GET  /v1/users/{id}/spending         one's own (the same as /v1/me); anyone else's: 404
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import SessionUser
from giftwave.api.state import services
from giftwave.clock import now_us
from giftwave.economy.spending import (
    MonthSpend,
    Spending,
    SpendingOverview,
    SpendingReport,
)
from giftwave.economy.spending_rules import (
    COIN_UNIT,
    LIMIT_MAX_COINS,
    US_PER_S,
    LimitChange,
    Period,
)
from giftwave.economy.spending_summary import summary_text
from giftwave.errors import Code, Invalid, NotFound
from giftwave.realtime.notices import UserChanged

router = APIRouter(tags=["spending"])

UserId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# An amount in a currency's minor units may be larger than the coins it buys; anything past
# this is a slip of the keyboard, refused before any arithmetic.
AMOUNT_MAX: Final = 2**50


def _spending(request: Request) -> Spending:
    found: Spending = services(request).economy.spending
    return found


class LimitOut(BaseModel):
    period: Period
    limit_coins: int | None = Field(description="in force now; null: none")
    unit: str = Field(description="what the viewer typed it in: COIN or an ISO currency")
    entered: int | None = Field(description="the amount typed, in that unit (minor units)")
    limit_money: int | None = Field(description="the limit's worth in `currency`, minor units")
    spent_coins: int
    spent_money: int | None
    resets_at: datetime
    pending_coins: int | None = Field(description="a raise waiting out its cooling-off")
    pending_removal: bool
    pending_applies_at: datetime | None
    max_coins: int | None = Field(description="a young adult's ceiling (month only)")


class SpendingOut(BaseModel):
    time_zone: str = Field(description="periods are counted in it (UTC when unknown)")
    currency: str
    limits: list[LimitOut]
    cooling_off_s: int
    excluded_from: datetime | None
    excluded_until: datetime | None


class LimitsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit: str = Field(default=COIN_UNIT, min_length=3, max_length=4)
    day: StrictInt | None = Field(default=None, description="null: remove")
    week: StrictInt | None = None
    month: StrictInt | None = None


class ExclusionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: StrictInt | None = Field(default=None, ge=1, le=100_000)
    ends_at: datetime | None = None


class CreatorOut(BaseModel):
    creator_id: int
    handle: str
    coins: int
    money: int | None


class DayOut(BaseModel):
    day: str
    coins: int
    money: int | None


class MonthOut(BaseModel):
    month: str
    coins: int
    money: int | None
    per_creator: list[CreatorOut]
    per_day: list[DayOut]


class ReportOut(BaseModel):
    currency: str
    this_month: MonthOut
    last_month: MonthOut
    average_month_coins: int


def _at(at_us: int | None) -> datetime | None:
    return None if at_us is None else datetime.fromtimestamp(at_us / US_PER_S, tz=UTC)


def _out(view: SpendingOverview) -> SpendingOut:
    def money(coins: int | None) -> int | None:
        if coins is None or view.coin_rate is None:
            return None
        rate_coins, rate_minor = view.coin_rate
        return coins * rate_minor // rate_coins

    return SpendingOut(
        time_zone=view.time_zone,
        currency=view.currency,
        cooling_off_s=view.cooling_off_s,
        excluded_from=_at(view.excluded_from_us),
        excluded_until=_at(view.excluded_until_us),
        limits=[
            LimitOut(
                period=v.period,
                limit_coins=v.limit_coins,
                unit=v.unit,
                entered=v.entered,
                limit_money=money(v.limit_coins),
                spent_coins=v.spent_coins,
                spent_money=money(v.spent_coins),
                resets_at=_at(v.resets_at_us),
                pending_coins=v.pending_coins,
                pending_removal=v.pending_removal,
                pending_applies_at=_at(v.pending_at_us),
                max_coins=v.max_coins,
            )
            for v in view.limits
        ],
    )


def _month(report: SpendingReport, month: MonthSpend) -> MonthOut:
    return MonthOut(
        month=month.month,
        coins=month.coins,
        money=report.money(month.coins),
        per_creator=[
            CreatorOut(
                creator_id=c.creator_id, handle=c.handle, coins=c.coins, money=report.money(c.coins)
            )
            for c in month.per_creator
        ],
        per_day=[
            DayOut(day=day, coins=coins, money=report.money(coins)) for day, coins in month.per_day
        ],
    )


@router.get("/v1/me/spending", response_model=SpendingOut)
async def my_spending(request: Request, user: SessionUser) -> SpendingOut:
    return _out(await run_in_threadpool(_spending(request).overview, user))


@router.get("/v1/users/{user_id}/spending", response_model=SpendingOut)
async def user_spending(user_id: UserId, request: Request, user: SessionUser) -> SpendingOut:
    """One's own limits by id; nobody else's (404, whether or not they set any)."""
    if user_id != user.id:
        raise NotFound(Code.USER_NOT_FOUND, f"no spending of user {user_id} for you")
    return _out(await run_in_threadpool(_spending(request).overview, user))


@router.put("/v1/me/spending/limits", response_model=SpendingOut)
async def set_limits(body: LimitsIn, request: Request, user: SessionUser) -> SpendingOut:
    """Set, lower, raise or remove limits. Lowering holds at once on every node; a raise or
    a removal applies after the cooling-off, and a second one meanwhile is refused
    (``spending_limit_raise_pending``; the same raise again is a no-op)."""
    spending = _spending(request)
    named = [Period(name) for name in ("day", "week", "month") if name in body.model_fields_set]
    if not named:
        raise Invalid(Code.INVALID_SPENDING_LIMIT, "name at least one of day, week, month")
    unit = body.unit.upper()
    changes = []
    for period in named:
        amount = getattr(body, period.value)
        if amount is not None and not 1 <= amount <= AMOUNT_MAX:
            raise Invalid(
                Code.INVALID_SPENDING_LIMIT,
                f"a spending limit is a whole amount from 1 up to {LIMIT_MAX_COINS:,} coins",
                max_coins=LIMIT_MAX_COINS,
            )
        coins = None if amount is None else await run_in_threadpool(spending.to_coins, amount, unit)
        changes.append(LimitChange(period, coins, unit, amount))
    await run_in_threadpool(spending.set_limits, user, changes)
    await profile_changed(request, user.id)
    return _out(await run_in_threadpool(spending.overview, user))


@router.post("/v1/me/spending/exclusion", response_model=SpendingOut)
async def exclude(body: ExclusionIn, request: Request, user: SessionUser) -> SpendingOut:
    """Exclude oneself from spending until then: it cannot be shortened or undone."""
    if (body.days is None) == (body.ends_at is None):
        raise Invalid(Code.INVALID_SELF_EXCLUSION, "give either days or ends_at")
    if body.ends_at is not None:
        if body.ends_at.tzinfo is None:
            raise Invalid(Code.INVALID_SELF_EXCLUSION, "ends_at needs a time zone, e.g. …Z")
        ends_at_us = int(body.ends_at.timestamp()) * US_PER_S
    else:
        assert body.days is not None
        ends_at_us = now_us() + body.days * 86_400 * US_PER_S
    spending = _spending(request)
    await run_in_threadpool(spending.exclude, user, ends_at_us)
    await profile_changed(request, user.id)
    return _out(await run_in_threadpool(spending.overview, user))


@router.get("/v1/me/spending/report", response_model=ReportOut)
async def report(request: Request, user: SessionUser) -> ReportOut:
    found = await run_in_threadpool(_spending(request).report, user)
    return ReportOut(
        currency=found.currency,
        this_month=_month(found, found.this_month),
        last_month=_month(found, found.last_month),
        average_month_coins=found.average_month_coins,
    )


@router.get("/v1/me/spending/summary.txt", response_class=Response)
async def summary(request: Request, user: SessionUser) -> Response:
    """The month so far, as text ready for an e-mail (UTF-8, plain)."""
    found = await run_in_threadpool(_spending(request).report, user)
    return Response(summary_text(user.handle, found), media_type="text/plain; charset=utf-8")


async def profile_changed(request: Request, user_id: int) -> None:
    """The viewer's spending profile (limits, exclusion, time zone) changed: this node forgets
    it now, every other node on the notice."""
    economy = services(request).economy
    economy.gifting.forget_user(user_id)
    await services(request).broker.notify(UserChanged(user_id=user_id))
