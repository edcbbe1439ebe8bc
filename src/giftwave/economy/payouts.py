"""Creators cash out diamonds: a pending (two-phase) transfer an operator approves or rejects.

    request  ─► pending transfer creator:diamonds → platform:payouts (reserved, not spendable)
    approve  ─► post it          (by an admin who is not the creator)
    reject   ─► void it          (the diamonds are the creator's again)
    no review within the timeout ─► the ledger's expiry voids it

With a payout provider (economy/payees.py, economy/payout_transfers.py) only a creator whose
payee account is verified may ask, and an approved payout is ``processing`` until the
provider's transfer is ``paid`` or ``returned`` (its diamonds given back).

A diamond debt (a gift reversed after its diamonds were paid out or reserved) is settled from
the diamonds first: at a request from the unreserved diamonds, at an approval from them and
then from the reservation, in the same linked chain as the post (``plan_approval``).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Final

from sqlalchemy import Connection, Engine, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from giftwave.clock import day_start_us, now_us
from giftwave.db.tables import payouts, transfers, users
from giftwave.economy import payout_decisions
from giftwave.economy.diamond_fractions import DiamondFractions
from giftwave.economy.payout_decisions import POLICY, PayoutDecision
from giftwave.economy.payout_policy import AutoApproval, decide
from giftwave.economy.rounding import min_payout_diamonds, quote
from giftwave.economy.wallets import PAYOUTS, Wallets
from giftwave.errors import (
    Code,
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    PaymentRequired,
    Unavailable,
)
from giftwave.identity.permissions import require_creator
from giftwave.identity.users import AgeRule, Role, User
from giftwave.ledger.accounts import find_account
from giftwave.ledger.annex import PAYOUT_PENDING_PREFIX
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.model import Account, Outcome, Transfer, TransferCode, TransferKind
from giftwave.ledger.queries import transfer_amounts, transfer_kinds_for_pending
from giftwave.logs import audit

if TYPE_CHECKING:
    from giftwave.economy.payees import Payees

log = logging.getLogger(__name__)

KEY_RE: Final = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
MICROS_PER_CENT: Final = 10_000
# Plans of a debt settlement or an approval: each is made from balances read before it is
# submitted, so a concurrent gift, reversal or payout can make the ledger refuse it; it is
# planned again from fresh balances, this many times at most.
LEDGER_ATTEMPTS: Final = 5
# What resolved a payout's reservation, as the suffix of the resolving transfer's id.
POSTED_SUFFIX: Final = ":post"  # approved: the paid part posted
REJECTED_SUFFIX: Final = ":void"  # rejected by an admin
SETTLED_SUFFIX: Final = ":settled"  # approved, but the debt took every diamond: voided
# After the post's id: the ledger reversal that gave a returned payout's diamonds back.
RETURNED_SUFFIX: Final = ":returned"


class PayoutStatus(enum.StrEnum):
    REQUESTED = "requested"  # recorded, reservation not yet confirmed by the ledger
    PENDING = "pending"  # diamonds reserved, waiting for review
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    FAILED = "failed"  # the reservation was refused (not enough diamonds)
    # Through a payout provider: approved and posted, the provider's transfer not ended yet;
    # then paid, or returned (the transfer failed or was reversed: the diamonds came back).
    PROCESSING = "processing"
    PAID = "paid"
    RETURNED = "returned"


# An approval already sent to the provider: approving again answers it as it is.
SENT: Final = (PayoutStatus.PROCESSING, PayoutStatus.PAID, PayoutStatus.RETURNED)
# Approvals a crash interrupted, finished per sweep round, at most.
INTERRUPTED_BATCH: Final = 100
INTERRUPTED_NOTE: Final = "approved before a restart; finished by the sweeper"


@dataclass(frozen=True, slots=True)
class PayoutPolicy:
    min_cents: int
    daily_cap_cents: int
    review_timeout_s: int
    diamond_value_usd_micros: int
    age_rule: AgeRule
    # Which payouts are approved without a person (economy/payout_policy.py): off by default.
    auto: AutoApproval = field(default_factory=lambda: AutoApproval(0, 0, 0))

    def cents_for(self, diamonds: int) -> int:
        """The cents a payout of ``diamonds`` pays: only whole steps count (``quote``)."""
        return quote(diamonds, self.diamond_value_usd_micros)[1]

    def quote(self, diamonds: int) -> tuple[int, int]:
        """(diamonds reserved, cents) for a request: exactly worth each other; the rest of
        the request stays in the balance (economy/rounding.py)."""
        return quote(diamonds, self.diamond_value_usd_micros)

    @property
    def min_diamonds(self) -> int:
        """The fewest diamonds a payout may ask for: the first worth ``min_cents``."""
        return min_payout_diamonds(self.min_cents, self.diamond_value_usd_micros)


@dataclass(frozen=True, slots=True)
class Payout:
    id: str
    creator_id: int
    diamonds: int
    amount_minor: int
    currency: str
    status: PayoutStatus
    requested_at_us: int
    expires_at_us: int
    reviewed_by: int | None
    reviewed_at_us: int | None
    note: str | None
    provider: str | None
    provider_transfer_id: str | None
    provider_reason: str | None  # why the provider's transfer failed or was reversed
    transfer_attempts: int
    # What the payee is sent: their currency, its amount, the rate (US dollar → it, millionths).
    payout_currency: str | None
    payout_amount_minor: int | None
    fx_rate_micros: int | None
    # The provider's fee for the paid transfer (in payout_currency), and why an operator must
    # look at the payout: a transfer event that does not match it (economy/payout_transfers.py).
    fee_minor: int | None
    flag: str | None
    # What a payee the provider converts for received (their account's currency, the
    # provider's rate, sent → received in millionths); None: they received what was sent.
    received_amount_minor: int | None
    received_currency: str | None
    provider_fx_rate_micros: int | None


def _to_payout(row: object) -> Payout:
    m = row._mapping  # type: ignore[attr-defined]
    return Payout(
        id=m["id"],
        creator_id=int(m["creator_id"]),
        diamonds=int(m["diamonds"]),
        amount_minor=int(m["amount_minor"]),
        currency=m["currency"],
        status=PayoutStatus(m["status"]),
        requested_at_us=int(m["requested_at_us"]),
        expires_at_us=int(m["expires_at_us"]),
        reviewed_by=m["reviewed_by"],
        reviewed_at_us=m["reviewed_at_us"],
        note=m["note"],
        provider=m["provider"],
        provider_transfer_id=m["provider_transfer_id"],
        provider_reason=m["provider_reason"],
        transfer_attempts=int(m["transfer_attempts"]),
        payout_currency=m["payout_currency"],
        payout_amount_minor=m["payout_amount_minor"],
        fx_rate_micros=m["fx_rate_micros"],
        fee_minor=m["fee_minor"],
        flag=m["flag"],
        received_amount_minor=m["received_amount_minor"],
        received_currency=m["received_currency"],
        provider_fx_rate_micros=m["provider_fx_rate_micros"],
    )


def find_payout(conn: Connection, payout_id: str) -> Payout | None:
    if not 0 < len(payout_id) <= 40:
        return None
    row = conn.execute(select(payouts).where(payouts.c.id == payout_id)).first()
    return None if row is None else _to_payout(row)


def pending_id(payout_id: str) -> str:
    # The ledger's expiry recognises a payout's reservation by this prefix (ledger/annex.py).
    return PAYOUT_PENDING_PREFIX + payout_id


def debt_settlement_id(creator_id: int, debt: Account) -> str:
    """The id of a settlement planned from this state of the debt account.

    Every settlement credits the debt account, so two plans made from the same state (a
    request and an approval at once) get the same id: the ledger commits one of them and the
    other, refused or a replay, never settles the same debt twice.
    """
    return f"settle:{creator_id}:{debt.credits_posted}"


@dataclass(frozen=True, slots=True)
class Approval:
    """What approving a payout moves: the debt settled first, then what is left is paid."""

    settle_diamonds: int  # creator:diamonds → creator:diamond_debt
    paid_diamonds: int  # posted from the reservation; 0: the reservation is voided

    @property
    def paid(self) -> bool:
        return self.paid_diamonds > 0


def plan_approval(
    policy: PayoutPolicy, reserved_diamonds: int, debt_diamonds: int, unreserved_diamonds: int
) -> Approval:
    """Settle a diamond debt before paying: from the diamonds not reserved first, then from
    the reservation; what the reservation has left is paid, as far as it is worth whole
    cents (``quote``: the few diamonds over stay the creator's). Nothing left worth a cent:
    the payout fails, and the debt is still settled."""
    assert reserved_diamonds > 0
    assert debt_diamonds >= 0
    unreserved = max(0, unreserved_diamonds)
    settle = min(debt_diamonds, unreserved + reserved_diamonds)
    paid, _ = policy.quote(reserved_diamonds - max(0, settle - unreserved))
    assert 0 <= paid <= reserved_diamonds
    assert 0 <= settle <= debt_diamonds
    return Approval(settle, paid)


class Payouts:
    def __init__(
        self,
        db: Engine,
        engine: PostingEngine,
        wallets: Wallets,
        policy: PayoutPolicy,
        fractions: DiamondFractions | None = None,
    ) -> None:
        self._db = db
        self._engine = engine
        self._wallets = wallets
        self._policy = policy
        # Settles a creator's hundredths of a diamond before a request reads the balance.
        self._fractions = fractions or DiamondFractions(db, engine, wallets)
        self._payees: Payees | None = None
        self._send: Callable[[str], Awaitable[Payout]] | None = None

    @property
    def policy(self) -> PayoutPolicy:
        return self._policy

    def use_provider(self, payees: Payees, send: Callable[[str], Awaitable[Payout]]) -> None:
        """Pay through a payout provider: requests need a verified payee, and an approval
        is ``send``'s to turn into the provider's transfer (economy/payout_transfers.py)."""
        self._payees = payees
        self._send = send

    async def request(self, creator: User, diamonds: int, key: str, today: date) -> Payout:
        if not KEY_RE.fullmatch(key):
            raise Invalid(
                Code.INVALID_IDEMPOTENCY_KEY, "an idempotency key is 1-64 of A-Za-z0-9_.:-"
            )
        require_creator(creator, "request payouts")
        if creator.blocked:
            raise Forbidden(Code.ACCOUNT_BLOCKED, "this account is blocked")
        if not self._policy.age_rule.allows(creator, today):
            raise Forbidden(Code.UNDER_AGE, "payouts need the creator to be of age")
        if self._payees is not None:
            await self._payees.require_ready(creator.id)
        # Only diamonds worth whole cents are reserved; the rest of the request stays in the
        # balance, so no fraction of a cent is ever lost to a payout.
        diamonds, cents = self._policy.quote(diamonds)
        if diamonds <= 0 or cents < self._policy.min_cents:
            raise Invalid(
                Code.PAYOUT_BELOW_MINIMUM,
                f"the minimum payout is {self._policy.min_cents / 100:,.2f} USD",
                min_cents=self._policy.min_cents,
            )
        # Whole diamonds still in hundredths are the creator's: carried out before the debt is
        # settled and the reservation made (economy/diamond_fractions.py).
        await self._fractions.settle(creator.id)
        await self._settle_debt(creator.id)
        payout, auto, decided = await asyncio.to_thread(
            self._record, creator, diamonds, cents, key, today
        )
        if decided is not None:
            payout_decisions.audit_decision(decided)
        if payout.status is PayoutStatus.PENDING and auto:
            # A retry of a request the policy approved, whose approval did not finish: it is
            # carried out now, not decided again.
            return await self._auto_approve(payout)
        if payout.status not in (PayoutStatus.REQUESTED, PayoutStatus.FAILED):
            return payout
        reserved, outcome = await self._reserve(payout, auto)
        if outcome.succeeded:
            return reserved
        if outcome is Outcome.INSUFFICIENT_FUNDS:
            raise PaymentRequired(Code.INSUFFICIENT_DIAMONDS, "not enough diamonds for this payout")
        raise Conflict(Code.PAYOUT_REFUSED, f"the ledger refused the payout: {outcome.value}")

    async def _reserve(self, payout: Payout, auto: bool) -> tuple[Payout, Outcome]:
        """The payout's reservation, then its row marked: ``pending`` (the policy's approval
        carried out when it approved), or ``failed`` with the ledger's refusal. The
        reservation's id is the payout's, so a second submission (a retry, the sweeper after a
        crash) is a replay: the diamonds are reserved once. Each mark applies to a row still
        ``requested`` only (``_set``), so it happens once too."""
        mine = await asyncio.to_thread(self._wallets.user, payout.creator_id)
        pool = await asyncio.to_thread(self._wallets.platform, PAYOUTS, "DIAMOND")
        (outcome,) = await self._engine.submit(
            [
                Transfer(
                    pending_id(payout.id),
                    mine.diamonds,
                    pool,
                    payout.diamonds,
                    TransferCode.PAYOUT,
                    kind=TransferKind.PENDING,
                    timeout_s=self._policy.review_timeout_s,
                )
            ]
        )
        if not outcome.succeeded:
            failed = await asyncio.to_thread(
                self._set, payout.id, PayoutStatus.FAILED, None, outcome.value
            )
            return failed, outcome
        if outcome is Outcome.OK:  # not a replay of a reservation made before
            audit(
                "audit.payout_requested",
                payout_id=payout.id,
                creator_id=payout.creator_id,
                diamonds=payout.diamonds,
                amount_cents=payout.amount_minor,
                currency=payout.currency,
                transfer_id=pending_id(payout.id),
            )
        pending = await asyncio.to_thread(self._set, payout.id, PayoutStatus.PENDING, None, None)
        if auto and pending.status is PayoutStatus.PENDING:
            return await self._auto_approve(pending), outcome
        return pending, outcome

    async def finish_requests(self, before_us: int) -> int:
        """Finish every request a crash left ``requested`` since before ``before_us``: the
        row and the policy's decision were written, but the process died before the ledger
        made the reservation, or after and before the row said ``pending``. Either way the
        reservation is submitted again under its own id (``_reserve``): made now, or a replay
        of the one made then; the row turns ``pending`` (and a policy's approval is carried
        out), or ``failed`` when the ledger refuses it now (the diamonds were spent since).
        Answers how many were found."""
        found = await asyncio.to_thread(self._stuck_requests, before_us)
        for payout in found:
            auto = await asyncio.to_thread(self._policy_approved, payout.id)
            await self._reserve(payout, auto)
        return len(found)

    def _stuck_requests(self, before_us: int) -> list[Payout]:
        with self._db.connect() as conn:
            rows = conn.execute(
                select(payouts)
                .where(
                    payouts.c.status == PayoutStatus.REQUESTED.value,
                    payouts.c.requested_at_us <= before_us,
                )
                .order_by(payouts.c.requested_at_us)
                .limit(INTERRUPTED_BATCH)
            ).all()
        return [_to_payout(r) for r in rows]

    async def _auto_approve(self, payout: Payout) -> Payout:
        """Carry out the policy's approval. If the ledger refuses it now (the balance kept
        changing, the reservation expired), the payout is left as it is: in the review queue,
        and a retry of the request with the same key tries again."""
        try:
            return await self._approve(payout, None, "approved by the payout policy", POLICY)
        except DomainError as exc:
            log.warning("payout %s: the policy's approval did not finish: %s", payout.id, exc)
            return await self.get(payout.id)

    async def _settle_debt(self, creator_id: int) -> None:
        mine = await asyncio.to_thread(self._wallets.user, creator_id)
        for _ in range(LEDGER_ATTEMPTS):
            diamonds, debt = await asyncio.to_thread(
                self._wallets.accounts, [mine.diamonds, mine.diamond_debt]
            )
            owed = min(max(0, -debt.balance), max(0, diamonds.available))
            if owed > 0:
                settle_id = debt_settlement_id(creator_id, debt)
                (outcome,) = await self._engine.submit(
                    [
                        Transfer(
                            settle_id,
                            mine.diamonds,
                            mine.diamond_debt,
                            owed,
                            TransferCode.ADJUSTMENT,
                        )
                    ]
                )
                if not outcome.succeeded:
                    continue  # the balances moved since they were read: read them again
                if outcome is Outcome.OK:  # not a replay of a settlement made before
                    audit(
                        "audit.debt_settled",
                        user_id=creator_id,
                        asset="DIAMOND",
                        diamonds=owed,
                        by="payout_request",
                        transfer_id=settle_id,
                    )
            if -debt.balance - owed > 0:
                raise Forbidden(
                    Code.DIAMOND_DEBT,
                    "a reversed gift left a diamond debt; new earnings settle it first",
                    debt_diamonds=-debt.balance - owed,
                )
            return
        raise Unavailable(Code.LEDGER_BUSY, "the creator's balance kept changing; retry")

    def _record(
        self, creator: User, diamonds: int, cents: int, key: str, today: date
    ) -> tuple[Payout, bool, PayoutDecision | None]:
        """The payout row and the policy's decision on it, in one transaction: (the payout,
        approved by the policy, the decision if this call made it). A retry with the same key
        answers the first decision and makes none."""
        now = now_us()
        with self._db.begin() as conn:
            # One creator's requests one at a time: the cap is read, then a payout written.
            # A no-op write to their user row is a row lock on PostgreSQL and takes the write
            # lock first on SQLite, so a concurrent request reads the day's total after us.
            conn.execute(
                update(users).where(users.c.id == creator.id).values(status=users.c.status)
            )
            prior = conn.execute(
                select(payouts).where(
                    payouts.c.creator_id == creator.id, payouts.c.idempotency_key == key
                )
            ).first()
            if prior is not None:
                payout = _to_payout(prior)
                if payout.diamonds != diamonds:
                    raise Conflict(
                        Code.IDEMPOTENCY_KEY_REUSED, "this key was used for another payout"
                    )
                first = payout_decisions.policy_decision(conn, payout.id)
                return payout, first is not None and first.outcome == "approve", None
            used = _cents_requested_on(conn, creator.id, today)
            if used + cents > self._policy.daily_cap_cents:
                raise Conflict(
                    Code.PAYOUT_DAILY_CAP,
                    f"payouts are capped at {self._policy.daily_cap_cents / 100:,.2f} USD a day",
                    cap_cents=self._policy.daily_cap_cents,
                    used_cents=used,
                )
            payout_id = "po_" + secrets.token_urlsafe(15)
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(payouts).values(
                            id=payout_id,
                            creator_id=creator.id,
                            idempotency_key=key,
                            diamonds=diamonds,
                            amount_minor=cents,
                            currency="USD",
                            status=PayoutStatus.REQUESTED.value,
                            requested_at_us=now,
                            expires_at_us=now + self._policy.review_timeout_s * 1_000_000,
                        )
                    )
            except IntegrityError:
                raise Conflict(
                    Code.PAYOUT_IN_PROGRESS, "the same request is being processed"
                ) from None
            decided = self._decide(conn, creator.id, payout_id, cents, now)
            return _get(conn, payout_id), decided.outcome == "approve", decided

    def _decide(
        self, conn: Connection, creator_id: int, payout_id: str, cents: int, now: int
    ) -> PayoutDecision:
        """The policy's decision on a new payout, written beside it (economy/payout_policy.py)."""
        debt = find_account(conn, f"user:{creator_id}:diamond_debt")
        debt_diamonds = 0 if debt is None else max(0, -debt.balance)
        rule = self._policy.auto
        facts = payout_decisions.read_facts(conn, rule, creator_id, cents, debt_diamonds, now)
        decision = decide(rule, facts)
        recorded = payout_decisions.record_policy(conn, payout_id, creator_id, decision, now)
        assert recorded, "a new payout has no decision yet"
        found = payout_decisions.policy_decision(conn, payout_id)
        assert found is not None
        return found

    async def review(
        self, payout_id: str, reviewer: User | None, approve: bool, note: str | None
    ) -> Payout:
        """Approve (post) or reject (void) a pending payout. ``reviewer`` None: the operator."""
        payout = await self.get(payout_id)
        if reviewer is not None and reviewer.id == payout.creator_id:
            raise Forbidden(Code.OWN_PAYOUT, "nobody can review their own payout")
        wanted = PayoutStatus.APPROVED if approve else PayoutStatus.REJECTED
        if payout.status is wanted or (approve and payout.status in SENT):
            return payout  # a repeated click: idempotent
        reviewer_id = None if reviewer is None else reviewer.id
        if approve and payout.status in (PayoutStatus.PENDING, PayoutStatus.FAILED):
            # FAILED too: an approval whose reservation went to a debt, clicked again, answers
            # the same (a payout refused at its request has no reservation: a conflict).
            return await self._approve(payout, reviewer_id, note)
        if payout.status is not PayoutStatus.PENDING:
            raise Conflict(Code.PAYOUT_NOT_PENDING, f"the payout is {payout.status.value}")
        pid = pending_id(payout.id)
        (outcome,) = await self._engine.submit(
            [
                Transfer(
                    pid + REJECTED_SUFFIX,
                    0,
                    0,
                    0,
                    TransferCode.PAYOUT,
                    kind=TransferKind.VOID_PENDING,
                    pending_id=pid,
                )
            ]
        )
        if outcome.succeeded:
            audit(
                "audit.payout_rejected",
                payout_id=payout.id,
                creator_id=payout.creator_id,
                diamonds=payout.diamonds,
                reviewer_id=reviewer_id,
                transfer_id=pid + REJECTED_SUFFIX,
            )
            return await asyncio.to_thread(self._set_rejected, payout, reviewer_id, note)
        if outcome is Outcome.PENDING_TRANSFER_EXPIRED or outcome in (
            Outcome.PENDING_TRANSFER_ALREADY_VOIDED,
            Outcome.PENDING_TRANSFER_ALREADY_POSTED,
        ):
            fresh = await self.get(payout_id)
            raise Conflict(Code.PAYOUT_NOT_PENDING, f"the payout is {fresh.status.value}")
        raise Conflict(Code.PAYOUT_REFUSED, f"the ledger refused: {outcome.value}")

    async def _approve(
        self, payout: Payout, reviewer_id: int | None, note: str | None, actor: str | None = None
    ) -> Payout:
        """Settle the creator's diamond debt and post the rest, in one linked chain: the
        reservation is posted in part (or voided) and the debt settled in one transaction,
        so no crash can pay diamonds that are owed or settle a debt without the post."""
        pid = pending_id(payout.id)
        mine = await asyncio.to_thread(self._wallets.user, payout.creator_id)
        for _ in range(LEDGER_ATTEMPTS):
            # The ledger first: an approval committed there before a crash (or by a concurrent
            # click) is finished, never planned again from balances it already changed.
            decided = await asyncio.to_thread(self._decision, pid)
            if decided is not None:
                return await self._finish(payout, decided, reviewer_id, note, actor)
            if payout.status is not PayoutStatus.PENDING:
                raise Conflict(Code.PAYOUT_NOT_PENDING, f"the payout is {payout.status.value}")
            if payout.expires_at_us <= now_us():  # a void would not be refused: we refuse
                raise Conflict(Code.PAYOUT_NOT_PENDING, "the payout is expired")
            diamonds, debt = await asyncio.to_thread(
                self._wallets.accounts, [mine.diamonds, mine.diamond_debt]
            )
            plan = plan_approval(self._policy, payout.diamonds, -debt.balance, diamonds.available)
            suffix = POSTED_SUFFIX if plan.paid else SETTLED_SUFFIX
            chain = [
                Transfer(
                    pid + suffix,
                    0,
                    0,
                    plan.paid_diamonds,
                    TransferCode.PAYOUT,
                    linked=plan.settle_diamonds > 0,
                    kind=TransferKind.POST_PENDING if plan.paid else TransferKind.VOID_PENDING,
                    pending_id=pid,
                )
            ]
            if plan.settle_diamonds > 0:
                chain.append(
                    Transfer(
                        debt_settlement_id(payout.creator_id, debt),
                        mine.diamonds,
                        mine.diamond_debt,
                        plan.settle_diamonds,
                        TransferCode.ADJUSTMENT,
                    )
                )
            outcomes = await self._engine.submit(chain)
            if all(o.succeeded for o in outcomes):
                self._audit_approval(payout, plan, chain, reviewer_id)
                return await self._finish(
                    payout, (suffix, plan.paid_diamonds), reviewer_id, note, actor
                )
            refused = next(o for o in outcomes if o is not Outcome.LINKED_EVENT_FAILED)
            if refused is Outcome.PENDING_TRANSFER_EXPIRED:
                raise Conflict(Code.PAYOUT_NOT_PENDING, "the payout is expired")
            if refused not in (
                Outcome.INSUFFICIENT_FUNDS,  # the balances moved since they were read
                Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS,  # a concurrent settlement won
                Outcome.PENDING_TRANSFER_ALREADY_POSTED,  # a concurrent approval won
                Outcome.PENDING_TRANSFER_ALREADY_VOIDED,  # a rejection or the expiry won
            ):
                raise Conflict(Code.PAYOUT_REFUSED, f"the ledger refused: {refused.value}")
        raise Unavailable(Code.LEDGER_BUSY, "the creator's balance kept changing; retry")

    def _audit_approval(
        self, payout: Payout, plan: Approval, chain: list[Transfer], reviewer_id: int | None
    ) -> None:
        audit(
            "audit.payout_approved",
            payout_id=payout.id,
            creator_id=payout.creator_id,
            diamonds=plan.paid_diamonds,
            amount_cents=self._policy.cents_for(plan.paid_diamonds),
            currency="USD",
            reviewer_id=reviewer_id,
            transfer_id=chain[0].id,
        )
        if plan.settle_diamonds > 0:
            audit(
                "audit.debt_settled",
                user_id=payout.creator_id,
                asset="DIAMOND",
                diamonds=plan.settle_diamonds,
                by="payout_approval",
                transfer_id=chain[-1].id,
            )

    def _decision(self, pid: str) -> tuple[str, int] | None:
        """What resolved the reservation, if anything: (the id's suffix, its amount)."""
        with self._db.connect() as conn:
            ids = [tid for tid, _ in transfer_kinds_for_pending(conn, pid)]
            if not ids:
                return None
            amounts = transfer_amounts(conn, ids)
        tid = ids[0]
        return tid.removeprefix(pid), amounts[tid]

    async def _finish(
        self,
        payout: Payout,
        decided: tuple[str, int],
        reviewer_id: int | None,
        note: str | None,
        actor: str | None,
    ) -> Payout:
        suffix, paid_diamonds = decided
        if suffix == SETTLED_SUFFIX and payout.status is PayoutStatus.FAILED:
            return payout  # a repeated click: idempotent
        if suffix == POSTED_SUFFIX:
            status, cents = PayoutStatus.APPROVED, self._policy.cents_for(paid_diamonds)
            if self._send is not None:
                status = PayoutStatus.PROCESSING
        elif suffix == SETTLED_SUFFIX:
            status, cents = PayoutStatus.FAILED, 0
            note = "the reserved diamonds settled a diamond debt; nothing was left to pay"
        else:
            fresh = await self.get(payout.id)  # rejected, or voided by the expiry
            raise Conflict(Code.PAYOUT_NOT_PENDING, f"the payout is {fresh.status.value}")
        recorded = await asyncio.to_thread(
            self._record_approval, payout, status, reviewer_id, note, cents, actor
        )
        if self._send is not None and recorded.status is PayoutStatus.PROCESSING:
            return await self._send(recorded.id)
        return recorded

    async def finish_interrupted(self, before_us: int) -> int:
        """Finish every request a crash left unmarked (``finish_requests``), then every
        approval a crash interrupted before ``before_us``: the ledger posted
        (or, for a debt, settled) the reservation, but the process died before the row said
        so, and no one would ever send it. The reviewer died with the process; the audit log
        has their approval. Answers how many were found."""
        requests = await self.finish_requests(before_us)
        found = await asyncio.to_thread(self._interrupted, before_us)
        for payout in found:
            decided = await asyncio.to_thread(self._decision, pending_id(payout.id))
            assert decided is not None, "found by its decision"
            # The policy's approval was recorded at the request; a person's is recorded now, as
            # the operator's with the note (the audit log names who clicked).
            actor = POLICY if await asyncio.to_thread(self._policy_approved, payout.id) else None
            await self._finish(payout, decided, None, INTERRUPTED_NOTE, actor)
        return requests + len(found)

    def _policy_approved(self, payout_id: str) -> bool:
        with self._db.connect() as conn:
            decided = payout_decisions.policy_decision(conn, payout_id)
        return decided is not None and decided.outcome == "approve"

    def _interrupted(self, before_us: int) -> list[Payout]:
        reservation = literal(PAYOUT_PENDING_PREFIX) + payouts.c.id
        decided = or_(
            transfers.c.id == reservation + POSTED_SUFFIX,
            transfers.c.id == reservation + SETTLED_SUFFIX,
        )
        with self._db.connect() as conn:
            rows = conn.execute(
                select(payouts)
                .join(transfers, decided)
                .where(
                    payouts.c.status.in_(
                        [PayoutStatus.REQUESTED.value, PayoutStatus.PENDING.value]
                    ),
                    transfers.c.created_at_us <= before_us,
                )
                .order_by(payouts.c.requested_at_us)
                .limit(INTERRUPTED_BATCH)
            ).all()
        return [_to_payout(r) for r in rows]

    def _record_approval(
        self,
        payout: Payout,
        status: PayoutStatus,
        reviewer: int | None,
        note: str | None,
        amount_minor: int,
        actor: str | None,
    ) -> Payout:
        """The row after the ledger committed an approval: what it paid, a settled debt less.
        A processing one names its provider and when it started: from then on, a crash before
        its transfer was made is the sweeper's to finish (economy/payout_transfers.py).
        A person's approval is recorded with it (the policy's was, at the request)."""
        payout_id = payout.id
        now = now_us()
        values: dict[str, object] = {"provider": None, "processing_since_us": None}
        if status is PayoutStatus.PROCESSING:
            assert self._payees is not None
            values = {"provider": self._payees.provider.name, "processing_since_us": now}
        with self._db.begin() as conn:
            conn.execute(
                update(payouts)
                .where(payouts.c.id == payout_id, payouts.c.status.not_in([s.value for s in SENT]))
                .values(
                    status=status.value,
                    amount_minor=amount_minor,
                    reviewed_by=reviewer,
                    reviewed_at_us=now,
                    note=note,
                    **values,
                )
            )
            decided = actor != POLICY and payout_decisions.record_person(
                conn, payout_id, payout.creator_id, reviewer, True, note, now
            )
            person = payout_decisions.decisions(conn, payout_id=payout_id, limit=1)
            fresh = _get(conn, payout_id)
        if decided:
            payout_decisions.audit_decision(person[0])
        return fresh

    async def get(self, payout_id: str) -> Payout:
        return await asyncio.to_thread(self._get_fresh, payout_id)

    async def get_for(self, payout_id: str, user: User, *, admin: bool) -> Payout:
        """A payout as ``user`` may see it: their own, any for an admin acting as themself;
        404 otherwise (what is not yours is not there)."""
        payout = await self.get(payout_id)
        if payout.creator_id != user.id and not admin:
            raise NotFound(Code.PAYOUT_NOT_FOUND, f"no payout {payout_id!r}")
        if user.role is Role.VIEWER and payout.creator_id != user.id:
            raise NotFound(Code.PAYOUT_NOT_FOUND, f"no payout {payout_id!r}")
        return payout

    async def find(
        self, *, creator_id: int | None = None, status: PayoutStatus | None = None, limit: int = 100
    ) -> list[Payout]:
        return await asyncio.to_thread(self._list, creator_id, status, limit)

    def _get_fresh(self, payout_id: str) -> Payout:
        with self._db.begin() as conn:
            if not 0 < len(payout_id) <= 40:
                raise NotFound(Code.PAYOUT_NOT_FOUND, f"no payout {payout_id!r}")
            return _get(conn, payout_id)

    def _list(
        self, creator_id: int | None, status: PayoutStatus | None, limit: int
    ) -> list[Payout]:
        with self._db.begin() as conn:
            query = select(payouts).order_by(payouts.c.requested_at_us.desc()).limit(limit)
            if creator_id is not None:
                query = query.where(payouts.c.creator_id == creator_id)
            if status is not None:
                query = query.where(payouts.c.status == status.value)
            # The ledger's expiry marks a payout expired in its void's transaction
            # (ledger/annex.py PAYOUT_EXPIRED): a row says what the ledger did, unread.
            return [_to_payout(r) for r in conn.execute(query).all()]

    def _set_rejected(self, payout: Payout, reviewer: int | None, note: str | None) -> Payout:
        """The row after the ledger voided a rejected reservation, and the person's decision."""
        now = now_us()
        with self._db.begin() as conn:
            conn.execute(
                update(payouts)
                .where(payouts.c.id == payout.id)
                .values(
                    status=PayoutStatus.REJECTED.value,
                    reviewed_by=reviewer,
                    reviewed_at_us=now,
                    note=note,
                )
            )
            decided = payout_decisions.record_person(
                conn, payout.id, payout.creator_id, reviewer, False, note, now
            )
            person = payout_decisions.decisions(conn, payout_id=payout.id, limit=1)
            fresh = _get(conn, payout.id)
        if decided:
            payout_decisions.audit_decision(person[0])
        return fresh

    def _set(
        self, payout_id: str, status: PayoutStatus, reviewer: int | None, note: str | None
    ) -> Payout:
        with self._db.begin() as conn:
            values: dict[str, object] = {"status": status.value}
            if status in (PayoutStatus.APPROVED, PayoutStatus.REJECTED):
                values.update(reviewed_by=reviewer, reviewed_at_us=now_us(), note=note)
            elif note is not None:
                values["note"] = note
            query = update(payouts).where(payouts.c.id == payout_id)
            if status in (PayoutStatus.PENDING, PayoutStatus.FAILED):
                # Only a "requested" row: the ledger's expiry may have voided the reservation
                # and marked the row expired already (ledger/annex.py), and it stays expired.
                query = query.where(payouts.c.status == PayoutStatus.REQUESTED.value)
            conn.execute(query.values(**values))
            return _get(conn, payout_id)


def _get(conn: Connection, payout_id: str) -> Payout:
    row = conn.execute(select(payouts).where(payouts.c.id == payout_id)).first()
    if row is None:
        raise NotFound(Code.PAYOUT_NOT_FOUND, f"no payout {payout_id!r}")
    return _to_payout(row)


def _cents_requested_on(conn: Connection, creator_id: int, day: date) -> int:
    start = day_start_us(day)
    total = conn.execute(
        select(func.coalesce(func.sum(payouts.c.amount_minor), 0)).where(
            payouts.c.creator_id == creator_id,
            payouts.c.requested_at_us >= start,
            payouts.c.requested_at_us < start + 86_400_000_000,
            payouts.c.status.in_(
                [
                    PayoutStatus.REQUESTED.value,
                    PayoutStatus.PENDING.value,
                    PayoutStatus.APPROVED.value,
                    PayoutStatus.PROCESSING.value,
                    PayoutStatus.PAID.value,
                ]
            ),
        )
    ).scalar_one()
    return int(total)


STATEMENT_PAYOUTS_MAX: Final = 200


def payouts_requested_between(
    conn: Connection, creator_id: int, start_us: int, end_us: int
) -> list[Payout]:
    """The creator's payouts requested in [start, end), newest first (at most 200)."""
    rows = conn.execute(
        select(payouts)
        .where(
            payouts.c.creator_id == creator_id,
            payouts.c.requested_at_us >= start_us,
            payouts.c.requested_at_us < end_us,
        )
        .order_by(payouts.c.requested_at_us.desc(), payouts.c.id)
        .limit(STATEMENT_PAYOUTS_MAX)
    ).all()
    return [_to_payout(r) for r in rows]


def payout_totals(conn: Connection, creator_id: int) -> dict[str, int]:
    """Diamonds and cents per status, for the statement."""
    rows = conn.execute(
        select(payouts.c.status, func.sum(payouts.c.diamonds), func.sum(payouts.c.amount_minor))
        .where(payouts.c.creator_id == creator_id)
        .group_by(payouts.c.status)
    ).all()
    totals: dict[str, int] = {}
    for status, diamonds, cents in rows:
        totals[f"{status}_diamonds"] = int(diamonds)
        totals[f"{status}_cents"] = int(cents)
    return totals
