"""Stripe's side of the books, listed through the official SDK, as records.

One lister per kind of listing, each an async function of (client, since in seconds) that
answers records (payments/records.py); ``StripeRecords`` runs them in turn. Today:

    balance_transactions   GET /v1/balance_transactions?created[gte]=…&expand[]=data.source,
                           every page (the SDK's auto-pagination):
        charge / payment         → topup   (the charge's payment_intent, amount, currency;
                                            its state from amount_refunded and disputed)
        refund / payment_refund  → refund  (summed per payment_intent; failed or cancelled
                                            refunds gave nothing back and are left out)
        adjustment, reporting_category "dispute" → dispute (summed per payment_intent)
        anything else (payouts to the bank, Stripe's own fees, transfers) is not a top-up's

    connect_transfers      (only when payouts go through Stripe Connect: ``CONNECT_LISTERS``)
                           GET /v1/transfers?created[gte]=…, every page, and then for each
                           connected account paid in the window, once:
                           GET /v1/payouts?created[gte]=… with the Stripe-Account header
        a transfer naming a giftwave payout (metadata.payout_id, else its transfer_group)
                                 → payout  (reference = the payout's id, the transfer's
                                            amount and currency; its state:)
            wholly reversed                              returned
            partly reversed                              partly_reversed (never the ledger's:
                                                         an operator settles it)
            else its bank payout on the account (metadata.payout_id):
                paid → paid; pending, in_transit or none yet → processing;
                failed, canceled → returned (giftwave reverses such a transfer; until it has,
                the books agree that the money came back)
        a transfer naming no payout is not giftwave's (the platform's other business)

    connect_fees           (with Connect too) GET /v1/balance_transactions?type=stripe_fee&…,
                           every page, sources expanded: what Stripe billed the platform's
                           balance for Connect (docs/economy.md, "Stripe Connect's fees")
        a ``stripe_fee`` whose description is Stripe's Connect bill,
        "Connect (<period>): <fee type>" (Payout Fee, Active Account Billing, Account Volume
        Billing, Cross-Border Transfers, …)
                                 → provider_fee (reference = the balance transaction's id, its
                                            amount: a charge positive, a credit negative)
        Stripe's other products' fees (Radar, Billing, …) are not the payouts' and are left out

Amounts are read from the source object (the charge, the refund, the dispute), in the currency
the buyer paid, and converted to giftwave's minor unit (stripe_sdk.giftwave_amount): a
balance transaction's own amount is in the account's settlement currency.

What a run costs at Stripe: one request per page of 100 balance transactions, and with Connect
one per page of 100 transfers plus, per connected account with a transfer neither reversed nor
partly reversed, one listing of its payouts in the window (one request per 100 of them; every
bank payout on such an account is one giftwave payout, the schedule being manual). A window of
N payouts to A creators is about N/100 + A requests; past ``MAX_ITEMS`` items in one listing or
``MAX_ACCOUNTS`` accounts the run is refused rather than read without end: list a shorter
window (--since). Stripe allows 100 reads a second in live mode, so 10,000 creators paid in a
window take about two minutes.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

import stripe

from giftwave.errors import Code
from giftwave.payments.base import ProviderUnavailable
from giftwave.payments.records import (
    DONE,
    PayoutState,
    ProviderFee,
    Record,
    RecordKind,
    topup_state,
)
from giftwave.payments.stripe_sdk import REQUEST_TIMEOUT_S, StripeApi, giftwave_amount, metadata

PAGE_SIZE: Final = 100  # Stripe's largest page
# A run that would read more than this is refused: list a shorter window (--since).
MAX_ITEMS: Final = 200_000
# Connected accounts whose payouts one run lists (one listing each), at most.
MAX_ACCOUNTS: Final = 10_000
CHARGE_TYPES: Final = frozenset({"charge", "payment"})
REFUND_TYPES: Final = frozenset({"refund", "payment_refund"})
REFUND_GAVE_NOTHING: Final = frozenset({"failed", "canceled"})
# A bank payout's status on a connected account, as the state of the transfer that funded it.
BANK_PAYOUT_STATES: Final = {
    "paid": PayoutState.PAID,
    "pending": PayoutState.PROCESSING,
    "in_transit": PayoutState.PROCESSING,
    "failed": PayoutState.RETURNED,
    "canceled": PayoutState.RETURNED,
}

# Stripe bills Connect on the platform's balance as ``stripe_fee`` balance transactions with no
# source, described "Connect (<first day> - <last day>): <fee type>".
STRIPE_FEE: Final = "stripe_fee"
CONNECT_BILL: Final = "Connect"
CONNECT_BILL_RE: Final = re.compile(r"Connect \((?P<period>[^()]{1,64})\): (?P<fee_type>.{1,64})")
FEE_TYPE_MAX_CHARS: Final = 64

_T = TypeVar("_T")
Lister = Callable[[stripe.StripeClient, int], Awaitable[list[Record]]]


class _Malformed(Exception):
    pass


def _field(obj: Mapping[str, Any], name: str, kind: type) -> Any:
    value = obj.get(name)
    if isinstance(value, Mapping) and kind is str:  # an expanded object: its id
        value = value.get("id")
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _Malformed(f"{obj.get('object')} {obj.get('id')!r}: {name} is {value!r}")
    return value


def _money(obj: Mapping[str, Any], name: str) -> tuple[int, str]:
    """``obj[name]`` in giftwave's minor unit of the object's currency, and that currency."""
    currency = str(_field(obj, "currency", str)).upper()
    try:
        return giftwave_amount(abs(int(_field(obj, name, int))), currency), currency
    except ValueError as exc:
        raise _Malformed(str(exc)) from None


class _PerPayment:
    """Refunds or disputes of one kind, summed per payment intent."""

    def __init__(self, kind: RecordKind) -> None:
        self.kind = kind
        self.found: dict[str, Record] = {}

    def add(self, payment_id: str, amount: int, currency: str, at_us: int) -> None:
        seen = self.found.get(payment_id)
        if seen is not None:
            if seen.currency != currency:
                raise _Malformed(f"{payment_id}: {self.kind}s in {seen.currency} and {currency}")
            amount += seen.amount_minor
            at_us = max(at_us, seen.at_us)
        self.found[payment_id] = Record(self.kind, payment_id, amount, currency, DONE, at_us)


def _charge_record(charge: Mapping[str, Any]) -> Record:
    payment_id = _field(charge, "payment_intent", str)
    amount, currency = _money(charge, "amount")
    refunded, _ = _money(charge, "amount_refunded")
    disputed = charge.get("disputed") is True
    at_us = int(_field(charge, "created", int)) * 1_000_000
    state = topup_state(amount, refunded, disputed)
    return Record(RecordKind.TOPUP, payment_id, amount, currency, state, at_us)


def records_of_balance_transactions(items: Sequence[Mapping[str, Any]]) -> list[Record]:
    """Balance transactions (their sources expanded) as top-up, refund and dispute records."""
    charges: dict[str, Record] = {}
    refunds, disputes = _PerPayment(RecordKind.REFUND), _PerPayment(RecordKind.DISPUTE)
    for item in items:
        kind = item.get("type")
        source = item.get("source")
        if not isinstance(source, Mapping):
            if kind in CHARGE_TYPES or kind in REFUND_TYPES:
                raise _Malformed(f"balance transaction {item.get('id')!r} has no expanded source")
            continue
        if kind in CHARGE_TYPES:
            record = _charge_record(source)
            charges[record.reference] = record
        elif kind in REFUND_TYPES:
            if source.get("status") in REFUND_GAVE_NOTHING:
                continue
            amount, currency = _money(source, "amount")
            at_us = int(_field(source, "created", int)) * 1_000_000
            refunds.add(_field(source, "payment_intent", str), amount, currency, at_us)
        elif kind == "adjustment" and item.get("reporting_category") == "dispute":
            amount, currency = _money(source, "amount")
            at_us = int(_field(source, "created", int)) * 1_000_000
            disputes.add(_field(source, "payment_intent", str), amount, currency, at_us)
    return [*charges.values(), *refunds.found.values(), *disputes.found.values()]


async def balance_transactions(client: stripe.StripeClient, since_s: int) -> list[Record]:
    """Every balance transaction created from ``since_s`` on, every page, as records."""
    params: Any = {"created": {"gte": since_s}, "limit": PAGE_SIZE, "expand": ["data.source"]}
    page = await client.v1.balance_transactions.list_async(params)
    return records_of_balance_transactions(await _every(page, "balance transactions"))


async def _every(page: Any, what: str) -> list[Mapping[str, Any]]:
    """Every item of a listing, page after page, at most ``MAX_ITEMS``."""
    items: list[Mapping[str, Any]] = []
    async for item in page.auto_paging_iter():
        if len(items) >= MAX_ITEMS:
            raise ProviderUnavailable(
                Code.PROVIDER_UNAVAILABLE,
                f"Stripe lists more than {MAX_ITEMS} {what}: list a shorter window",
            )
        items.append(item.to_dict())
    return items


def _payout_of(transfer: Mapping[str, Any]) -> str | None:
    """The giftwave payout a transfer pays, when it is giftwave's."""
    group = transfer.get("transfer_group")
    return metadata(transfer, "payout_id") or (group if isinstance(group, str) and group else None)


def bank_payout_states(payouts: Sequence[Mapping[str, Any]]) -> dict[str, PayoutState]:
    """A connected account's bank payouts as the state of each giftwave payout they pay."""
    found: dict[str, PayoutState] = {}
    for payout in payouts:
        payout_id = metadata(payout, "payout_id")
        if payout_id is None:
            continue  # not made by giftwave
        status = payout.get("status")
        if status not in BANK_PAYOUT_STATES:
            raise _Malformed(f"payout {payout.get('id')!r}: status is {status!r}")
        # Two for one giftwave payout cannot both have been funded; the paid one stands.
        if found.get(payout_id) is not PayoutState.PAID:
            found[payout_id] = BANK_PAYOUT_STATES[status]
    return found


def transfer_record(transfer: Mapping[str, Any], banked: Mapping[str, PayoutState]) -> Record:
    """A transfer of a giftwave payout (``_payout_of``) as its record; ``banked`` are the
    states of the bank payouts on its account."""
    payout_id = _payout_of(transfer)
    assert payout_id is not None, "the caller kept giftwave's transfers only"
    amount, currency = _money(transfer, "amount")
    back, _ = _money(transfer, "amount_reversed")
    if back >= amount > 0:
        state = PayoutState.RETURNED
    elif back > 0:
        state = PayoutState.PARTLY_REVERSED
    else:
        state = banked.get(payout_id, PayoutState.PROCESSING)
    at_us = int(_field(transfer, "created", int)) * 1_000_000
    return Record(RecordKind.PAYOUT, payout_id, amount, currency, state, at_us)


async def connect_transfers(client: stripe.StripeClient, since_s: int) -> list[Record]:
    """The platform's transfers to connected accounts from ``since_s`` on, as payout records,
    each account's bank payouts in the window read once (the module's docstring)."""
    params: Any = {"created": {"gte": since_s}, "limit": PAGE_SIZE}
    page = await client.v1.transfers.list_async(params)
    ours = [t for t in await _every(page, "transfers") if _payout_of(t) is not None]
    accounts = sorted(
        {
            str(_field(t, "destination", str))
            for t in ours
            if not _field(t, "amount_reversed", int)  # a reversal decides, whatever the bank
        }
    )
    if len(accounts) > MAX_ACCOUNTS:
        raise ProviderUnavailable(
            Code.PROVIDER_UNAVAILABLE,
            f"transfers to {len(accounts)} accounts, more than {MAX_ACCOUNTS}: list a "
            "shorter window",
        )
    banked: dict[str, PayoutState] = {}
    for account in accounts:
        listing: Any = {"created": {"gte": since_s}, "limit": PAGE_SIZE}
        payouts = await client.v1.payouts.list_async(listing, {"stripe_account": account})
        banked |= bank_payout_states(await _every(payouts, f"payouts on {account}"))
    return [transfer_record(t, banked) for t in ours]


def connect_fee_of(item: Mapping[str, Any]) -> ProviderFee | None:
    """A balance transaction as a Connect fee billed to the platform; None when it is not
    one (another type, or the fee of another Stripe product)."""
    description = item.get("description")
    if item.get("type") != STRIPE_FEE or not isinstance(description, str):
        return None
    if not description.startswith(CONNECT_BILL):
        return None
    match = CONNECT_BILL_RE.fullmatch(description.strip())
    period = None if match is None else match["period"]
    fee_type = description if match is None else match["fee_type"]
    signed = int(_field(item, "amount", int))
    amount, currency = _money(item, "amount")  # its absolute value
    source = item.get("source")
    return ProviderFee(
        reference=str(_field(item, "id", str)),
        amount_minor=amount if signed < 0 else -amount,  # Stripe debits the balance: a charge
        currency=currency,
        fee_type=fee_type[:FEE_TYPE_MAX_CHARS],
        period=period,
        payout_id=_payout_of(source) if isinstance(source, Mapping) else None,
        at_us=int(_field(item, "created", int)) * 1_000_000,
    )


async def list_connect_fees(client: stripe.StripeClient, since_s: int) -> list[ProviderFee]:
    """Every Connect fee billed to the platform's balance from ``since_s`` on, every page."""
    params: Any = {
        "type": STRIPE_FEE,
        "created": {"gte": since_s},
        "limit": PAGE_SIZE,
        "expand": ["data.source"],
    }
    page = await client.v1.balance_transactions.list_async(params)
    found = (connect_fee_of(item) for item in await _every(page, "Stripe fees"))
    return [fee for fee in found if fee is not None]


async def connect_fees(client: stripe.StripeClient, since_s: int) -> list[Record]:
    return [fee.record() for fee in await list_connect_fees(client, since_s)]


LISTERS: Final[tuple[Lister, ...]] = (balance_transactions,)
# With payouts through Stripe Connect (GIFTWAVE_PAYOUT_PROVIDER=stripe).
CONNECT_LISTERS: Final[tuple[Lister, ...]] = (*LISTERS, connect_transfers, connect_fees)


async def _read(listing: Awaitable[_T]) -> _T:
    """A listing's answer, Stripe's errors and unexpected objects as ``ProviderUnavailable``."""
    try:
        return await listing
    except stripe.StripeError as exc:
        raise ProviderUnavailable(Code.PROVIDER_UNAVAILABLE, f"Stripe: {exc}") from exc
    except _Malformed as exc:
        raise ProviderUnavailable(
            Code.PROVIDER_UNAVAILABLE, f"Stripe answered an unexpected object: {exc}"
        ) from None


class StripeRecords:
    """Stripe's records for reconciliation: its own client (a key that may read balances)."""

    name = "stripe"

    def __init__(
        self,
        *,
        api_key: str,
        api_base: str | None = None,
        listers: tuple[Lister, ...] = LISTERS,
    ) -> None:
        self._api = StripeApi(api_key, timeout_s=REQUEST_TIMEOUT_S, api_base=api_base)
        self._client = self._api.client
        self._listers = listers

    async def records(self, since_us: int) -> list[Record]:
        found: list[Record] = []
        for lister in self._listers:
            found += await _read(lister(self._client, since_us // 1_000_000))
        return found

    async def close(self) -> None:
        await self._api.close()


class StripeConnectFees:
    """What Stripe billed the platform for Connect, for the ledger to take in
    (economy/provider_fees.py): the same listing reconciliation compares."""

    name = "stripe"

    def __init__(self, *, api_key: str, api_base: str | None = None) -> None:
        self._api = StripeApi(api_key, timeout_s=REQUEST_TIMEOUT_S, api_base=api_base)

    async def fees(self, since_us: int) -> list[ProviderFee]:
        return await _read(list_connect_fees(self._api.client, since_us // 1_000_000))

    async def close(self) -> None:
        await self._api.close()
