"""The payout provider's bills to the platform, taken into the ledger once each.

Stripe bills Connect (a fee per bank payout, per active account and month, on the volume sent,
on cross-border transfers) to the platform's balance, not on any transfer or payout event:
each bill is a balance transaction of its own (payments/stripe_records.py ``connect_fee_of``).
An import lists them (``ProviderFeeSource``) and posts each as the platform's expense in the
bill's currency, paid from its balance at the provider, as a transfer fee is
(economy/payout_transfers.py):

    platform:payout_fees:<cur>  (debited)  ←  platform:payout_provider:<name>:<cur>  (credited)
        transfer provider_fee:<name>:<reference>, code "fee"   (a credit back: the other way)

The transfer's id is the bill's own id, so however many imports (every serving process, every
round, overlapping windows) list the same bill, the ledger takes it once; a ``provider_fees``
row then says what it was (type, period, and the payout it was for when the bill names one).
A crash between the two leaves the transfer alone: the next import finds it there (a replay)
and writes the row. Reconciliation reads the ledger's side from the transfers
(``ledger_fee_records``), the money that moved.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Engine, insert, select

from giftwave.clock import now_us
from giftwave.db.tables import accounts, provider_fees, transfers
from giftwave.db.upsert import insert_new
from giftwave.economy.wallets import Wallets
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.model import Outcome, Transfer, TransferCode
from giftwave.ledger.queries import first_seq_at
from giftwave.logs import audit
from giftwave.payments.records import DONE, ProviderFee, ProviderFeeSource, Record, RecordKind
from giftwave.periodic import PeriodicTask, Schedule

log = logging.getLogger(__name__)

PREFIX: Final = "provider_fee:"
FEES_ACCOUNT_PREFIX: Final = "platform:payout_fees:"
DAY_US: Final = 86_400 * 1_000_000


def provider_fee_id(provider: str, reference: str) -> str:
    """The ledger transfer of one bill: the same in every process and every import."""
    return f"{PREFIX}{provider}:{reference}"


@dataclass(frozen=True, slots=True)
class Imported:
    posted: int  # new in the ledger
    known: int  # already there (a replay)
    refused: int  # the ledger would not take it (logged; the next import tries again)


class ProviderFees:
    """Imports a provider's bills into the ledger, now (``run``) or every ``interval_s``."""

    def __init__(
        self,
        db: Engine,
        engine: PostingEngine,
        wallets: Wallets,
        source: ProviderFeeSource,
        *,
        interval_s: float,
        lookback_days: int,
    ) -> None:
        self._db = db
        self._engine = engine
        self._wallets = wallets
        self._source = source
        self._lookback_us = lookback_days * DAY_US
        self._loop = PeriodicTask("provider-fee-import", self._round, Schedule(interval_s))

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _round(self) -> None:
        await self.run(now_us() - self._lookback_us)

    async def run(self, since_us: int) -> Imported:
        """Every bill the provider lists from ``since_us`` on, in the ledger once."""
        return await self.take(await self._source.fees(since_us))

    async def take(self, fees: Sequence[ProviderFee]) -> Imported:
        posted = known = refused = 0
        for fee in fees:
            if fee.amount_minor == 0:
                continue  # nothing moved
            outcome = await self._post(fee)
            if outcome is Outcome.OK:
                posted += 1
            elif outcome is Outcome.EXISTS:
                known += 1
            else:
                # Another bill under the same id (never, from Stripe) or a busy ledger: left
                # for the next round, and reconciliation shows it missing meanwhile.
                log.error(
                    "the %s fee %s was refused: %s", self._source.name, fee.reference, outcome
                )
                refused += 1
                continue
            if await asyncio.to_thread(self._keep, fee) and outcome is Outcome.OK:
                audit(
                    "audit.provider_fee",
                    provider=self._source.name,
                    reference=fee.reference,
                    fee_type=fee.fee_type,
                    period=fee.period,
                    payout_id=fee.payout_id,
                    amount_minor=fee.amount_minor,
                    currency=fee.currency,
                    transfer_id=provider_fee_id(self._source.name, fee.reference),
                )
        return Imported(posted, known, refused)

    async def _post(self, fee: ProviderFee) -> Outcome:
        name = self._source.name
        expense = await asyncio.to_thread(self._wallets.payout_fees, fee.currency)
        balance = await asyncio.to_thread(self._wallets.payout_provider, name, fee.currency)
        debit, credit = (expense, balance) if fee.amount_minor > 0 else (balance, expense)
        transfer = Transfer(
            provider_fee_id(name, fee.reference),
            debit,
            credit,
            abs(fee.amount_minor),
            TransferCode.FEE,
        )
        (outcome,) = await self._engine.submit([transfer])
        return outcome

    def _keep(self, fee: ProviderFee) -> bool:
        """The bill's row beside its transfer; False when it was there already."""
        with self._db.begin() as conn:
            return insert_new(
                conn,
                insert(provider_fees).values(
                    provider=self._source.name,
                    reference=fee.reference,
                    amount_minor=fee.amount_minor,
                    currency=fee.currency,
                    fee_type=fee.fee_type,
                    period=fee.period,
                    payout_id=fee.payout_id,
                    transfer_id=provider_fee_id(self._source.name, fee.reference),
                    billed_at_us=fee.at_us,
                    imported_at_us=now_us(),
                ),
            )


def ledger_fee_records(conn: Connection, provider: str, since_us: int) -> list[Record]:
    """The provider's bills as the ledger took them, from ``since_us`` on (when billed): a
    charge debits the fees account, a credit back credits it."""
    prefix = provider_fee_id(provider, "")
    debited = select(accounts.c.id).where(accounts.c.name.like(FEES_ACCOUNT_PREFIX + "%"))
    rows = conn.execute(
        select(
            transfers.c.id,
            transfers.c.amount,
            transfers.c.asset,
            transfers.c.debit_account_id.in_(debited.scalar_subquery()).label("charge"),
            provider_fees.c.billed_at_us,
            transfers.c.created_at_us,
        )
        .select_from(
            transfers.outerjoin(provider_fees, provider_fees.c.transfer_id == transfers.c.id)
        )
        .where(
            transfers.c.seq >= first_seq_at(conn, since_us),
            transfers.c.id.like(prefix + "%"),
        )
    ).all()
    records = []
    for r in rows:
        # When Stripe billed it, as the provider's side says; before the row: when posted.
        at_us = int(r.created_at_us if r.billed_at_us is None else r.billed_at_us)
        amount = int(r.amount) if r.charge else -int(r.amount)
        reference = str(r.id)[len(prefix) :]
        records.append(
            Record(RecordKind.PROVIDER_FEE, reference, amount, str(r.asset), DONE, at_us)
        )
    return records
