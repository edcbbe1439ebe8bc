"""Payouts through Stripe Connect, Express accounts, with the official SDK.

A creator's payee account is an Express account, made once per creator (idempotency key
``account:<creator id>``, ``metadata.creator_id``), with the ``transfers`` capability and a
**manual payout schedule**: giftwave, not Stripe's calendar, decides when money leaves the
account's Stripe balance for the bank, so every bank payout is one giftwave payout and names
it. Onboarding is Stripe's own page, reached by a fresh Account Link each time.

A creator in another country than the platform's (``platform_country``) gets a cross-border
account: Stripe pays such accounts only under the ``recipient`` service agreement (no card
payments, transfers only, the country passed explicitly), and only between the regions of its
self-serve cross-border payouts (``CROSS_BORDER_REGION``); elsewhere onboarding is refused
before any account is made (``CrossBorderUnsupported``).

A giftwave payout becomes, in order, each with its own idempotency key:

    Transfer   platform → the account's Stripe balance   key = the payout's id,
               transfer_group and metadata.payout_id = the payout's id
    Payout     that balance → the creator's bank          key = ``payout:<id>``, made on the
               (on the connected account, Stripe-Account)  account, metadata payout_id and
                                                           transfer_id

A retry first looks for the transfer by its group, then sends both again with the same keys;
Stripe answers what it made the first time, so a payout is never paid twice (also past the 24
hours Stripe keeps a key). When Stripe refuses the bank payout, the transfer is reversed
(key ``reversal:<id>``) before the refusal is reported: the money never stays with a payee
whose payout giftwave gave back.

Events giftwave acts on (two Stripe webhook endpoints, both sending to
``/v1/payouts/webhooks/stripe``: a **Connect** endpoint for the accounts' events, and an
**account** endpoint for the platform's own transfers; each has its signing secret):

    account.updated     (Connect)  the account's whole state; ``version`` = the event's
                                   ``created``, so the newest report stands
    payout.paid         (Connect)  PAID: the money reached the creator's bank
    payout.failed       (Connect)  FAILED (the bank's ``failure_code``): the money went back to
    payout.canceled                the account's Stripe balance, so ``take_back`` reverses
                                   the transfer, then the diamonds come back
    transfer.reversed   (account)  REVERSED when fully reversed (someone reversed it in the
                                   Dashboard, or ``take_back`` did); a partial reversal is
                                   ignored and logged: an operator decides

Anything else (``transfer.created``: giftwave learns its transfers from the API's answer; a
payout or transfer without giftwave's ``payout_id``) is acknowledged and ignored.

Errors, translated here (payout_base.py):

    Stripe 4xx (refused, nothing made)                    ProviderUnavailable
        on the account (no transfers capability, …)        code payouts_disabled
        anything else                                      code transfer_refused
    no answer, a timeout, 5xx, 409 (a concurrent request   ProviderTimeout: the outcome is
    with the same key), 429, an idempotency key reused     unknown; only the same key again
    with other fields                                      finds out
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

import stripe

from giftwave.errors import Code
from giftwave.payments.base import IgnoredEvent, ProviderUnavailable, WebhookRejected
from giftwave.payments.payout_base import (
    CrossBorderUnsupported,
    PayeeAccount,
    PayeeAccountUpdated,
    PayoutWebhook,
    ProviderTimeout,
    ProviderTransfer,
    TransferEvent,
    TransferEventKind,
    TransferRequest,
)
from giftwave.payments.stripe_sdk import (
    REQUEST_TIMEOUT_S,
    StripeApi,
    amount,
    currency,
    event_parts,
    malformed,
    metadata,
    stripe_amount,
    text,
)

log = logging.getLogger(__name__)

NAME: Final = "stripe"
# Stripe's reasons an account cannot receive a transfer or a payout (its error ``code``).
ACCOUNT_REFUSALS: Final = frozenset(
    {
        "account_invalid",
        "account_closed",
        "insufficient_capabilities_for_transfer",
        "payouts_not_allowed",
        "transfers_not_allowed",
        "bank_account_unusable",
        "no_external_account",
    }
)
# Only these ``requirements.disabled_reason`` close an account (PayeeState.DISABLED); the
# others (``requirements.past_due`` on a new account, ``under_review``, …) are something the
# creator or Stripe still has to do, shown among what is due.
CLOSED_PREFIX: Final = "rejected."
REQUIREMENTS_MAX: Final = 50
# A retry reads an account's payouts since the transfer it found, this many a page, at most.
PAYOUTS_PAGE: Final = 100
PAYOUTS_SCANNED_MAX: Final = 1000
NAME_MAX_CHARS: Final = 255
# What a payout.failed leaves giftwave to say when Stripe gives no failure_code.
PAYOUT_FAILED: Final = "payout_failed"
PAYOUT_CANCELED: Final = "payout_canceled"
TRANSFER_REVERSED: Final = "transfer_reversed"

# Stripe's self-serve cross-border payouts: a platform in the US, the UK, the EEA, Canada or
# Switzerland pays connected accounts in any of those (docs/economy.md, "Creators in another
# country"); elsewhere only by arrangement with Stripe.
# The EU's 27 and Iceland, Liechtenstein, Norway.
# fmt: off
EEA: Final = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
    "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
})
# fmt: on
CROSS_BORDER_REGION: Final = EEA | {"US", "GB", "CA", "CH"}
RECIPIENT: Final = "recipient"  # the only agreement cross-border payouts work under


def service_agreement_for(platform_country: str, country: str) -> str | None:
    """None for an account in the platform's own country (Stripe's default agreement);
    ``recipient`` for one abroad that Stripe pays; ``CrossBorderUnsupported`` otherwise."""
    if country == platform_country:
        return None
    if platform_country in CROSS_BORDER_REGION and country in CROSS_BORDER_REGION:
        return RECIPIENT
    raise CrossBorderUnsupported(country, platform_country)


_PAYOUT_EVENTS: Final = {
    "payout.paid": TransferEventKind.PAID,
    "payout.failed": TransferEventKind.FAILED,
    "payout.canceled": TransferEventKind.FAILED,
}


def _refused(exc: stripe.StripeError) -> ProviderUnavailable:
    """A Stripe error as the boundary's: refused (nothing made) or unknown (ask again)."""
    status = exc.http_status or 0
    if isinstance(exc, stripe.IdempotencyError):
        return ProviderTimeout(Code.IDEMPOTENCY_KEY_REUSED, f"Stripe: {exc.user_message}")
    if isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)) or not (
        400 <= status < 500 and status != 409
    ):
        return ProviderTimeout(Code.PROVIDER_TIMEOUT, f"Stripe gave no answer: {exc}")
    stripe_code = getattr(exc, "code", None)
    code = Code.PAYOUTS_DISABLED if stripe_code in ACCOUNT_REFUSALS else Code.TRANSFER_REFUSED
    return ProviderUnavailable(code, f"Stripe refused ({stripe_code}): {exc.user_message}")


def _absolute(site_url: str, path_or_url: str) -> str:
    return path_or_url if "://" in path_or_url else site_url.rstrip("/") + path_or_url


class StripeConnectProvider:
    name = NAME

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secrets: tuple[str, ...],
        tolerance_s: int,
        api_base: str | None = None,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        platform_country: str = "US",
    ) -> None:
        if not webhook_secrets or not all(s.strip() for s in webhook_secrets):
            raise ValueError("a Stripe Connect webhook signing secret is empty")
        self._api = StripeApi(api_key, timeout_s=request_timeout_s, api_base=api_base)
        self._stripe = self._api.client.v1
        self._secrets = webhook_secrets
        self._tolerance_s = tolerance_s
        self._platform_country = platform_country

    async def close(self) -> None:
        await self._api.close()

    # --- accounts and onboarding -----------------------------------------------------------

    def service_agreement(self, country: str) -> str | None:
        return service_agreement_for(self._platform_country, country)

    async def create_account(
        self, creator_id: int, country: str, currency: str, service_agreement: str | None = None
    ) -> PayeeAccount:
        params: Any = {
            "type": "express",
            "country": country,
            "default_currency": currency.lower(),
            "capabilities": {"transfers": {"requested": True}},
            "settings": {"payouts": {"schedule": {"interval": "manual"}}},
            "metadata": {"creator_id": str(creator_id)},
        }
        if service_agreement is not None:
            params["tos_acceptance"] = {"service_agreement": service_agreement}
        try:
            account = await self._stripe.accounts.create_async(
                params, {"idempotency_key": f"account:{creator_id}"}
            )
        except stripe.StripeError as exc:
            raise ProviderUnavailable(Code.PROVIDER_UNAVAILABLE, f"Stripe: {exc}") from exc
        return _read_account(account.to_dict())

    async def onboarding_link(self, account_id: str, site_url: str, return_url: str) -> str:
        # Stripe sends the creator to refresh_url when the link has expired or was used: the
        # same studio page, whose button asks for a fresh link.
        back = _absolute(site_url, return_url)
        params: Any = {
            "account": account_id,
            "refresh_url": back,
            "return_url": back,
            "type": "account_onboarding",
        }
        try:
            link = await self._stripe.account_links.create_async(params)
        except stripe.StripeError as exc:
            raise ProviderUnavailable(Code.PROVIDER_UNAVAILABLE, f"Stripe: {exc}") from exc
        url = getattr(link, "url", None)
        if not (isinstance(url, str) and url.startswith("https://")):
            raise ProviderUnavailable(Code.PROVIDER_UNAVAILABLE, "Stripe gave no onboarding URL")
        return url

    async def get_account(self, account_id: str) -> PayeeAccount:
        try:
            account = await self._stripe.accounts.retrieve_async(account_id)
        except stripe.StripeError as exc:
            raise ProviderUnavailable(Code.UNKNOWN_ACCOUNT, f"Stripe: {exc}") from exc
        return _read_account(account.to_dict())

    # --- transfers -------------------------------------------------------------------------

    async def create_transfer(self, request: TransferRequest) -> ProviderTransfer:
        try:
            amount_stripe = stripe_amount(request.amount_minor, request.currency)
        except ValueError as exc:
            raise ProviderUnavailable(Code.AMOUNT_NOT_CHARGEABLE, f"Stripe: {exc}") from None
        money: Any = {"amount": amount_stripe, "currency": request.currency.lower()}
        found = await self._transfer_made(request)
        transfer = found if found is not None else await self._new_transfer(request, money)
        transfer_id = str(transfer.id)
        received = None
        banked = money
        if request.payee_currency not in (None, request.currency):
            # A cross-border account: Stripe converted the transfer into the account's
            # currency, and its bank payout is that amount in that currency.
            received = await self._received(request, transfer)
            banked = {
                "amount": stripe_amount(received[0], received[1]),
                "currency": received[1].lower(),
            }
        if found is None or not await self._bank_payout_made(request, found):
            await self._bank_payout(request, banked, transfer_id)
        return ProviderTransfer(
            transfer_id,
            request.payout_id,
            request.amount_minor,
            request.currency,
            received_amount_minor=None if received is None else received[0],
            received_currency=None if received is None else received[1],
            fx_rate_micros=None if received is None else received[2],
        )

    async def _received(self, request: TransferRequest, transfer: Any) -> tuple[int, str, int]:
        """What a cross-border account received for the transfer: its destination payment's
        balance transaction on the account (amount, currency, Stripe's rate in millionths).
        Unread, the outcome is unknown: the sweeper asks again, finding the same transfer."""
        payment = getattr(transfer, "destination_payment", None)
        payment_id = payment if isinstance(payment, str) else getattr(payment, "id", None)
        try:
            if not isinstance(payment_id, str) or not payment_id:
                raise malformed("the transfer names no destination payment")
            charge = await self._stripe.charges.retrieve_async(
                payment_id,
                {"expand": ["balance_transaction"]},
                {"stripe_account": request.account_id},
            )
            landed = charge.to_dict().get("balance_transaction")
            if not isinstance(landed, Mapping):
                raise malformed("the destination payment has no balance transaction")
            rate = landed.get("exchange_rate")
            if not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate <= 0:
                raise malformed(f"exchange_rate is {rate!r}")
            return amount(landed, "net"), currency(landed), round(rate * 1_000_000)
        except (stripe.StripeError, WebhookRejected) as exc:
            raise ProviderTimeout(
                Code.PROVIDER_TIMEOUT, f"Stripe: what payout {request.payout_id} became: {exc}"
            ) from exc

    async def _new_transfer(self, request: TransferRequest, money: Any) -> stripe.Transfer:
        params: Any = money | {
            "destination": request.account_id,
            "transfer_group": request.payout_id,
            "metadata": {"payout_id": request.payout_id},
        }
        try:
            transfer = await self._stripe.transfers.create_async(
                params, {"idempotency_key": request.payout_id}
            )
        except stripe.StripeError as exc:
            raise _refused(exc) from exc
        transfer_id = getattr(transfer, "id", None)
        if not (isinstance(transfer_id, str) and transfer_id):
            raise ProviderTimeout(Code.PROVIDER_TIMEOUT, "Stripe answered a transfer without id")
        return transfer

    async def _bank_payout(self, request: TransferRequest, money: Any, transfer_id: str) -> None:
        """The account's balance to its bank; when Stripe refuses, the transfer back first."""
        params: Any = money | {
            "metadata": {"payout_id": request.payout_id, "transfer_id": transfer_id}
        }
        options: Any = {
            "idempotency_key": f"payout:{request.payout_id}",
            "stripe_account": request.account_id,
        }
        try:
            await self._stripe.payouts.create_async(params, options)
        except stripe.StripeError as exc:
            refused = _refused(exc)
            if not isinstance(refused, ProviderTimeout):
                # The money must not stay with a payee whose payout giftwave gives back.
                await self._reverse(transfer_id, request.payout_id)
            raise refused from exc

    async def _transfer_made(self, request: TransferRequest) -> stripe.Transfer | None:
        """The transfer an earlier attempt made, found by its group (the payout's id): Stripe
        keeps an idempotency key 24 hours, and a retry after a long outage must not pay
        again once the key is forgotten."""
        try:
            found = await self._stripe.transfers.list_async(
                {"transfer_group": request.payout_id, "limit": 1}
            )
        except stripe.StripeError as exc:
            raise ProviderTimeout(Code.PROVIDER_TIMEOUT, f"Stripe: {exc}") from exc
        made = next(iter(found.data), None)
        if made is None:
            return None
        if (made.destination, made.amount) != (
            request.account_id,
            stripe_amount(request.amount_minor, request.currency),
        ):
            # Never pay again, never give back what may have been paid: an operator looks.
            raise ProviderTimeout(
                Code.IDEMPOTENCY_KEY_REUSED, f"payout {request.payout_id} has another transfer"
            )
        return made

    async def _bank_payout_made(self, request: TransferRequest, transfer: Any) -> bool:
        """Whether an earlier attempt already paid the found transfer out to the bank: the
        account's payouts since the transfer, read for this payout's id (giftwave makes every
        payout on these accounts, one per giftwave payout, so the list is short; past
        ``PAYOUTS_SCANNED_MAX`` an operator looks rather than risk a second one)."""
        since = getattr(transfer, "created", None)
        params: Any = {"limit": PAYOUTS_PAGE}
        if isinstance(since, int):
            params["created"] = {"gte": since}
        scanned = 0
        try:
            found = await self._stripe.payouts.list_async(
                params, {"stripe_account": request.account_id}
            )
            async for payout in found.auto_paging_iter():
                if metadata(payout.to_dict(), "payout_id") == request.payout_id:
                    return True
                scanned += 1
                if scanned >= PAYOUTS_SCANNED_MAX:
                    break
        except stripe.StripeError as exc:
            raise ProviderTimeout(Code.PROVIDER_TIMEOUT, f"Stripe: {exc}") from exc
        if scanned >= PAYOUTS_SCANNED_MAX:
            raise ProviderTimeout(
                Code.PROVIDER_TIMEOUT,
                f"{scanned} payouts on {request.account_id} since the transfer of payout "
                f"{request.payout_id}: an operator must check whether it was paid out",
            )
        return False

    async def take_back(self, event: TransferEvent) -> None:
        await self._reverse(event.transfer_id, event.payout_id)

    async def _reverse(self, transfer_id: str, payout_id: str) -> None:
        """The whole transfer back to the platform, once (key ``reversal:<payout id>``);
        ``ProviderTimeout`` when Stripe cannot be told, so the caller comes back."""
        params: Any = {"metadata": {"payout_id": payout_id}}
        try:
            await self._stripe.transfers.reversals.create_async(
                transfer_id, params, {"idempotency_key": f"reversal:{payout_id}"}
            )
            return
        except stripe.InvalidRequestError as exc:
            refusal: stripe.StripeError = exc  # perhaps reversed already (a late retry)
        except stripe.StripeError as exc:
            raise ProviderTimeout(
                Code.PROVIDER_TIMEOUT, f"the transfer could not be reversed: {exc}"
            ) from exc
        try:
            transfer = await self._stripe.transfers.retrieve_async(transfer_id)
        except stripe.StripeError as exc:
            raise ProviderTimeout(Code.PROVIDER_TIMEOUT, f"Stripe: {exc}") from exc
        if getattr(transfer, "reversed", None) is not True:
            log.error("transfer %s of payout %s: %s", transfer_id, payout_id, refusal)
            raise ProviderTimeout(
                Code.PROVIDER_TIMEOUT, f"Stripe refused to reverse {transfer_id}: {refusal}"
            )

    # --- webhooks --------------------------------------------------------------------------

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PayoutWebhook:
        body = self._api.verified_event(payload, headers, self._secrets, self._tolerance_s)
        return decode(body)


def decode(body: Mapping[str, Any]) -> PayoutWebhook:
    """A verified event as the boundary's value."""
    event_id, event_type, obj = event_parts(body)
    if len(event_id) > NAME_MAX_CHARS:
        raise malformed("the event id is too long")
    if event_type == "account.updated":
        created = body.get("created")
        if not (isinstance(created, int) and not isinstance(created, bool) and created > 0):
            raise malformed(f"created is {created!r}")
        return PayeeAccountUpdated(NAME, event_id, _read_account(obj, version=created))
    if event_type in _PAYOUT_EVENTS:
        return _payout_event(body, event_id, event_type, obj)
    if event_type == "transfer.reversed":
        return _reversal_event(event_id, obj)
    return IgnoredEvent(NAME, event_id, f"{event_type[:64]!r} is not a payout event")


def _payout_event(
    body: Mapping[str, Any], event_id: str, event_type: str, obj: Mapping[str, Any]
) -> TransferEvent | IgnoredEvent:
    if not isinstance(body.get("account"), str):
        return IgnoredEvent(NAME, event_id, "a payout of the platform's own balance")
    payout_id, transfer_id = metadata(obj, "payout_id"), metadata(obj, "transfer_id")
    if payout_id is None or transfer_id is None:
        return IgnoredEvent(NAME, event_id, "a payout giftwave did not make")
    kind = _PAYOUT_EVENTS[event_type]
    reason = None
    if kind is TransferEventKind.FAILED:
        failure = obj.get("failure_code")
        fallback = PAYOUT_CANCELED if event_type == "payout.canceled" else PAYOUT_FAILED
        reason = failure if isinstance(failure, str) and failure else fallback
    return TransferEvent(
        NAME,
        event_id,
        kind,
        _short(transfer_id, "metadata.transfer_id"),
        _short(payout_id, "metadata.payout_id"),
        amount(obj, "amount"),
        currency(obj),
        reason,
    )


def _reversal_event(event_id: str, obj: Mapping[str, Any]) -> TransferEvent | IgnoredEvent:
    payout_id = metadata(obj, "payout_id")
    if payout_id is None:
        return IgnoredEvent(NAME, event_id, "a transfer giftwave did not make")
    if obj.get("reversed") is not True:
        # Part of the transfer taken back: the payee kept the rest, so giving every diamond
        # back would pay twice. An operator settles it by hand.
        log.warning("transfer of payout %s partially reversed (event %s)", payout_id, event_id)
        return IgnoredEvent(NAME, event_id, "a partial reversal: an operator decides")
    return TransferEvent(
        NAME,
        event_id,
        TransferEventKind.REVERSED,
        _short(text(obj, "id"), "id"),
        _short(payout_id, "metadata.payout_id"),
        amount(obj, "amount_reversed"),
        currency(obj),
        TRANSFER_REVERSED,
    )


def _short(value: str, name: str) -> str:
    if len(value) > NAME_MAX_CHARS:
        raise malformed(f"{name} is too long")
    return value


def _names(value: object, field: str) -> list[str]:
    if value is None:
        return []
    if not (isinstance(value, list) and all(isinstance(x, str) for x in value)):
        raise malformed(f"requirements.{field} is {value!r}")
    return value


def _read_account(obj: Mapping[str, Any], version: int = 0) -> PayeeAccount:
    """Stripe's account as the boundary's report. An API answer carries no order (version 0:
    any event's report is newer); an event's carries its ``created``."""
    account_id = _short(text(obj, "id"), "id")
    details, payouts = obj.get("details_submitted"), obj.get("payouts_enabled")
    requirements = obj.get("requirements")
    if not (isinstance(details, bool) and isinstance(payouts, bool)):
        raise malformed("details_submitted or payouts_enabled is not a boolean")
    if not isinstance(requirements, Mapping):
        raise malformed("the account has no requirements")
    due: list[str] = []
    for name in [
        *_names(requirements.get("past_due"), "past_due"),
        *_names(requirements.get("currently_due"), "currently_due"),
    ]:
        if name not in due and "," not in name and 0 < len(name) <= NAME_MAX_CHARS:
            due.append(name)
    reason = requirements.get("disabled_reason")
    if reason is not None and not (isinstance(reason, str) and 0 < len(reason) <= NAME_MAX_CHARS):
        raise malformed(f"requirements.disabled_reason is {reason!r}")
    closed = reason if reason is not None and reason.startswith(CLOSED_PREFIX) else None
    if reason is not None and closed is None and reason not in due:
        due.append(reason)  # waiting on Stripe or on the creator: shown among what is due
    return PayeeAccount(
        account_id=account_id,
        details_submitted=details,
        payouts_enabled=payouts,
        requirements_due=tuple(due[:REQUIREMENTS_MAX]),
        disabled_reason=closed,
        version=version,
    )
