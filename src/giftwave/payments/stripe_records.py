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

Amounts are read from the source object (the charge, the refund, the dispute), in the currency
the buyer paid, and converted to giftwave's minor unit (stripe_checkout.giftwave_amount): a
balance transaction's own amount is in the account's settlement currency. A Connect payout
provider adds its transfers as one more lister (``Transfer.list``), nothing else changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import stripe

from giftwave.errors import Code
from giftwave.payments.base import ProviderUnavailable
from giftwave.payments.records import DONE, Record, RecordKind, topup_state
from giftwave.payments.stripe_sdk import REQUEST_TIMEOUT_S, StripeApi, giftwave_amount

PAGE_SIZE: Final = 100  # Stripe's largest page
# A run that would read more than this is refused: list a shorter window (--since).
MAX_ITEMS: Final = 200_000
CHARGE_TYPES: Final = frozenset({"charge", "payment"})
REFUND_TYPES: Final = frozenset({"refund", "payment_refund"})
REFUND_GAVE_NOTHING: Final = frozenset({"failed", "canceled"})

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
    items: list[Mapping[str, Any]] = []
    async for item in page.auto_paging_iter():
        if len(items) >= MAX_ITEMS:
            raise ProviderUnavailable(
                Code.PROVIDER_UNAVAILABLE,
                f"Stripe lists more than {MAX_ITEMS} balance transactions: list a shorter window",
            )
        items.append(item.to_dict())
    return records_of_balance_transactions(items)


LISTERS: Final[tuple[Lister, ...]] = (balance_transactions,)


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
            try:
                found += await lister(self._client, since_us // 1_000_000)
            except stripe.StripeError as exc:
                raise ProviderUnavailable(Code.PROVIDER_UNAVAILABLE, f"Stripe: {exc}") from exc
            except _Malformed as exc:
                raise ProviderUnavailable(
                    Code.PROVIDER_UNAVAILABLE, f"Stripe answered an unexpected object: {exc}"
                ) from None
        return found

    async def close(self) -> None:
        await self._api.close()
