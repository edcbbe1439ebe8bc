"""The admin console: catalogue and coin packages, users, payout review, gift reversals and
top-up orders, ledger health and the last reconciliation with the payment provider. One page
with a section per job; everything it shows and does goes through the admin JSON API
(``api/admin.py``) with the operator's own session.

Only users with the admin role see it: a visitor who is not logged in is sent to log in, anyone
else gets a 403 page in their language.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from giftwave.economy.catalog import LOCALES
from giftwave.identity.users import Role
from giftwave.web.i18n import N_, client_messages
from giftwave.web.pages.site import page, visitor_in_role

router = APIRouter(include_in_schema=False)

# What admin.js shows; only this page's visitors download them.
ADMIN_MESSAGES: Final = (
    N_("Yes"),
    N_("No"),
    N_("Edit"),
    N_("Save"),
    N_("Always"),
    N_("From {start}"),
    N_("Until {end}"),
    N_("{start} to {end}"),
    N_("Nothing changed"),
    N_("Saved: {gift} is now version {version}"),
    N_("Package saved"),
    N_("Viewer"),
    N_("Creator"),
    N_("Admin"),
    N_("Active"),
    N_("Frozen"),
    N_("Freeze"),
    N_("Unfreeze"),
    N_("Verified"),
    N_("Not verified"),
    N_("Verify age"),
    N_("Undo age check"),
    N_("Freeze @{handle}? They cannot buy, gift or cash out until unfrozen."),
    N_("Role of @{handle}"),
    N_("Make @{handle} a {role}?"),
    N_("@{handle} is frozen"),
    N_("@{handle} is active again"),
    N_("@{handle} updated"),
    N_("No users match"),
    N_("Approve"),
    N_("Reject"),
    N_("Approve paying {diamonds} diamonds ({amount}) to {creator}?"),
    N_("Reject this payout? The diamonds go back to {creator}."),
    N_("Payout approved"),
    N_("Payout rejected"),
    N_("No payouts here"),
    N_("Within the auto-approval policy"),
    N_("Auto-approval is off"),
    N_("Amount at or above the auto-approval limit"),
    N_("No earnings yet"),
    N_("Earning for too short a time"),
    N_("Open risk flag"),
    N_("Diamond debt"),
    N_("A payout was returned recently"),
    N_("A gift was reversed recently"),
    N_("Approved by a person"),
    N_("Rejected by a person"),
    N_("Nobody reviewed it in time"),
    N_("A transfer event did not match this payout: check it at the provider"),
    N_("Pending"),
    N_("Approved"),
    N_("Rejected"),
    N_("Expired"),
    N_("Failed"),
    N_("Being paid"),
    N_("Paid"),
    N_("Returned"),
    N_("Requested"),
    N_("Reverse"),
    N_("Reversed"),
    N_("Counted"),
    N_("Reverse? @{sender} gets {coins} coins back, @{creator} returns {diamonds} diamonds."),
    N_("Gift reversed: {coins} coins returned"),
    N_("No gifts match"),
    N_("No orders yet"),
    N_("Amount mismatch"),
    N_("Checking…"),
    N_("Clean: every invariant holds"),
    N_("Problems found: {count}"),
    N_("{accounts} accounts, {transfers} transfers, {batches} batches"),
    N_("Last run {time} ({ms} ms)"),
    N_("Not checked yet since this server started"),
    N_("Not reconciled yet: run giftwave reconcile"),
    N_("The books agree with {provider}"),
    N_("Mismatches with {provider}: {count}"),
    N_("{ledger} ledger records, {provider} provider records, from {since}"),
    N_("Run {time}"),
    N_("The first {shown} of {count} are shown; the command lists every one."),
    N_("None"),
    N_("In the ledger, not at the provider"),
    N_("At the provider, not in the ledger"),
    N_("Currency differs"),
    N_("Amount differs"),
    N_("State differs"),
    N_("Top-up"),
    N_("Refund"),
    N_("Dispute"),
    N_("Payout"),
    N_("Fee"),
)


@router.get("/admin", response_class=HTMLResponse)
async def admin_console(request: Request) -> Response:
    who = await visitor_in_role(request, "/admin", Role.ADMIN)
    if isinstance(who, Response):
        return who
    return page(
        request,
        who,
        "admin.html",
        boot={
            "messages": client_messages(who.locale, ADMIN_MESSAGES),
            "gift_locales": list(LOCALES),
        },
    )


# What admin_risk.js shows.
RISK_MESSAGES: Final = (
    N_("Account frozen"),
    N_("Accounts"),
    N_("Card testing"),
    N_("Chargeback rate"),
    N_("Clear"),
    N_("Cleared"),
    N_("Coins"),
    N_("Cycle"),
    N_("Failed top-ups"),
    N_("Flag cleared"),
    N_("Flag held: payouts keep waiting"),
    N_("Freeze"),
    N_("Frozen"),
    N_("Funnel of new accounts"),
    N_("Gift-to-payout cycle too fast"),
    N_("Gifters' chargebacks"),
    N_("Gifts"),
    N_("Held"),
    N_("High"),
    N_("Hold"),
    N_("Low"),
    N_("Medium"),
    N_("One card, many accounts"),
    N_("Open"),
    N_("Payouts"),
    N_("Raised {time}"),
    N_("Refund right after gifting"),
    N_("Top-ups"),
    N_("Users"),
    N_("Window"),
    N_("joined {time}"),
    N_("{coins} of {total}"),
    N_("{minutes} min"),
)


@router.get("/admin/risk", response_class=HTMLResponse)
async def risk_queue(request: Request) -> Response:
    """The risk queue: flags with their evidence, and the decisions (docs/risk.md)."""
    who = await visitor_in_role(request, "/admin/risk", Role.ADMIN)
    if isinstance(who, Response):
        return who
    return page(
        request,
        who,
        "admin_risk.html",
        boot={"messages": client_messages(who.locale, RISK_MESSAGES)},
    )
