"""Payees and the payout provider: a creator's payee state and onboarding, the provider's
webhooks (the sandbox provider's onboarding page is a page: web/pages/payout_sandbox.py).
Thin: parse, call the domain, answer."""

from __future__ import annotations

import logging
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from giftwave import metrics
from giftwave.api.auth import AdminPrincipal, SessionUser, economy_of
from giftwave.api.problems import Problem
from giftwave.api.state import public_base
from giftwave.economy.payees import NO_ACCOUNT, Payee, Payees
from giftwave.economy.payout_transfers import PayoutTransfers
from giftwave.economy.services import Economy
from giftwave.errors import Code
from giftwave.payments.base import IgnoredEvent
from giftwave.payments.payout_base import PayeeAccountUpdated

log = logging.getLogger(__name__)
router = APIRouter(tags=["payees"])
Econ = Annotated[Economy, Depends(economy_of)]
UserId = Annotated[int, Path(ge=1, le=2**62)]
# Where onboarding sends a creator back: the studio's payouts, the only place that starts it.
RETURN_PATH: Final = "/studio/earnings"
# Its body limit is a payment webhook's (shop.WEBHOOK_MAX_BYTES, api/app.py's _body_limits).
WEBHOOK_TEMPLATE: Final = "/v1/payouts/webhooks/{provider}"


def payees_of(economy: Economy) -> tuple[Payees, PayoutTransfers]:
    if economy.payees is None or economy.payout_transfers is None:
        raise Problem(404, Code.NO_PAYOUT_PROVIDER, "payouts are paid by hand here")
    return economy.payees, economy.payout_transfers


class PayeeOut(BaseModel):
    state: Literal["none", "pending", "verified", "restricted", "disabled"]
    missing: list[str] = Field(description="what keeps payouts from being requested")
    provider: str | None
    country: str | None
    currency: str | None
    service_agreement: str | None = Field(
        default=None,
        description="what the provider's account was opened under: recipient for a "
        "cross-border account at Stripe; null, the provider's default",
    )

    @classmethod
    def of(cls, payee: Payee | None) -> PayeeOut:
        if payee is None:
            return cls(
                state="none", missing=[NO_ACCOUNT], provider=None, country=None, currency=None
            )
        return cls(
            state=payee.state.value,
            missing=payee.missing,
            provider=payee.provider,
            country=payee.country,
            currency=payee.currency,
            service_agreement=payee.service_agreement,
        )


class OnboardingOut(BaseModel):
    url: str = Field(description="the provider's onboarding page; short-lived, ask again")


@router.get("/v1/creators/me/payee", response_model=PayeeOut)
async def my_payee(economy: Econ, user: SessionUser) -> PayeeOut:
    """The creator's payout account: its state and what is missing."""
    payees, _ = payees_of(economy)
    return PayeeOut.of(await payees.get(user.id))


@router.post("/v1/creators/me/payee/onboarding", response_model=OnboardingOut)
async def start_onboarding(request: Request, economy: Econ, user: SessionUser) -> OnboardingOut:
    """Start or continue onboarding at the payout provider (the account is made once)."""
    payees, _ = payees_of(economy)
    site = public_base(request)
    return OnboardingOut(url=await payees.start_onboarding(user, site, RETURN_PATH))


@router.get("/v1/admin/payees/{creator_id}", response_model=PayeeOut, tags=["admin"])
async def a_payee(creator_id: UserId, economy: Econ, admin: AdminPrincipal) -> PayeeOut:
    payees, _ = payees_of(economy)
    return PayeeOut.of(await payees.get(creator_id))


@router.post(WEBHOOK_TEMPLATE, tags=["payouts"])
async def payout_webhook(provider: str, request: Request, economy: Econ) -> dict[str, bool]:
    """Where the payout provider reports; verified before anything is read from it."""
    payees, transfers = payees_of(economy)
    if provider != payees.provider.name:
        raise Problem(404, Code.UNKNOWN_PROVIDER, f"{provider!r} is not the payout provider")
    payload = await request.body()  # at most a webhook's limit (api/body_limit.py)
    try:
        event = payees.provider.parse_webhook(payload, request.headers)
    except Exception:
        metrics.PAYMENT_WEBHOOK_FAILURES.inc()  # forged or broken: an operator wants to know
        raise
    if isinstance(event, IgnoredEvent):
        log.info("%s payout webhook %s ignored: %s", event.provider, event.event_id, event.reason)
        return {"received": True, "ignored": True}
    if isinstance(event, PayeeAccountUpdated):
        await payees.apply(event)
    else:
        await transfers.handle_event(event)
    return {"received": True}
