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
_fullmatch = TRANSFER_ID_RE.fullmatch

# Plain-str values of codes and kinds. A StrEnum member hashes and compares like its value, so
# one dict maps members and plain strings alike to the plain str stored in the row.
_CODE_VALUE: Final = {c.value: c.value for c in TransferCode}
_FROZEN_OK_CODES: Final = frozenset(c.value for c in CODES_ALLOWED_WHEN_FROZEN)
_POSTED: Final = TransferKind.POSTED.value
_PENDING: Final = TransferKind.PENDING.value
_POST: Final = TransferKind.POST_PENDING.value
_VOID: Final = TransferKind.VOID_PENDING.value
_NO_OVERDRAFT: Final = int(AccountFlags.NO_OVERDRAFT)
_FROZEN: Final = int(AccountFlags.FROZEN)

# Attribute access on an Enum class costs ~200 ns on CPython 3.11; the planner runs per
# transfer on the hottest path in giftwave, so it reads outcomes from module constants.
_OK: Final = Outcome.OK
_EXISTS: Final = Outcome.EXISTS

# Field positions in a stored row (a StoredTransfer, or the plain tuple the planner builds).
_ID: Final = 1
_DEBIT: Final = 2
_CREDIT: Final = 3
_AMOUNT: Final = 4
_CODE: Final = 6
_KIND: Final = 7
_PENDING_ID: Final = 8
_REVERSES_ID: Final = 9
_TIMEOUT: Final = 10
_EXPIRES: Final = 11

# A row as inserted: the fields of StoredTransfer, as a plain tuple so that the hash chain can
# serialize it in one call and recompute it from what the database returns.
Row = tuple[
    int, str, int, int, int, str, str, str, str | None, str | None, int, int | None, int, int
]
StoredRow = Row | StoredTransfer


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
    # Well-formed ids of transfers that failed: a store that planned without looking ids up
    # checks these, since a replay of a spent gift fails before the unique index sees it.
    failed_ids: set[str]


def plan_batch(
    requests: Sequence[Sequence[Transfer]],
    accounts: Mapping[int, AccountState],
    existing: Mapping[str, StoredRow],
    resolutions: Mapping[str, str],
    *,
    first_seq: int,
    batch_seq: int,
    now_us: int,
    whole: Sequence[object] | None = None,
) -> BatchPlan:
    """Decide every transfer of every submission, in order, against the loaded state.

    A submission whose entry in ``whole`` is truthy (it carries an annex row) is one
    idempotent unit: all new, or all replayed. If some of its transfers exist and others would
    be new, none of it is applied: the existing ones answer ``id_reused_with_different_fields``
    and the rest ``linked_event_failed``.
    """
    planner = _Planner(accounts, existing, resolutions, first_seq, batch_seq, now_us)
    if whole is None:
        results = [planner.submit(request) for request in requests]
    else:
        results = [
            planner.submit_whole(request) if unit else planner.submit(request)
            for request, unit in zip(requests, whole, strict=True)
        ]
    return BatchPlan(planner.rows, planner.deltas(), results, planner.failed_ids)


_LINKED_FAILED: Final = Outcome.LINKED_EVENT_FAILED
_REUSED: Final = Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS


class _Planner:
    def __init__(
        self,
        accounts: Mapping[int, AccountState],
        existing: Mapping[str, StoredRow],
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
        self.in_batch: dict[str, StoredRow] = {}
        self.in_batch_resolutions: dict[str, str] = {}
        self.touched: dict[int, AccountState] = {}
        self.failed_ids: set[str] = set()
        # (account, dp, dpo, cp, cpo) before a change: lets a failed linked chain roll back.
        self.undo: list[tuple[AccountState, int, int, int, int]] = []

    def submit(self, transfers: Sequence[Transfer]) -> list[Outcome]:
        count = len(transfers)
        out = [_LINKED_FAILED] * count
        start = 0
        while start < count:
            end = start
            while end < count and transfers[end].linked:
                end += 1
            if end == count:  # the last transfer still links onwards: nothing closes the chain
                out[count - 1] = Outcome.LINKED_EVENT_CHAIN_OPEN
                self._note_failed(transfers, start, count - 1)
                break
            self._chain(transfers, start, end, out)
            start = end + 1
        return out

    def submit_whole(self, transfers: Sequence[Transfer]) -> list[Outcome]:
        mark_rows, mark_undo = len(self.rows), len(self.undo)
        out = self.submit(transfers)
        if _EXISTS in out and _OK in out:  # partly a replay: the new part would be unexplained
            self._rollback(mark_rows, mark_undo)
            out = [_REUSED if o is _EXISTS else _LINKED_FAILED for o in out]
            self._note_failed(transfers, 0, len(transfers) - 1)
        return out

    def _chain(
        self, transfers: Sequence[Transfer], start: int, end: int, out: list[Outcome]
    ) -> None:
        mark_rows, mark_undo = len(self.rows), len(self.undo)
        for index in range(start, end + 1):
            outcome = self._apply(transfers[index])
            if outcome is not _OK and outcome is not _EXISTS:
                self._rollback(mark_rows, mark_undo)
                for other in range(start, end + 1):
                    out[other] = _LINKED_FAILED
                out[index] = outcome
                self._note_failed(transfers, start, end)
                return
            out[index] = outcome

    def _note_failed(self, transfers: Sequence[Transfer], first: int, last: int) -> None:
        for index in range(first, last + 1):
            tid = transfers[index].id
            if tid.__class__ is str and _fullmatch(tid) is not None:
                self.failed_ids.add(tid)

    def _rollback(self, mark_rows: int, mark_undo: int) -> None:
        for row in self.rows[mark_rows:]:
            del self.in_batch[row[_ID]]
            if row[_PENDING_ID] is not None:
                self.in_batch_resolutions.pop(row[_PENDING_ID], None)
        del self.rows[mark_rows:]
        while len(self.undo) > mark_undo:
            account, dp, dpo, cp, cpo = self.undo.pop()
            account.dp, account.dpo, account.cp, account.cpo = dp, dpo, cp, cpo

    def _find(self, transfer_id: str) -> StoredRow | None:
        return self.in_batch.get(transfer_id) or self.existing.get(transfer_id)

    def _apply(self, t: Transfer) -> Outcome:
        tid = t.id
        if tid.__class__ is not str or _fullmatch(tid) is None:
            return Outcome.INVALID_ID
        prior = self.in_batch.get(tid) or self.existing.get(tid)
        if prior is not None:
            return _EXISTS if _same_fields(prior, t) else Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS
        code = _CODE_VALUE.get(t.code)
        if code is None:
            return Outcome.INVALID_CODE
        kind = t.kind
        if (
            kind == _POSTED
            and t.pending_id is None
            and t.reverses_id is None
            and t.timeout_s == 0
            and code not in _FROZEN_OK_CODES
        ):
            return self._apply_plain(t, code)
        if t.reverses_id is not None and self._find(t.reverses_id) is None:
            return Outcome.REVERSED_TRANSFER_NOT_FOUND
        if kind in (_POSTED, _PENDING):
            return self._apply_new(t, code, kind == _PENDING)
        if kind in (_POST, _VOID):
            return self._apply_resolution(t, code, kind == _POST)
        return Outcome.INVALID_KIND

    def _apply_plain(self, t: Transfer, code: str) -> Outcome:
        """The gift path: a posted transfer with no pending, reversal or timeout.

        The same rules as ``_apply_new``, inlined: this runs twice per gift, and on CPython
        3.11 the calls and attribute loads it saves are most of its cost.
        """
        amount = t.amount
        if amount.__class__ is not int or amount <= 0:
            return Outcome.AMOUNT_MUST_BE_POSITIVE
        if amount > AMOUNT_MAX:
            return Outcome.AMOUNT_TOO_LARGE
        debit_id = t.debit_account_id
        credit_id = t.credit_account_id
        if debit_id == credit_id:
            return Outcome.ACCOUNTS_MUST_BE_DIFFERENT
        accounts = self.accounts
        debit = accounts.get(debit_id)
        if debit is None:
            return Outcome.DEBIT_ACCOUNT_NOT_FOUND
        credit = accounts.get(credit_id)
        if credit is None:
            return Outcome.CREDIT_ACCOUNT_NOT_FOUND
        asset = debit.asset
        if asset != credit.asset:
            return Outcome.ASSET_MISMATCH
        if (debit.flags | credit.flags) & _FROZEN:
            if debit.flags & _FROZEN:
                return Outcome.DEBIT_ACCOUNT_FROZEN
            return Outcome.CREDIT_ACCOUNT_FROZEN
        dpo, dp, cpo = debit.dpo, debit.dp, credit.cpo
        if debit.flags & _NO_OVERDRAFT and dpo + dp + amount > debit.cpo:
            return Outcome.INSUFFICIENT_FUNDS
        if t.debit_limit:  # one load and a test for the transfers without one (most)
            refused = _over_debit_limit(t.debit_limit, dpo + dp - debit.cpo + amount)
            if refused is not None:
                return refused
        if dpo + dp + amount > INT64_MAX or cpo + credit.cp + amount > INT64_MAX:
            return Outcome.AMOUNT_TOO_LARGE
        self.undo += (
            (debit, dp, dpo, debit.cp, debit.cpo),
            (credit, credit.dp, credit.dpo, credit.cp, cpo),
        )
        touched = self.touched
        touched[debit_id] = debit
        touched[credit_id] = credit
        debit.dpo = dpo + amount
        credit.cpo = cpo + amount
        rows = self.rows
        tid = t.id
        row: Row = (
            self.first_seq + len(rows), tid, debit_id, credit_id, amount, asset, code, _POSTED,
            None, None, 0, None, self.batch_seq, self.now_us,
        )  # fmt: skip
        rows.append(row)
        self.in_batch[tid] = row
        return _OK

    def _apply_new(self, t: Transfer, code: str, pending: bool) -> Outcome:
        amount = t.amount
        if amount.__class__ is not int or amount <= 0:
            return Outcome.AMOUNT_MUST_BE_POSITIVE
        if amount > AMOUNT_MAX:
            return Outcome.AMOUNT_TOO_LARGE
        if t.pending_id is not None:
            return Outcome.PENDING_ID_MUST_BE_BLANK
        timeout_s = t.timeout_s
        if timeout_s:
            if timeout_s.__class__ is not int or not 0 < timeout_s <= TIMEOUT_MAX_S:
                return Outcome.INVALID_TIMEOUT
            if not pending:
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
        if (debit.flags | credit.flags) & _FROZEN and code not in _FROZEN_OK_CODES:
            if debit.flags & _FROZEN:
                return Outcome.DEBIT_ACCOUNT_FROZEN
            return Outcome.CREDIT_ACCOUNT_FROZEN
        if debit.flags & _NO_OVERDRAFT and debit.dpo + debit.dp + amount > debit.cpo:
            return Outcome.INSUFFICIENT_FUNDS
        if t.debit_limit:
            refused = _over_debit_limit(t.debit_limit, debit.dpo + debit.dp - debit.cpo + amount)
            if refused is not None:
                return refused
        if debit.dpo + debit.dp + amount > INT64_MAX or credit.cpo + credit.cp + amount > INT64_MAX:
            return Outcome.AMOUNT_TOO_LARGE
        undo = self.undo
        undo.append((debit, debit.dp, debit.dpo, debit.cp, debit.cpo))
        undo.append((credit, credit.dp, credit.dpo, credit.cp, credit.cpo))
        touched = self.touched
        touched[debit.id] = debit
        touched[credit.id] = credit
        if pending:
            debit.dp += amount
            credit.cp += amount
            expires_at_us = self.now_us + timeout_s * 1_000_000 if timeout_s else None
            self._add_row(
                t,
                debit.id,
                credit.id,
                amount,
                debit.asset,
                code,
                _PENDING,
                timeout_s,
                expires_at_us,
            )
        else:
            debit.dpo += amount
            credit.cpo += amount
            self._add_row(t, debit.id, credit.id, amount, debit.asset, code, _POSTED, 0, None)
        return _OK

    def _apply_resolution(self, t: Transfer, code: str, posting: bool) -> Outcome:
        pid = t.pending_id
        if pid is None:
            return Outcome.PENDING_ID_REQUIRED
        pending = self._find(pid)
        if pending is None:
            return Outcome.PENDING_TRANSFER_NOT_FOUND
        if pending[_KIND] != _PENDING:
            return Outcome.PENDING_TRANSFER_NOT_PENDING
        resolved = self.in_batch_resolutions.get(pid) or self.resolutions.get(pid)
        if resolved == _POST:
            return Outcome.PENDING_TRANSFER_ALREADY_POSTED
        if resolved == _VOID:
            return Outcome.PENDING_TRANSFER_ALREADY_VOIDED
        if t.timeout_s != 0:
            return Outcome.TIMEOUT_REQUIRES_PENDING
        if t.debit_account_id not in (0, pending[_DEBIT]) or t.credit_account_id not in (
            0,
            pending[_CREDIT],
        ):
            return Outcome.PENDING_TRANSFER_HAS_DIFFERENT_ACCOUNTS
        if code != pending[_CODE]:
            return Outcome.PENDING_TRANSFER_HAS_DIFFERENT_CODE
        amount = t.amount
        reserved = pending[_AMOUNT]
        if amount.__class__ is not int:
            return Outcome.AMOUNT_MUST_BE_POSITIVE
        if posting:
            expires_at_us = pending[_EXPIRES]
            if expires_at_us is not None and self.now_us >= expires_at_us:
                return Outcome.PENDING_TRANSFER_EXPIRED
            if amount <= 0:
                return Outcome.AMOUNT_MUST_BE_POSITIVE
            if amount > reserved:
                return Outcome.EXCEEDS_PENDING_AMOUNT
        elif amount not in (0, reserved):
            return Outcome.VOID_AMOUNT_MUST_MATCH_PENDING
        else:
            amount = reserved
        debit = self.accounts[pending[_DEBIT]]
        credit = self.accounts[pending[_CREDIT]]
        self.undo.append((debit, debit.dp, debit.dpo, debit.cp, debit.cpo))
        self.undo.append((credit, credit.dp, credit.dpo, credit.cp, credit.cpo))
        self.touched[debit.id] = debit
        self.touched[credit.id] = credit
        debit.dp -= reserved
        credit.cp -= reserved
        kind = _VOID
        if posting:
            kind = _POST
            debit.dpo += amount
            credit.cpo += amount
        self._add_row(t, debit.id, credit.id, amount, debit.asset, code, kind, 0, None)
        self.in_batch_resolutions[pid] = kind
        return _OK

    def _add_row(
        self,
        t: Transfer,
        debit_id: int,
        credit_id: int,
        amount: int,
        asset: str,
        code: str,
        kind: str,
        timeout_s: int,
        expires_at_us: int | None,
    ) -> None:
        rows = self.rows
        row: Row = (
            self.first_seq + len(rows),
            t.id,
            debit_id,
            credit_id,
            amount,
            asset,
            code,
            kind,
            t.pending_id,
            t.reverses_id,
            timeout_s,
            expires_at_us,
            self.batch_seq,
            self.now_us,
        )
        rows.append(row)
        self.in_batch[t.id] = row

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


def _over_debit_limit(limit: int, net_debits_after: int) -> Outcome | None:
    """Why a transfer with this ``debit_limit`` is refused, leaving the debit account with
    these net debits; None when it may go."""
    if limit.__class__ is not int or limit < 0:  # a caller's value: checked, not trusted
        return Outcome.INVALID_DEBIT_LIMIT
    if net_debits_after > limit:
        return Outcome.EXCEEDS_DEBIT_LIMIT
    return None


def _same_fields(prior: StoredRow, t: Transfer) -> bool:
    """Is ``t`` a replay of ``prior``? Post/void may leave accounts (and a void its amount) 0."""
    if (
        prior[_CODE] != t.code
        or prior[_KIND] != t.kind
        or prior[_PENDING_ID] != t.pending_id
        or prior[_REVERSES_ID] != t.reverses_id
        or prior[_TIMEOUT] != t.timeout_s
    ):
        return False
    kind = prior[_KIND]
    if kind in (_POST, _VOID):
        return (
            t.debit_account_id in (0, prior[_DEBIT])
            and t.credit_account_id in (0, prior[_CREDIT])
            and (t.amount == prior[_AMOUNT] or (kind == _VOID and t.amount == 0))
        )
    return (
        t.debit_account_id == prior[_DEBIT]
        and t.credit_account_id == prior[_CREDIT]
        and t.amount == prior[_AMOUNT]
    )
