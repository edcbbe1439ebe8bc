"""Subscriptions (docs/economy.md, "Subscriptions"): a creator's monthly price, subscribing
and cancelling, a viewer's subscriptions and a creator's subscribers; gifted subscriptions
bought in a live room, and a viewer's setting for receiving them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import SessionUser, WalletUser, economy_of
from giftwave.api.fields import StrictBool
from giftwave.api.state import services
from giftwave.clock import now_us
from giftwave.economy.gifting import IDEMPOTENCY_KEY_RE
from giftwave.economy.services import Economy
from giftwave.economy.subscription_gifts import GiftSubs, SubsGiven
from giftwave.economy.subscriptions import SUBSCRIBERS_MAX, Subscription
from giftwave.realtime.notices import SubscriberChanged

router = APIRouter(prefix="/v1", tags=["subscriptions"])
Econ = Annotated[Economy, Depends(economy_of)]


class PriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    price_coins: int = Field(ge=1, le=2**40, description="per period, within the bounds")


class PriceOut(BaseModel):
    creator_id: int
    price_coins: int | None = Field(description="null: no subscription offered")
    min_coins: int
    max_coins: int
    period_s: int


class SubscriptionOut(BaseModel):
    id: int
    subscriber_id: int
    creator_id: int
    handle: str | None = Field(None, description="the other party's handle, in lists")
    price_coins: int
    status: str = Field(description="active, grace, cancelled, ended, lapsed")
    months: int = Field(description="periods paid, over the subscription's whole life")
    paid_until_us: int = Field(description="access runs to here")
    grace_until_us: int | None
    has_access: bool

    @classmethod
    def of(cls, sub: Subscription, handle: str | None = None) -> SubscriptionOut:
        at = now_us()
        return cls(
            id=sub.id,
            subscriber_id=sub.subscriber_id,
            creator_id=sub.creator_id,
            handle=handle,
            price_coins=sub.price_coins,
            status=sub.shown_status(at),
            months=sub.months,
            paid_until_us=sub.paid_until_us,
            grace_until_us=sub.grace_until_us,
            has_access=sub.has_access(at),
        )


def _price_out(economy: Economy, creator_id: int, price: int | None) -> PriceOut:
    policy = economy.subscriptions.policy
    return PriceOut(
        creator_id=creator_id,
        price_coins=price,
        min_coins=policy.min_coins,
        max_coins=policy.max_coins,
        period_s=policy.period_s,
    )


@router.put("/me/subscription-price", response_model=PriceOut)
async def set_price(body: PriceIn, economy: Econ, user: SessionUser) -> PriceOut:
    """A creator sets their monthly price (new subscriptions pay it; running ones keep theirs)."""
    price = await economy.subscriptions.set_price(user, body.price_coins)
    return _price_out(economy, user.id, price)


@router.get("/creators/{creator_id}/subscription-price", response_model=PriceOut)
async def get_price(creator_id: int, economy: Econ) -> PriceOut:
    price = await run_in_threadpool(economy.subscriptions.price, creator_id)
    return _price_out(economy, creator_id, price)


async def _changed(request: Request, creator_id: int, user_id: int) -> None:
    """Every node reads the subscriber's badge (and a subscribers-only chat's answer) again."""
    await services(request).broker.notify(SubscriberChanged(creator_id=creator_id, user_id=user_id))


@router.post("/creators/{creator_id}/subscription", status_code=201, response_model=SubscriptionOut)
async def subscribe(
    creator_id: int, request: Request, response: Response, economy: Econ, user: SessionUser
) -> SubscriptionOut:
    """Subscribe, paying the first period now (201); the same subscription back when it is
    already paid (200, nothing charged). 402 when the coins are short: nothing charged."""
    done = await economy.subscriptions.subscribe(user, creator_id)
    await _changed(request, creator_id, user.id)
    response.status_code = 201 if done.charged else 200
    return SubscriptionOut.of(done.subscription)


@router.delete("/creators/{creator_id}/subscription", response_model=SubscriptionOut)
async def cancel(
    creator_id: int, request: Request, economy: Econ, user: SessionUser
) -> SubscriptionOut:
    """Stop renewing: access to the end of the paid period, no refund."""
    cancelled = await economy.subscriptions.cancel(user, creator_id)
    await _changed(request, creator_id, user.id)
    return SubscriptionOut.of(cancelled)


@router.get("/me/subscriptions", response_model=list[SubscriptionOut])
async def my_subscriptions(economy: Econ, user: WalletUser) -> list[SubscriptionOut]:
    """Every subscription the caller ever paid, newest first, with each creator's handle."""
    found = await run_in_threadpool(economy.subscriptions.mine, user.id)
    return [SubscriptionOut.of(sub, handle) for sub, handle in found]


class SubscribersOut(BaseModel):
    total: int = Field(description="paying subscribers now")
    new_30d: int = Field(description="first periods paid in the last 30 days")
    ended_30d: int = Field(description="access ended in the last 30 days, not renewed (churn)")
    revenue_coins_30d: int = Field(description="every period paid in the last 30 days")
    revenue_diamonds_30d: int = Field(description="whole diamonds those periods earned")
    gifted_30d: int = Field(description="of those periods, the ones other viewers gifted")
    subscribers: list[SubscriptionOut] = Field(description="most months first")


@router.get("/me/subscribers", response_model=SubscribersOut)
async def my_subscribers(
    economy: Econ,
    user: SessionUser,
    limit: Annotated[int, Query(ge=1, le=SUBSCRIBERS_MAX)] = 100,
) -> SubscribersOut:
    """A creator's paying subscribers and the last 30 days' figures (creators only)."""
    figures, found = await run_in_threadpool(economy.subscriptions.subscribers, user, limit)
    return SubscribersOut(
        total=figures.paying,
        new_30d=figures.new,
        ended_30d=figures.ended,
        revenue_coins_30d=figures.revenue_coins,
        revenue_diamonds_30d=figures.revenue_diamonds,
        gifted_30d=figures.gifted,
        subscribers=[SubscriptionOut.of(sub, handle) for sub, handle in found],
    )


class GiftSubsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # The bound is the server's (GIFTWAVE_SUBSCRIPTION_GIFT_MAX_COUNT, 422 invalid_count);
    # this one only keeps absurd numbers out of the parser.
    count: int = Field(ge=-(2**31), le=2**31, description="1..the operator's maximum")
    idempotency_key: str = Field(
        min_length=1, max_length=64, pattern=f"^{IDEMPOTENCY_KEY_RE.pattern}$"
    )


class RecipientOut(BaseModel):
    user_id: int
    handle: str
    months: int = Field(description="their months subscribed to the creator, this one included")


class SubsGivenOut(BaseModel):
    gift_id: str = Field(description="gsub:<buyer id>:<idempotency key>, as in the room event")
    stream_id: str
    creator_id: int
    count: int
    price_coins: int = Field(description="each subscription's price")
    coins: int = Field(description="what the buyer paid: count * price")
    diamonds: int = Field(description="whole diamonds the creator earned")
    recipients: list[RecipientOut]
    created_at_us: int

    @classmethod
    def of(cls, given: SubsGiven) -> SubsGivenOut:
        # The purchase's own fields by name, its recipients' too: no copy to keep in step.
        return cls.model_validate(given, from_attributes=True)


@router.post(
    "/streams/{stream_id}/gifted-subscriptions", status_code=201, response_model=SubsGivenOut
)
async def gift_subscriptions(
    stream_id: Annotated[str, Path(min_length=1, max_length=64)],
    body: GiftSubsIn,
    response: Response,
    economy: Econ,
    user: SessionUser,
) -> SubsGivenOut:
    """Buy ``count`` subscriptions to the stream's creator for viewers in the room, drawn at
    random among those who may receive one (201); the same purchase again with the same
    ``idempotency_key`` (200, nothing charged). 409 ``not_enough_gift_recipients`` when fewer
    viewers may receive one than ``count``; 402 when the coins are short: nothing charged."""
    given = await economy.subscription_gifts.give(
        GiftSubs(
            buyer=user, stream_id=stream_id, count=body.count, idempotency_key=body.idempotency_key
        )
    )
    response.status_code = 201 if given.charged else 200
    return SubsGivenOut.of(given)


class GiftedSettingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accept: StrictBool = Field(description="receive gifted subscriptions (on by default)")


class GiftedSettingOut(BaseModel):
    accept: bool


@router.get("/me/gifted-subscriptions", response_model=GiftedSettingOut)
async def gifted_setting(economy: Econ, user: SessionUser) -> GiftedSettingOut:
    """Whether the caller may be drawn for gifted subscriptions."""
    accept = await run_in_threadpool(economy.subscription_gifts.accepts, user.id)
    return GiftedSettingOut(accept=accept)


@router.put("/me/gifted-subscriptions", response_model=GiftedSettingOut)
async def set_gifted_setting(
    body: GiftedSettingIn, economy: Econ, user: SessionUser
) -> GiftedSettingOut:
    """Opt in or out of receiving gifted subscriptions (in any creator's room)."""
    accept = await economy.subscription_gifts.set_accepts(user, body.accept)
    return GiftedSettingOut(accept=accept)
