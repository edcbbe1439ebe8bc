"""The sandbox payout provider's onboarding page: where the provider's reviewers approve a
payee, ask for more documents or reject it, and pick the test bank (docs/economy.md, "The flow
of money out"). A page of the sandbox provider served by giftwave, for the payee's creator or an
admin only, its form posted from this site's own pages only."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from giftwave.api.auth import economy_of
from giftwave.api.origins import OriginPolicy
from giftwave.api.payees import RETURN_PATH, payees_of
from giftwave.api.problems import Problem
from giftwave.api.security_headers import CSP, PAGE_POLICY
from giftwave.economy.services import Economy
from giftwave.errors import Code
from giftwave.payments.base import ProviderUnavailable
from giftwave.payments.sandbox_payouts import Bank, OnboardingAction, SandboxPayoutProvider
from giftwave.web.pages.site import visitor
from giftwave.web.templates import render

router = APIRouter()
Econ = Annotated[Economy, Depends(economy_of)]


def _sandbox(economy: Economy) -> SandboxPayoutProvider:
    payees, _ = payees_of(economy)
    provider = payees.provider
    if not isinstance(provider, SandboxPayoutProvider):
        raise Problem(404, Code.NOT_FOUND, "the sandbox payout provider is not configured")
    return provider


async def _onboarding_account(request: Request, economy: Economy, token: str) -> str:
    """The account a link is for, to its creator or an admin only: anyone else, or a forged or
    expired link, finds nothing there."""
    account_id = _sandbox(economy).account_for_link(token)
    payees, _ = payees_of(economy)
    return await payees.link_account((await visitor(request)).user, account_id)


@router.get("/sandbox/onboarding/{token}", response_class=HTMLResponse, tags=["sandbox"])
async def onboarding_page(
    token: str, request: Request, economy: Econ, message: str = ""
) -> HTMLResponse:
    account_id = await _onboarding_account(request, economy, token)
    account = await _sandbox(economy).get_account(account_id)
    who = await visitor(request)
    html = render(
        "sandbox_onboarding.html",
        who.locale,
        account=account,
        banks=list(Bank),
        base=f"/sandbox/onboarding/{token}",
        back=RETURN_PATH,
        done=message == "done",
        retrying=message == "retrying",
    )
    # The provider's page decides who is paid: never in another site's frame.
    return HTMLResponse(html, headers={CSP: PAGE_POLICY})


@router.post("/sandbox/onboarding/{token}/{action}", tags=["sandbox"], response_model=None)
async def onboarding_action(
    token: str,
    action: OnboardingAction,
    request: Request,
    economy: Econ,
    bank: Annotated[Bank, Form()] = Bank.PAYS,
) -> Response:
    """What the provider's reviewers decide: approve, ask for more documents, reject."""
    settings = economy.settings
    policy = OriginPolicy(settings.public_url, settings.allowed_origins)
    if not policy.may_act(
        request.headers.get("origin"), request.headers.get("host"), request.url.scheme == "https"
    ):
        raise Problem(
            403, Code.ORIGIN_NOT_ALLOWED, "this form is posted from the provider's page only"
        )
    account_id = await _onboarding_account(request, economy, token)
    try:
        delivered = await _sandbox(economy).decide(account_id, action, bank)
    except ProviderUnavailable as exc:
        raise Problem(503, exc.code, exc.detail) from exc
    query = urlencode({"message": "done" if delivered else "retrying"})
    return RedirectResponse(f"/sandbox/onboarding/{token}?{query}", status_code=303)
