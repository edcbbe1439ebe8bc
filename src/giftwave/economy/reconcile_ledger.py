"""The ledger's side of reconciliation: giftwave's own books, read as ``Record``s.

Top-ups, refunds and disputes are read from the ledger's transfers themselves, not from the
orders' status: what reconciliation checks is the money that moved. A top-up's fiat leg is
``topup:<provider>:<payment id>:fiat`` (economy/topups.py) in the payment's currency; its
refunds and chargebacks are the transfers that reverse that leg, by code.

A payout is read from its row (the amount and currency the payee was sent, the provider's
state as its webhooks left it) and from the ledger (a returned payout's diamonds came back by
the reversal ``return_id``: only that makes it returned here). A payout giftwave returned
before any transfer was made (the payee could not be paid) never reached the provider and is
not a record; anything the provider holds for it all the same is then ``missing_in_ledger``.
A payout's fee is the ledger's fee transfer (``fee_id``, economy/payout_transfers.py) in the
payee's currency, referenced by the payout's id, as the provider charged it. The provider's
own bills to the platform (Stripe Connect's fees) are the ledger's ``provider_fee:`` transfers
(economy/provider_fees.py), referenced by the provider's record of each bill.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Final

from sqlalchemy import Connection, func, select

from giftwave.db.tables import payouts, transfers
from giftwave.economy.payout_transfers import fee_id, return_id
from giftwave.economy.payouts import PayoutStatus
from giftwave.economy.provider_fees import ledger_fee_records
from giftwave.economy.topups import topup_id
from giftwave.ledger.model import TransferCode
from giftwave.ledger.queries import existing_transfer_ids, first_seq_at, transfer_amounts
from giftwave.payments.records import (
    DONE,
    PayoutState,
    Record,
    RecordKind,
    topup_state,
)

FIAT_SUFFIX: Final = ":fiat"
IDS_PER_QUERY: Final = 500  # an IN list's length, on both backends
SENT: Final = (PayoutStatus.PROCESSING, PayoutStatus.PAID, PayoutStatus.RETURNED)


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), IDS_PER_QUERY):
        yield items[start : start + IDS_PER_QUERY]


def topup_records(conn: Connection, provider: str, since_us: int) -> list[Record]:
    """The provider's payments as the ledger took them: credits, refunds, chargebacks."""
    prefix = topup_id(provider, "")
    # The window's part of the ledger only: gifts are nearly all of it, and never top-ups.
    first_seq = first_seq_at(conn, since_us)
    legs = conn.execute(
        select(transfers.c.id, transfers.c.amount, transfers.c.asset, transfers.c.created_at_us)
        .where(
            transfers.c.seq >= first_seq,
            transfers.c.id.like(prefix + "%" + FIAT_SUFFIX),
            transfers.c.reverses_id.is_(None),
            transfers.c.created_at_us >= since_us,
        )
        .order_by(transfers.c.seq)
    ).all()
    backs = conn.execute(
        select(
            transfers.c.reverses_id,
            transfers.c.code,
            transfers.c.asset,
            func.sum(transfers.c.amount).label("amount"),
            func.max(transfers.c.created_at_us).label("at_us"),
        )
        .where(
            transfers.c.seq >= first_seq,
            transfers.c.reverses_id.like(prefix + "%" + FIAT_SUFFIX),
            transfers.c.created_at_us >= since_us,
        )
        .group_by(transfers.c.reverses_id, transfers.c.code, transfers.c.asset)
    ).all()
    refunded: dict[str, int] = defaultdict(int)
    disputed: set[str] = set()
    records: list[Record] = []
    for back in backs:
        payment_id = str(back.reverses_id)[len(prefix) : -len(FIAT_SUFFIX)]
        if back.code == TransferCode.REFUND.value:
            kind = RecordKind.REFUND
            refunded[payment_id] += int(back.amount)
        elif back.code == TransferCode.CHARGEBACK.value:
            kind = RecordKind.DISPUTE
            disputed.add(payment_id)
        else:
            continue  # no other code reverses a top-up
        records.append(
            Record(kind, payment_id, int(back.amount), str(back.asset), DONE, int(back.at_us))
        )
    for leg in legs:
        payment_id = str(leg.id)[len(prefix) : -len(FIAT_SUFFIX)]
        amount = int(leg.amount)
        state = topup_state(amount, refunded[payment_id], payment_id in disputed)
        records.append(
            Record(
                RecordKind.TOPUP, payment_id, amount, str(leg.asset), state, int(leg.created_at_us)
            )
        )
    return records


def payout_records(conn: Connection, provider: str, since_us: int) -> list[Record]:
    """The payouts sent through ``provider``, in the payee's currency."""
    sent_at = func.coalesce(payouts.c.reviewed_at_us, payouts.c.requested_at_us)
    rows = conn.execute(
        select(
            payouts.c.id,
            payouts.c.status,
            payouts.c.amount_minor,
            payouts.c.currency,
            payouts.c.payout_amount_minor,
            payouts.c.payout_currency,
            payouts.c.provider_transfer_id,
            sent_at.label("at_us"),
        ).where(
            payouts.c.provider == provider,
            payouts.c.status.in_([s.value for s in SENT]),
            sent_at >= since_us,
        )
    ).all()
    wanted = [return_id(r.id) for r in rows]
    returned: set[str] = set()
    for chunk in _chunks(wanted):
        returned |= existing_transfer_ids(conn, chunk)
    fees: dict[str, int] = {}
    for chunk in _chunks([fee_id(r.id) for r in rows]):
        fees |= transfer_amounts(conn, chunk)
    records = []
    for r in rows:
        back = return_id(r.id) in returned
        if r.provider_transfer_id is None and (back or r.status == PayoutStatus.RETURNED):
            continue  # returned before any transfer was made: the provider never had it
        if back:
            state = PayoutState.RETURNED
        elif r.status == PayoutStatus.PAID:
            state = PayoutState.PAID
        else:
            state = PayoutState.PROCESSING
        amount = r.amount_minor if r.payout_amount_minor is None else r.payout_amount_minor
        currency = r.currency if r.payout_currency is None else r.payout_currency
        records.append(
            Record(RecordKind.PAYOUT, str(r.id), int(amount), str(currency), state, int(r.at_us))
        )
        fee = fees.get(fee_id(r.id))
        if fee is not None:
            records.append(
                Record(RecordKind.FEE, str(r.id), fee, str(currency), DONE, int(r.at_us))
            )
    return records


def ledger_records(conn: Connection, provider: str, since_us: int) -> list[Record]:
    """Every record of the ledger's side for ``provider``, from ``since_us`` on."""
    return (
        topup_records(conn, provider, since_us)
        + payout_records(conn, provider, since_us)
        + ledger_fee_records(conn, provider, since_us)
    )
