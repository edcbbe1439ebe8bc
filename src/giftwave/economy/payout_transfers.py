"""An approved payout becomes the provider's transfer; its webhooks decide how it ends.

    approve ─► processing (the reservation posted: creator:diamonds → platform:payouts)
        ─► create the transfer at the provider, idempotency key = the payout's id
              answered      the transfer's id is kept; the provider's webhook ends it
              refused       returned at once (the payee cannot receive money)
              no answer     stays processing: the sweeper asks again with the same key, which
                            never pays twice (the provider answers the transfer it made)
        ─► transfer.paid                 paid
        ─► transfer.failed / .reversed   returned: the diamonds come back by a ledger
                                         reversal of the payout's post, with the reason;
                                         after a failure the provider first takes the money
                                         back where the failure left it with the payee

Every webhook is stored once and a payout's end is folded from all of its events: a failure
or a reversal wins over "paid" whatever the order, so a repeated, late or reordered delivery
never moves diamonds twice (the reversal's id is derived from the payout's).

An event whose amount or currency is not what the payout sent is stored and counted, never
acted on: the payout keeps its state and is flagged for an operator (``flag``, an audit line,
a metric). The fee a paid event reports is the platform's expense, posted once per payout
(``platform:payout_fees:<cur>`` ← ``platform:payout_provider:<name>:<cur>``), and kept when
the payout is reversed later, as the provider keeps it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Engine, insert, select, update

from giftwave.clock import now_us
from giftwave.db.tables import payout_events, payouts
from giftwave.db.upsert import insert_new
from giftwave.economy.fx import FxRateMissing
from giftwave.economy.payees import Payees, PayeeState
from giftwave.economy.payouts import (
    POSTED_SUFFIX,
    RETURNED_SUFFIX,
    Payout,
    PayoutStatus,
    find_payout,
    pending_id,
)
from giftwave.economy.wallets import PAYOUTS, Wallets
from giftwave.errors import Code, Invalid, Unavailable
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.model import Outcome, Transfer, TransferCode
from giftwave.ledger.queries import transfer_amounts
from giftwave.logs import audit
from giftwave.metrics import PAYOUT_TRANSFER_MISMATCHES
from giftwave.payments.base import ProviderUnavailable
from giftwave.payments.payout_base import (
    PayoutProvider,
    ProviderTimeout,
    ProviderTransfer,
    TransferEvent,
    TransferEventKind,
    TransferRequest,
)
from giftwave.periodic import PeriodicTask, Schedule

log = logging.getLogger(__name__)

SWEEP_BATCH: Final = 100  # processing payouts retried per round, at most
PAYOUT_ID_MAX_CHARS: Final = 40  # payouts.id
REASON_MAX_CHARS: Final = 255
# Why giftwave itself returned a payout (the provider's reasons are its own words).
PAYEE_NOT_READY: Final = "payee_not_ready"
FX_RATE_MISSING: Final = "fx_rate_missing"
TRANSFER_MISMATCH: Final = "transfer_mismatch"
FEE_SUFFIX: Final = ":fee"


def return_id(payout_id: str) -> str:
    """The ledger reversal that gives a returned payout's diamonds back: one per payout."""
    return pending_id(payout_id) + POSTED_SUFFIX + RETURNED_SUFFIX


def fee_id(payout_id: str) -> str:
    """The ledger transfer of the provider's fee for a payout's transfer: one per payout."""
    return pending_id(payout_id) + FEE_SUFFIX


def matches(payout: Payout, amount_minor: int | None, currency: str | None) -> bool:
    """Whether a transfer event moved what the payout sent, or what its payee received after
    the provider's conversion (a cross-border account's bank payout). An event stored before
    events kept their amount (None) was checked by nothing and is taken as it was then."""
    if amount_minor is None or currency is None:
        return True
    moved = (amount_minor, currency)
    if payout.received_currency is not None and moved == (
        payout.received_amount_minor,
        payout.received_currency,
    ):
        return True
    return moved == (payout.payout_amount_minor, payout.payout_currency)


@dataclass(frozen=True, slots=True)
class Folded:
    """What a payout's stored events say: its end, the fee a paid one reported, whether
    this delivery was a mismatch seen for the first time, and whether one is a failure."""

    status: PayoutStatus
    reason: str | None
    fee_minor: int
    new_mismatch: bool
    failed: bool  # one of them is a failure: the provider takes the money back first


@dataclass(frozen=True, slots=True)
class TransferPolicy:
    retry_after_s: int  # a processing payout without a transfer is asked for again after this
    max_attempts: int  # then an operator is told, and it stays processing (never paid twice)
    sweep_interval_s: float


def fold(
    kinds_and_reasons: list[tuple[TransferEventKind, str | None]],
) -> tuple[PayoutStatus, str | None]:
    """A payout's end from its transfer's events, in any order: a failure or reversal wins
    (with the first such reason), else paid, else still processing."""
    for kind, reason in kinds_and_reasons:
        if kind in (TransferEventKind.FAILED, TransferEventKind.REVERSED):
            return PayoutStatus.RETURNED, reason or kind.value
    if any(kind is TransferEventKind.PAID for kind, _ in kinds_and_reasons):
        return PayoutStatus.PAID, None
    return PayoutStatus.PROCESSING, None


class PayoutTransfers:
    def __init__(
        self,
        db: Engine,
        engine: PostingEngine,
        wallets: Wallets,
        payees: Payees,
        policy: TransferPolicy,
    ) -> None:
        self._db = db
        self._engine = engine
        self._wallets = wallets
        self._payees = payees
        self._policy = policy
        self._sweeps = PeriodicTask(
            "payout-sweep", self._sweep_round, Schedule(policy.sweep_interval_s)
        )
        self._finish_approvals: Callable[[int], Awaitable[int]] | None = None

    def finish_approvals_with(self, finish: Callable[[int], Awaitable[int]]) -> None:
        """Each sweep first finishes the approvals a crash left unrecorded (``finish`` of a
        moment: Payouts.finish_interrupted), so that they are sent like the others."""
        self._finish_approvals = finish

    @property
    def provider(self) -> PayoutProvider:
        return self._payees.provider

    async def send(self, payout_id: str) -> Payout:
        """Create the provider's transfer of a processing payout (again: the same key)."""
        payout = await asyncio.to_thread(self._get, payout_id)
        if payout.status is not PayoutStatus.PROCESSING or payout.provider_transfer_id:
            return payout
        payee = await self._payees.get(payout.creator_id)
        not_ready = None
        if payee is None or payee.state is not PayeeState.VERIFIED:
            not_ready = f"{PAYEE_NOT_READY}:{'none' if payee is None else payee.state.value}"
            # Never asked: nothing stands at the provider. Asked without an answer: a transfer
            # may, so the provider is asked once more with the same key, and its refusal
            # (having taken back whatever it made) returns the payout.
            if payee is None or payout.transfer_attempts == 0:
                return await self.give_back(payout_id, not_ready)
        try:
            payout = await asyncio.to_thread(self._fix_amount, payout, payee.transfer_currency)
        except FxRateMissing:
            return await self.give_back(payout_id, f"{FX_RATE_MISSING}:{payee.currency}")
        assert payout.payout_amount_minor is not None
        assert payout.payout_currency is not None
        attempt = await asyncio.to_thread(self._count_attempt, payout_id)
        converted = payee.currency if payee.currency != payout.payout_currency else None
        request = TransferRequest(
            payout.id,
            payee.account_id,
            payout.payout_amount_minor,
            payout.payout_currency,
            payee_currency=converted,
        )
        try:
            made = await self.provider.create_transfer(request)
        except ProviderTimeout as exc:
            audit(
                "audit.payout_transfer_unknown",
                payout_id=payout.id,
                creator_id=payout.creator_id,
                attempt=attempt,
                reason=exc.code,
            )
            return await asyncio.to_thread(self._get, payout_id)
        except ProviderUnavailable as exc:
            return await self.give_back(payout_id, not_ready or exc.code)
        await asyncio.to_thread(self._keep_transfer, payout_id, made)
        audit(
            "audit.payout_transfer_created",
            payout_id=payout.id,
            creator_id=payout.creator_id,
            provider=self.provider.name,
            transfer_id=made.transfer_id,
            amount_cents=payout.amount_minor,
            amount_minor=payout.payout_amount_minor,
            currency=payout.payout_currency,
            fx_rate_micros=payout.fx_rate_micros,
            received_amount_minor=made.received_amount_minor,
            received_currency=made.received_currency,
            provider_fx_rate_micros=made.fx_rate_micros,
            attempt=attempt,
        )
        return await asyncio.to_thread(self._get, payout_id)

    async def handle_event(self, event: TransferEvent) -> None:
        """Store a verified transfer event (once) and bring its payout to its end."""
        if len(event.payout_id) > PAYOUT_ID_MAX_CHARS:
            raise Invalid(Code.MALFORMED_WEBHOOK, "the event's payout id is too long")
        found = await asyncio.to_thread(self._store_and_fold, event)
        if found is None:
            log.warning("payout webhook %s names no payout of ours", event.event_id)
            return
        payout, folded = found
        if folded.new_mismatch:
            self._report_mismatch(payout, event)
        if folded.fee_minor > 0:
            await self._post_fee(payout, folded.fee_minor)
        if folded.status is PayoutStatus.RETURNED:
            # After a failure the money first, then the diamonds: also when a later event
            # (a late "paid") is the one that gets here, the failure's take-back having
            # been refused before.
            if folded.failed and payout.status is not PayoutStatus.RETURNED:
                await self._take_back(event)
            await self.give_back(payout.id, folded.reason or "returned")
        elif folded.status is PayoutStatus.PAID:
            await asyncio.to_thread(self._mark_paid, payout)

    async def _take_back(self, event: TransferEvent) -> None:
        try:
            await self.provider.take_back(event)
        except ProviderUnavailable as exc:
            # Answered 503: the provider delivers the event again, and this is tried again.
            log.error("payout %s: the money could not be taken back: %s", event.payout_id, exc)
            detail = f"the payout's money could not be taken back: {exc.detail}"
            raise Unavailable(exc.code, detail) from exc
        audit(
            "audit.payout_taken_back",
            payout_id=event.payout_id,
            provider=event.provider,
            transfer_id=event.transfer_id,
            event_id=event.event_id,
        )

    def _report_mismatch(self, payout: Payout, event: TransferEvent) -> None:
        PAYOUT_TRANSFER_MISMATCHES.inc()
        log.error(
            "payout %s: the provider's %s event %s moved %d %s, the payout sent %s %s; "
            "it is not acted on, an operator must check it at the provider",
            payout.id,
            event.kind.value,
            event.event_id,
            event.amount_minor,
            event.currency,
            payout.payout_amount_minor,
            payout.payout_currency,
        )
        audit(
            "audit.payout_transfer_mismatch",
            payout_id=payout.id,
            creator_id=payout.creator_id,
            event_id=event.event_id,
            kind=event.kind.value,
            transfer_id=event.transfer_id,
            amount_minor=event.amount_minor,
            currency=event.currency,
            expected_amount_minor=payout.payout_amount_minor,
            expected_currency=payout.payout_currency,
        )

    async def _post_fee(self, payout: Payout, fee_minor: int) -> None:
        """The provider's fee for the payout's transfer, in the ledger once: the platform's
        expense, paid from its balance at the provider."""
        currency = payout.payout_currency
        assert currency is not None, "a transfer was made: its currency was fixed first"
        assert payout.provider is not None
        fees = await asyncio.to_thread(self._wallets.payout_fees, currency)
        balance = await asyncio.to_thread(self._wallets.payout_provider, payout.provider, currency)
        (outcome,) = await self._engine.submit(
            [Transfer(fee_id(payout.id), fees, balance, fee_minor, TransferCode.FEE)]
        )
        if not outcome.succeeded:
            # Another fee than the one posted (a provider changing its bill) or a busy ledger:
            # the webhook is answered with an error and delivered again.
            log.error("the fee of payout %s was refused: %s", payout.id, outcome.value)
            raise Unavailable(Code.LEDGER_BUSY, f"the ledger refused the fee: {outcome.value}")
        await asyncio.to_thread(self._keep_fee, payout.id, fee_minor)
        if outcome is Outcome.OK:
            audit(
                "audit.payout_fee",
                payout_id=payout.id,
                provider=payout.provider,
                fee_minor=fee_minor,
                currency=currency,
                transfer_id=fee_id(payout.id),
            )

    def _keep_fee(self, payout_id: str, fee_minor: int) -> None:
        with self._db.begin() as conn:
            conn.execute(
                update(payouts)
                .where(payouts.c.id == payout_id, payouts.c.fee_minor.is_(None))
                .values(fee_minor=fee_minor)
            )

    def _store_and_fold(self, event: TransferEvent) -> tuple[Payout, Folded] | None:
        """The payout (as it was) and what its stored events say."""
        with self._db.begin() as conn:
            payout = find_payout(conn, event.payout_id)
            if payout is None or payout.provider != event.provider:
                return None
            # False for a redelivery: stored already; folding again changes nothing.
            stored = insert_new(
                conn,
                insert(payout_events).values(
                    provider=event.provider,
                    event_id=event.event_id,
                    payout_id=event.payout_id,
                    kind=event.kind.value,
                    transfer_id=event.transfer_id,
                    reason=None if event.reason is None else event.reason[:255],
                    received_at_us=now_us(),
                    amount_minor=event.amount_minor,
                    currency=event.currency,
                    fee_minor=event.fee_minor,
                ),
            )
            mismatch = not matches(payout, event.amount_minor, event.currency)
            if mismatch:
                conn.execute(
                    update(payouts)
                    .where(payouts.c.id == payout.id, payouts.c.flag.is_(None))
                    .values(flag=f"{TRANSFER_MISMATCH}:{event.event_id}"[:REASON_MAX_CHARS])
                )
            if not mismatch:
                # The transfer's id, when its webhook came before the answer to its creation.
                conn.execute(
                    update(payouts)
                    .where(payouts.c.id == payout.id, payouts.c.provider_transfer_id.is_(None))
                    .values(provider_transfer_id=event.transfer_id)
                )
            rows = conn.execute(
                select(payout_events)
                .where(
                    payout_events.c.provider == event.provider,
                    payout_events.c.payout_id == event.payout_id,
                )
                .order_by(payout_events.c.received_at_us, payout_events.c.event_id)
            ).all()
        # Only the events that moved what the payout sent decide its end and its fee.
        sound = [r for r in rows if matches(payout, r.amount_minor, r.currency)]
        status, reason = fold([(TransferEventKind(r.kind), r.reason) for r in sound])
        fee = max(
            (int(r.fee_minor or 0) for r in sound if r.kind == TransferEventKind.PAID.value),
            default=0,
        )
        failed = any(r.kind == TransferEventKind.FAILED.value for r in sound)
        return payout, Folded(status, reason, fee, mismatch and stored, failed)

    def _mark_paid(self, payout: Payout) -> None:
        with self._db.begin() as conn:
            done = conn.execute(
                update(payouts)
                .where(
                    payouts.c.id == payout.id,
                    payouts.c.status == PayoutStatus.PROCESSING.value,
                )
                .values(status=PayoutStatus.PAID.value)
            )
        if done.rowcount == 1:
            audit(
                "audit.payout_paid",
                payout_id=payout.id,
                creator_id=payout.creator_id,
                amount_minor=payout.amount_minor,
                currency=payout.currency,
            )

    async def give_back(self, payout_id: str, reason: str) -> Payout:
        """Return a processing (or paid, then reversed) payout: its diamonds back to the
        creator by a reversal of its post, once, and the payout ``returned`` with the reason."""
        payout = await asyncio.to_thread(self._get, payout_id)
        if payout.status not in (PayoutStatus.PROCESSING, PayoutStatus.PAID):
            return payout
        post_id = pending_id(payout.id) + POSTED_SUFFIX
        paid = await asyncio.to_thread(self._post_amount, post_id)
        mine = await asyncio.to_thread(self._wallets.user, payout.creator_id)
        pool = await asyncio.to_thread(self._wallets.platform, PAYOUTS, "DIAMOND")
        (outcome,) = await self._engine.submit(
            [
                Transfer(
                    return_id(payout.id),
                    pool,
                    mine.diamonds,
                    paid,
                    TransferCode.PAYOUT,
                    reverses_id=post_id,
                )
            ]
        )
        if not outcome.succeeded:
            # The provider sends its webhook again; the sweeper comes back to a processing one.
            log.error("the return of payout %s was refused: %s", payout.id, outcome.value)
            raise Unavailable(Code.LEDGER_BUSY, f"the ledger refused the return: {outcome.value}")
        fresh, changed = await asyncio.to_thread(self._mark_returned, payout.id, reason)
        if changed:
            audit(
                "audit.payout_returned",
                payout_id=payout.id,
                creator_id=payout.creator_id,
                diamonds=paid,
                reason=reason,
                transfer_id=return_id(payout.id),
            )
        return fresh

    def _post_amount(self, post_id: str) -> int:
        with self._db.connect() as conn:
            amounts = transfer_amounts(conn, [post_id])
        assert post_id in amounts, "a processing payout's reservation was posted"
        return amounts[post_id]

    def _mark_returned(self, payout_id: str, reason: str) -> tuple[Payout, bool]:
        with self._db.begin() as conn:
            done = conn.execute(
                update(payouts)
                .where(
                    payouts.c.id == payout_id,
                    payouts.c.status.in_([PayoutStatus.PROCESSING.value, PayoutStatus.PAID.value]),
                )
                .values(
                    status=PayoutStatus.RETURNED.value,
                    provider_reason=reason[:255],
                    returned_at_us=now_us(),
                )
            )
            payout = find_payout(conn, payout_id)
        assert payout is not None
        return payout, done.rowcount == 1

    def _fix_amount(self, payout: Payout, currency: str) -> Payout:
        """What the payee is sent, fixed once before the first attempt: every retry sends
        the same, whatever the rates say later."""
        if payout.payout_amount_minor is not None:
            return payout
        amount, rate = self._payees.fx.quote(payout.amount_minor, currency)
        with self._db.begin() as conn:
            conn.execute(
                update(payouts)
                .where(payouts.c.id == payout.id, payouts.c.payout_amount_minor.is_(None))
                .values(payout_currency=currency, payout_amount_minor=amount, fx_rate_micros=rate)
            )
            fixed = find_payout(conn, payout.id)
        assert fixed is not None
        return fixed

    def _count_attempt(self, payout_id: str) -> int:
        with self._db.begin() as conn:
            conn.execute(
                update(payouts)
                .where(payouts.c.id == payout_id)
                .values(transfer_attempts=payouts.c.transfer_attempts + 1)
            )
            payout = find_payout(conn, payout_id)
        assert payout is not None
        return payout.transfer_attempts

    def _keep_transfer(self, payout_id: str, made: ProviderTransfer) -> None:
        """The transfer's id, and what the payee received after a conversion, once."""
        with self._db.begin() as conn:
            conn.execute(
                update(payouts)
                .where(payouts.c.id == payout_id, payouts.c.provider_transfer_id.is_(None))
                .values(
                    provider_transfer_id=made.transfer_id,
                    received_amount_minor=made.received_amount_minor,
                    received_currency=made.received_currency,
                    provider_fx_rate_micros=made.fx_rate_micros,
                )
            )

    def _get(self, payout_id: str) -> Payout:
        with self._db.connect() as conn:
            payout = find_payout(conn, payout_id)
        assert payout is not None, "the caller found it"
        return payout

    # --- the sweeper -----------------------------------------------------------------------

    async def sweep(self, now: int | None = None) -> int:
        """Ask the provider again for every processing payout that has no transfer yet (a
        timeout, a crash after the approval): the same key, so never paid twice. Answers how
        many were asked."""
        now = now_us() if now is None else now
        if self._finish_approvals is not None:
            try:
                await self._finish_approvals(now - self._policy.retry_after_s * 1_000_000)
            except Exception:  # the processing ones are still swept
                log.exception("the approvals a crash interrupted could not be finished")
        due = await asyncio.to_thread(self._due, now)
        for payout in due:
            if payout.transfer_attempts >= self._policy.max_attempts:
                log.error(
                    "payout %s: no answer from the provider after %d attempts; an operator "
                    "must check it there",
                    payout.id,
                    payout.transfer_attempts,
                )
                continue
            try:
                await self.send(payout.id)
            except Exception:  # one payout's trouble does not stop the others
                log.exception("payout %s: the transfer could not be sent", payout.id)
        return len(due)

    async def _sweep_round(self) -> None:
        await self.sweep()

    def _due(self, now: int) -> list[Payout]:
        before = now - self._policy.retry_after_s * 1_000_000
        with self._db.connect() as conn:
            rows = conn.execute(
                select(payouts.c.id)
                .where(
                    payouts.c.status == PayoutStatus.PROCESSING.value,
                    payouts.c.provider_transfer_id.is_(None),
                    payouts.c.processing_since_us <= before,
                )
                .order_by(payouts.c.processing_since_us)
                .limit(SWEEP_BATCH)
            ).all()
            found = [find_payout(conn, r.id) for r in rows]
        return [p for p in found if p is not None]

    def start(self) -> None:
        self._sweeps.start()

    async def stop(self) -> None:
        await self._sweeps.stop()
