"""Plans one batch of submissions in memory: every rule of the ledger, no I/O.

The store loads what the batch touches (accounts, transfers the ids collide with, pending
transfers referenced), the planner decides each transfer's outcome in submission order and
returns the rows to insert and one balance delta per account. Keeping this pure means both
backends share one set of rules and the rules are testable without a database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from giftwave.ledger.model import (
    AMOUNT_MAX,
    CODES_ALLOWED_WHEN_FROZEN,
    TRANSFER_ID_RE,
    AccountFlags,
    Outcome,
    StoredTransfer,
    Transfer,
    TransferCode,
    TransferKind,
)

INT64_MAX: Final = 2**63 - 1
TIMEOUT_MAX_S: Final = 366 * 24 * 3600
_CODES: Final = frozenset(TransferCode)
_POSTED: Final = TransferKind.POSTED
_PENDING: Final = TransferKind.PENDING
_POST: Final = TransferKind.POST_PENDING
_VOID: Final = TransferKind.VOID_PENDING
_NO_OVERDRAFT: Final = int(AccountFlags.NO_OVERDRAFT)
_FROZEN: Final = int(AccountFlags.FROZEN)
_fullmatch = TRANSFER_ID_RE.fullmatch

# A row as inserted: the fields of StoredTransfer, as a plain tuple so that the hash chain can
# serialize it in one call and recompute it from what the database returns.
Row = tuple[
    int, str, int, int, int, str, str, str, str | None, str | None, int, int | None, int, int
]


class AccountState:
    """An account's balances as the batch sees them, and as they were when loaded."""

    __slots__ = ("asset", "cp", "cpo", "dp", "dpo", "flags", "id", "loaded")

    def __init__(self, id: int, asset: str, flags: int, dp: int, dpo: int, cp: int, cpo: int):
        self.id = id
        self.asset = asset
        self.flags = flags
        self.dp = dp  # debits pending
        self.dpo = dpo  # debits posted
        self.cp = cp  # credits pending
        self.cpo = cpo  # credits posted
        self.loaded = (dp, dpo, cp, cpo)


# (account id, Δ debits_pending, Δ debits_posted, Δ credits_pending, Δ credits_posted)
AccountDelta = tuple[int, int, int, int, int]


@dataclass(slots=True)
class BatchPlan:
    rows: list[Row]
    deltas: list[AccountDelta]  # ordered by account id: rows are always touched in that order
    results: list[list[Outcome]]


def plan_batch(
    requests: Sequence[Sequence[Transfer]],
    accounts: Mapping[int, AccountState],
    existing: Mapping[str, StoredTransfer],
    resolutions: Mapping[str, str],
    *,
    first_seq: int,
    batch_seq: int,
    now_us: int,
) -> BatchPlan:
    """Decide every transfer of every submission, in order, against the loaded state."""
    planner = _Planner(accounts, existing, resolutions, first_seq, batch_seq, now_us)
    results = [planner.submit(request) for request in requests]
    return BatchPlan(planner.rows, planner.deltas(), results)


class _Planner:
    def __init__(
        self,
        accounts: Mapping[int, AccountState],
        existing: Mapping[str, StoredTransfer],
        resolutions: Mapping[str, str],
        first_seq: int,
        batch_seq: int,
        now_us: int,
    ) -> None:
        self.accounts = accounts
        self.existing = existing
        self.resolutions = resolutions
        self.first_seq = first_seq
        self.batch_seq = batch_seq
        self.now_us = now_us
        self.rows: list[Row] = []
        self.in_batch: dict[str, StoredTransfer] = {}
        self.in_batch_resolutions: dict[str, str] = {}
        self.touched: dict[int, AccountState] = {}
        # (account, dp, dpo, cp, cpo) before a change: lets a failed linked chain roll back.
        self.undo: list[tuple[AccountState, int, int, int, int]] = []

    def submit(self, transfers: Sequence[Transfer]) -> list[Outcome]:
        count = len(transfers)
        out = [Outcome.LINKED_EVENT_FAILED] * count
        start = 0
        while start < count:
            end = start
            while end < count and transfers[end].linked:
                end += 1
            if end == count:  # the last transfer still links onwards: nothing closes the chain
                out[count - 1] = Outcome.LINKED_EVENT_CHAIN_OPEN
                break
            self._chain(transfers, start, end, out)
            start = end + 1
        return out

    def _chain(
        self, transfers: Sequence[Transfer], start: int, end: int, out: list[Outcome]
    ) -> None:
        mark_rows, mark_undo = len(self.rows), len(self.undo)
        for index in range(start, end + 1):
            outcome = self._apply(transfers[index])
            if not outcome.succeeded:
                self._rollback(mark_rows, mark_undo)
                for other in range(start, end + 1):
                    out[other] = Outcome.LINKED_EVENT_FAILED
                out[index] = outcome
                return
            out[index] = outcome

    def _rollback(self, mark_rows: int, mark_undo: int) -> None:
        for row in self.rows[mark_rows:]:
            del self.in_batch[row[1]]
            if row[8] is not None:
                self.in_batch_resolutions.pop(row[8], None)
        del self.rows[mark_rows:]
        while len(self.undo) > mark_undo:
            account, dp, dpo, cp, cpo = self.undo.pop()
            account.dp, account.dpo, account.cp, account.cpo = dp, dpo, cp, cpo

    def _apply(self, t: Transfer) -> Outcome:
        tid = t.id
        if tid.__class__ is not str or _fullmatch(tid) is None:
            return Outcome.INVALID_ID
        prior = self.in_batch.get(tid) or self.existing.get(tid)
        if prior is not None:
            return (
                Outcome.EXISTS
                if _same_fields(prior, t)
                else Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS
            )
        if t.code not in _CODES:
            return Outcome.INVALID_CODE
        if (
            t.reverses_id is not None
            and (self.in_batch.get(t.reverses_id) or self.existing.get(t.reverses_id)) is None
        ):
            return Outcome.REVERSED_TRANSFER_NOT_FOUND
        kind = t.kind
        if kind in (_POSTED, _PENDING):
            return self._apply_new(t)
        if kind in (_POST, _VOID):
            return self._apply_resolution(t)
        return Outcome.INVALID_KIND

    def _apply_new(self, t: Transfer) -> Outcome:
        amount = t.amount
        if amount.__class__ is not int or amount <= 0:
            return Outcome.AMOUNT_MUST_BE_POSITIVE
        if amount > AMOUNT_MAX:
            return Outcome.AMOUNT_TOO_LARGE
        if t.pending_id is not None:
            return Outcome.PENDING_ID_MUST_BE_BLANK
        pending = t.kind == _PENDING
        timeout_s = t.timeout_s
        if timeout_s.__class__ is not int or not 0 <= timeout_s <= TIMEOUT_MAX_S:
            return Outcome.INVALID_TIMEOUT
        if timeout_s and not pending:
            return Outcome.TIMEOUT_REQUIRES_PENDING
        if t.debit_account_id == t.credit_account_id:
            return Outcome.ACCOUNTS_MUST_BE_DIFFERENT
        debit = self.accounts.get(t.debit_account_id)
        if debit is None:
            return Outcome.DEBIT_ACCOUNT_NOT_FOUND
        credit = self.accounts.get(t.credit_account_id)
        if credit is None:
            return Outcome.CREDIT_ACCOUNT_NOT_FOUND
        if debit.asset != credit.asset:
            return Outcome.ASSET_MISMATCH
        if (debit.flags | credit.flags) & _FROZEN and t.code not in CODES_ALLOWED_WHEN_FROZEN:
            if debit.flags & _FROZEN:
                return Outcome.DEBIT_ACCOUNT_FROZEN
            return Outcome.CREDIT_ACCOUNT_FROZEN
        if debit.flags & _NO_OVERDRAFT and debit.dpo + debit.dp + amount > debit.cpo:
            return Outcome.INSUFFICIENT_FUNDS
        if debit.dpo + debit.dp + amount > INT64_MAX or credit.cpo + credit.cp + amount > INT64_MAX:
            return Outcome.AMOUNT_TOO_LARGE
        self._save(debit)
        self._save(credit)
        if pending:
            debit.dp += amount
            credit.cp += amount
        else:
            debit.dpo += amount
            credit.cpo += amount
        expires_at_us = self.now_us + timeout_s * 1_000_000 if timeout_s else None
        self._add_row(t, debit.id, credit.id, amount, debit.asset, timeout_s, expires_at_us)
        return Outcome.OK

    def _apply_resolution(self, t: Transfer) -> Outcome:
        pid = t.pending_id
        if pid is None:
            return Outcome.PENDING_ID_REQUIRED
        pending = self.in_batch.get(pid) or self.existing.get(pid)
        if pending is None:
            return Outcome.PENDING_TRANSFER_NOT_FOUND
        if pending.kind != _PENDING:
            return Outcome.PENDING_TRANSFER_NOT_PENDING
        resolved = self.in_batch_resolutions.get(pid) or self.resolutions.get(pid)
        if resolved == _POST:
            return Outcome.PENDING_TRANSFER_ALREADY_POSTED
        if resolved == _VOID:
            return Outcome.PENDING_TRANSFER_ALREADY_VOIDED
        if t.timeout_s != 0:
            return Outcome.TIMEOUT_REQUIRES_PENDING
        if t.debit_account_id not in (0, pending.debit_account_id) or t.credit_account_id not in (
            0,
            pending.credit_account_id,
        ):
            return Outcome.PENDING_TRANSFER_HAS_DIFFERENT_ACCOUNTS
        if t.code != pending.code:
            return Outcome.PENDING_TRANSFER_HAS_DIFFERENT_CODE
        amount = t.amount
        if amount.__class__ is not int:
            return Outcome.AMOUNT_MUST_BE_POSITIVE
        posting = t.kind == _POST
        if posting:
            if pending.expires_at_us is not None and self.now_us >= pending.expires_at_us:
                return Outcome.PENDING_TRANSFER_EXPIRED
            if amount <= 0:
                return Outcome.AMOUNT_MUST_BE_POSITIVE
            if amount > pending.amount:
                return Outcome.EXCEEDS_PENDING_AMOUNT
        elif amount not in (0, pending.amount):
            return Outcome.VOID_AMOUNT_MUST_MATCH_PENDING
        else:
            amount = pending.amount
        debit = self.accounts[pending.debit_account_id]
        credit = self.accounts[pending.credit_account_id]
        self._save(debit)
        self._save(credit)
        debit.dp -= pending.amount
        credit.cp -= pending.amount
        if posting:
            debit.dpo += amount
            credit.cpo += amount
        self._add_row(t, debit.id, credit.id, amount, debit.asset, 0, None)
        self.in_batch_resolutions[pid] = str(t.kind)
        return Outcome.OK

    def _save(self, account: AccountState) -> None:
        self.undo.append((account, account.dp, account.dpo, account.cp, account.cpo))
        self.touched[account.id] = account

    def _add_row(
        self,
        t: Transfer,
        debit_id: int,
        credit_id: int,
        amount: int,
        asset: str,
        timeout_s: int,
        expires_at_us: int | None,
    ) -> None:
        row: Row = (
            self.first_seq + len(self.rows),
            t.id,
            debit_id,
            credit_id,
            amount,
            asset,
            str(t.code),
            str(t.kind),
            t.pending_id,
            t.reverses_id,
            timeout_s,
            expires_at_us,
            self.batch_seq,
            self.now_us,
        )
        self.rows.append(row)
        self.in_batch[t.id] = StoredTransfer(*row)

    def deltas(self) -> list[AccountDelta]:
        deltas = []
        for account_id in sorted(self.touched):
            account = self.touched[account_id]
            dp0, dpo0, cp0, cpo0 = account.loaded
            delta = (
                account_id,
                account.dp - dp0,
                account.dpo - dpo0,
                account.cp - cp0,
                account.cpo - cpo0,
            )
            if delta[1] or delta[2] or delta[3] or delta[4]:
                deltas.append(delta)
        return deltas


def _same_fields(prior: StoredTransfer, t: Transfer) -> bool:
    """Is ``t`` a replay of ``prior``? Post/void may leave accounts (and a void its amount) 0."""
    if (
        prior.code != t.code
        or prior.kind != t.kind
        or prior.pending_id != t.pending_id
        or prior.reverses_id != t.reverses_id
        or prior.timeout_s != t.timeout_s
    ):
        return False
    if prior.kind == _POST or prior.kind == _VOID:
        return (
            t.debit_account_id in (0, prior.debit_account_id)
            and t.credit_account_id in (0, prior.credit_account_id)
            and (t.amount == prior.amount or (prior.kind == _VOID and t.amount == 0))
        )
    return (
        t.debit_account_id == prior.debit_account_id
        and t.credit_account_id == prior.credit_account_id
        and t.amount == prior.amount
    )
