"""A creator's statement (JSON or CSV) and payout requests."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import MaybePrincipal, SessionUser, WalletUser, economy_of
from giftwave.api.fields import IsoDate
from giftwave.api.identity import today
from giftwave.clock import day_start_us
from giftwave.economy.earnings import Line, Statement, load_statement, statement_csv
from giftwave.economy.payouts import Payout
from giftwave.economy.services import Economy
from giftwave.live.leaderboard import top_gifters_of_creator

router = APIRouter(prefix="/v1", tags=["creators"])
Econ = Annotated[Economy, Depends(economy_of)]


class LineOut(BaseModel):
    gifts: int
    coins: int
    diamonds: int
    cash_value_cents: int

    @classmethod
    def of(cls, line: Line) -> LineOut:
        return cls(
            gifts=line.gifts,
            coins=line.coins,
            diamonds=line.diamonds,
            cash_value_cents=line.cash_cents,
        )


class DayOut(LineOut):
    day: date


class StreamLineOut(LineOut):
    stream_id: str
    title: str


class StatementPayoutOut(BaseModel):
    id: str
    requested_at_us: int
    status: str
    diamonds: int
    # The payout's amount_minor (always US cents) under this response's older name; the alias
    # choices read it from the payout and from this model's own dump (FastAPI's response check).
    amount_cents: int = Field(
        description="its worth in US cents",
        validation_alias=AliasChoices("amount_minor", "amount_cents"),
    )
    provider: str | None
    provider_transfer_id: str | None = Field(description="the provider's reference")
    provider_reason: str | None
    payout_currency: str | None = Field(description="what the payee is paid in")
    payout_amount_minor: int | None = Field(description="in payout_currency's minor unit")
    fx_rate_micros: int | None = Field(
        description="the rate recorded with it: units of payout_currency per US dollar, "
        "in millionths"
    )
    received_amount_minor: int | None = Field(
        default=None,
        description="what a cross-border payee's account received after the provider's "
        "conversion, in received_currency's minor unit",
    )
    received_currency: str | None = Field(default=None, description="the account's currency")
    provider_fx_rate_micros: int | None = Field(
        default=None,
        description="the provider's rate: received_currency per payout_currency, in millionths",
    )

    @classmethod
    def of(cls, p: Payout) -> StatementPayoutOut:
        # The fields are the payout's own, by name (the status as its string value).
        return cls.model_validate(p, from_attributes=True)


class StatementOut(BaseModel):
    creator_id: int
    from_day: date
    to_day: date
    diamond_value_usd_micros: int = Field(description="one diamond in millionths of a dollar")
    totals: LineOut
    by_day: list[DayOut]
    by_stream: list[StreamLineOut]
    share_percent_low: float | None = Field(
        description="the creator's share of what viewers paid, at the dearest price per coin"
    )
    share_percent_high: float | None = Field(description="the same at the cheapest price per coin")
    payouts: dict[str, int]
    paid_out_diamonds: int = Field(
        description="diamonds the approved payouts paid (all time); less than their diamonds "
        "when an approval settled a diamond debt from the reservation"
    )
    earned_hundredths: int = Field(
        description="what the period's gifts earned, exactly, in hundredths of a diamond: "
        "totals.diamonds whole, and the hundredths a creator rate below 100 per 100 coins "
        "leaves over from each gift"
    )
    diamonds_per_100_coins: float | None = Field(
        description="the rate the period's gifts earned: earned_hundredths / coins (none "
        "without gifts)"
    )
    fraction_pending_hundredths: int = Field(
        description="hundredths of a diamond held now, under one diamond: the statement "
        "carries the whole ones into the balance first (as a payout request does)"
    )
    balance_diamonds: int
    reserved_diamonds: int
    payout_list: list[StatementPayoutOut] = Field(
        description="each payout requested in the period, newest first (at most 200)"
    )

    @classmethod
    def of(cls, s: Statement, balance: int, reserved: int) -> StatementOut:
        return cls(
            creator_id=s.creator_id,
            from_day=s.from_day,
            to_day=s.to_day,
            diamond_value_usd_micros=s.diamond_value_usd_micros,
            totals=LineOut.of(s.totals),
            by_day=[DayOut(day=d, **LineOut.of(line).model_dump()) for d, line in s.by_day],
            by_stream=[
                StreamLineOut(stream_id=sid, title=title, **LineOut.of(line).model_dump())
                for sid, title, line in s.by_stream
            ],
            share_percent_low=s.share_percent_low,
            share_percent_high=s.share_percent_high,
            payouts=s.payouts,
            paid_out_diamonds=s.paid_out_diamonds,
            earned_hundredths=s.earned_hundredths,
            diamonds_per_100_coins=s.diamonds_per_100_coins,
            fraction_pending_hundredths=s.fraction_pending_hundredths,
            balance_diamonds=balance,
            reserved_diamonds=reserved,
            payout_list=[StatementPayoutOut.of(p) for p in s.payout_list],
        )


STATEMENT_DAYS: Final = 30  # a statement's period when none is asked for


def days_before(end: date, days: int) -> date:
    """The first of ``days`` days that end with ``end``; not before year 1 (`to=0001-01-05`
    alone is a short period, not an OverflowError)."""
    return end - timedelta(days=min(days - 1, (end - date.min).days))


@router.get(
    "/creators/me/statement",
    response_model=StatementOut,
    responses={200: {"content": {"text/csv": {}}}},
)
async def my_statement(
    economy: Econ,
    user: WalletUser,
    from_day: Annotated[IsoDate | None, Query(alias="from")] = None,
    to_day: Annotated[IsoDate | None, Query(alias="to")] = None,
    format: Literal["json", "csv"] = "json",
) -> StatementOut | Response:
    """Earnings per day and per stream (UTC days, default the last 30), as JSON or CSV."""
    end = to_day or today()
    start = from_day or days_before(end, STATEMENT_DAYS)
    view = await economy.wallet(user.id)  # settles whole diamonds out of hundredths first
    statement = await run_in_threadpool(
        load_statement, economy.db, economy.settings, user.id, start, end
    )
    if format == "csv":
        return Response(
            statement_csv(statement),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="giftwave-{start}-{end}.csv"'},
        )
    return StatementOut.of(statement, view.diamonds, view.diamonds_reserved)


class GifterOut(BaseModel):
    rank: int
    user_id: int
    handle: str
    coins: int


class CreatorLeaderboardOut(BaseModel):
    creator_id: int
    period: Literal["week", "all"]
    since_us: int | None  # the week's start (Monday 00:00 UTC); null for all time
    top: list[GifterOut]


@router.get("/creators/{creator_id}/leaderboard", response_model=CreatorLeaderboardOut)
async def creator_leaderboard(
    creator_id: Annotated[int, Path(ge=1, le=2**62)],
    economy: Econ,
    period: Literal["week", "all"] = "week",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> CreatorLeaderboardOut:
    """A creator's top gifters this week (UTC, from Monday) or of all time; public."""
    now = today()
    since = None if period == "all" else day_start_us(now - timedelta(days=now.weekday()))

    top = await run_in_threadpool(top_gifters_of_creator, economy.db, creator_id, since, limit)
    return CreatorLeaderboardOut(
        creator_id=creator_id,
        period=period,
        since_us=since,
        top=[GifterOut.model_validate(entry) for entry in top],
    )


class PayoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    diamonds: int = Field(ge=1, le=2**62)
    idempotency_key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")


@router.post("/payouts", status_code=201, response_model=Payout, tags=["payouts"])
async def request_payout(body: PayoutIn, economy: Econ, user: SessionUser) -> Payout:
    """Cash out diamonds: reserved now, paid when an operator approves. The creator's own
    session only: no API key scope moves a creator's earnings."""
    # The answer is the domain's Payout itself (FastAPI reads a dataclass's fields): no
    # response model to keep in step with it.
    return await economy.payouts.request(user, body.diamonds, body.idempotency_key, today())


@router.get("/payouts", response_model=list[Payout], tags=["payouts"])
async def my_payouts(economy: Econ, user: WalletUser) -> list[Payout]:
    return await economy.payouts.find(creator_id=user.id)


@router.get("/payouts/{payout_id}", response_model=Payout, tags=["payouts"])
async def one_payout(
    payout_id: str, economy: Econ, user: WalletUser, who: MaybePrincipal
) -> Payout:
    admin = who is not None and who.is_admin
    return await economy.payouts.get_for(payout_id, user, admin=admin)
