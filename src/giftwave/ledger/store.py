"""The ledger's storage port: what the posting engine needs from a database.

A store is used from ONE thread, the engine's writer. ``apply_batch`` runs a whole batch as
one transaction: lock the chain head, load what the batch touches, plan it with the shared
rules, insert the transfers and the annex rows of wholly new submissions (``ledger.annex``),
apply one summed update per account (in account-id order), append the batch to the hash
chain, commit. Only then are results returned, so an
acknowledged transfer is durable.

Holding the chain head serializes every writer of balances, in any process: balances change
only in batches, and flags only through ``freeze``-like calls that take the head too and bump
``accounts_version``. So the account states a store committed itself stay exact until the head
shows someone else's batch or a flag change, and the store keeps them cached until then.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

from giftwave.ledger.annex import ANNEX_TABLES, ANNEX_UPDATES, Annex, AnnexTable, AnnexUpdate
from giftwave.ledger.chain import batch_hash
from giftwave.ledger.model import (
    Outcome,
    StoredTransfer,
    Transfer,
    TransferKind,
    is_valid_transfer_id,
)
from giftwave.ledger.planner import AccountDelta, AccountState, Row, plan_batch

_OK = Outcome.OK

# A unique-constraint race with another process (two engines on one PostgreSQL) aborts the
# transaction; re-planning against the now-committed rows settles it. Bounded, like every loop.
MAX_BATCH_ATTEMPTS = 5
# Bound on cached account states (~200 bytes each): past it the cache starts over.
ACCOUNT_CACHE_MAX = 500_000


@dataclass(frozen=True, slots=True)
class Head:
    batch_seq: int
    transfer_seq: int
    hash: str
    accounts_version: int


class _ReplayInBatch(Exception):
    """An optimistic plan failed a transfer whose id is already stored: plan with lookups."""


class BatchStore(Protocol):
    """What the posting engine needs: commit a batch, find expired reservations, close.

    ``annexes`` is None, or one ``Annex`` or None per submission (see ``ledger.annex``); the
    engine passes it only when a submission of the batch carries one.
    """

    def apply_batch(
        self,
        requests: Sequence[Sequence[Transfer]],
        now_us: int,
        annexes: Sequence[Annex | None] | None = None,
    ) -> list[list[Outcome]]: ...

    def expired_pending(self, now_us: int, limit: int) -> list[tuple[str, str]]: ...

    def close(self) -> None: ...


@runtime_checkable
class PipelinedStore(BatchStore, Protocol):
    """A store that takes the next batch before the previous one committed.

    ``submit_batch`` returns at once with a future; batches are applied in the order they were
    submitted, each its own transaction, and each future resolves after its commit.
    """

    def submit_batch(
        self,
        requests: Sequence[Sequence[Transfer]],
        now_us: int,
        annexes: Sequence[Annex | None] | None = None,
    ) -> Future[list[list[Outcome]]]: ...


class LedgerStore(abc.ABC):
    """One database connection, owned by the posting engine's writer thread."""

    # A unique-constraint violation: an id that already exists (a replay), or a race with
    # another process. Either way the batch is planned again, this time looking ids up.
    duplicate_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    retryable_errors: ClassVar[tuple[type[BaseException], ...]] = ()

    def __init__(self) -> None:
        self._accounts: dict[int, AccountState] = {}
        # (batch_seq, accounts_version) of the head as this store's last commit left it.
        self._accounts_as_of: tuple[int, int] | None = None

    def apply_batch(
        self,
        requests: Sequence[Sequence[Transfer]],
        now_us: int,
        annexes: Sequence[Annex | None] | None = None,
    ) -> list[list[Outcome]]:
        """Commit one batch and return each submission's outcomes.

        Optimistic first: nearly every transfer id is new, so the first attempt does not
        look ids up. A replay is then found either by the unique index (when the replay
        would have succeeded again) or by looking up the ids of the transfers that failed
        (a replay of a spent gift fails the balance check before it reaches the index).
        Either way the batch is planned again with every id looked up. Looking up every id
        up front cost more than the rest of the batch's reads.
        """
        lookup_ids = False
        for attempt in range(MAX_BATCH_ATTEMPTS):
            try:
                return self._apply_once(requests, now_us, lookup_ids, annexes)
            except _ReplayInBatch:
                lookup_ids = True
            except self.duplicate_errors:
                if attempt == MAX_BATCH_ATTEMPTS - 1:
                    raise
                lookup_ids = True
            except self.retryable_errors:
                if attempt == MAX_BATCH_ATTEMPTS - 1:
                    raise
                time.sleep(0.001 * 2**attempt)
        raise AssertionError("unreachable")

    def _apply_once(
        self,
        requests: Sequence[Sequence[Transfer]],
        now_us: int,
        lookup_ids: bool,
        annexes: Sequence[Annex | None] | None,
    ) -> list[list[Outcome]]:
        account_ids: set[int] = set()
        referenced: set[str] = set()  # pending transfers posted/voided, transfers reversed
        pending_ids: set[str] = set()
        for request in requests:
            for t in request:
                account_ids.add(t.debit_account_id)
                account_ids.add(t.credit_account_id)
                if t.pending_id is not None or t.reverses_id is not None:
                    if t.pending_id.__class__ is str:
                        pending_ids.add(t.pending_id)
                    if t.reverses_id.__class__ is str:
                        referenced.add(t.reverses_id)
        referenced |= pending_ids
        if lookup_ids:
            referenced.update(t.id for request in requests for t in request)
        # Only well-formed ids can exist, and only they may reach SQL (no NUL, no surrogate).
        referenced = {i for i in referenced if is_valid_transfer_id(i)}
        pending_ids &= referenced
        self._begin()
        try:
            head = self._lock_head()
            existing = self._fetch_transfers(referenced) if referenced else {}
            for stored in existing.values():
                if stored.id in pending_ids and stored.kind == TransferKind.PENDING:
                    account_ids.add(stored.debit_account_id)
                    account_ids.add(stored.credit_account_id)
            resolutions = self._fetch_resolutions(pending_ids) if pending_ids else {}
            accounts = self._load_accounts(head, account_ids)
            plan = plan_batch(
                requests,
                accounts,
                existing,
                resolutions,
                first_seq=head.transfer_seq + 1,
                batch_seq=head.batch_seq + 1,
                now_us=now_us,
                whole=annexes,
            )
            if not lookup_ids and plan.failed_ids and self._fetch_transfers(plan.failed_ids):
                raise _ReplayInBatch
            if plan.rows:
                self._insert_transfers(plan.rows)
                if annexes is not None:
                    self._insert_annexes(annexes, plan.results, now_us)
                self._update_accounts(plan.deltas)
                new_hash = batch_hash(head.hash, head.batch_seq + 1, now_us, plan.rows)
                new_head = Head(
                    head.batch_seq + 1,
                    head.transfer_seq + len(plan.rows),
                    new_hash,
                    head.accounts_version,
                )
                self._append_batch(head, new_head, len(plan.rows), now_us)
                head = new_head
            self._commit()
        except BaseException:
            # The planner changed cached states that were not committed: start over.
            self._accounts.clear()
            self._accounts_as_of = None
            self._rollback()
            raise
        for delta in plan.deltas:
            account = accounts[delta[0]]
            account.loaded = (account.dp, account.dpo, account.cp, account.cpo)
        self._accounts_as_of = (head.batch_seq, head.accounts_version)
        return plan.results

    def _insert_annexes(
        self, annexes: Sequence[Annex | None], results: list[list[Outcome]], now_us: int
    ) -> None:
        """The annex rows of the submissions whose transfers are all newly committed (or the
        rows they change, for an ``AnnexUpdate``)."""
        by_table: dict[str, list[tuple[object, ...]]] = {}
        for annex, outcomes in zip(annexes, results, strict=True):
            # list.count compares by identity first: a C loop, no per-outcome Python frame.
            if annex is not None and outcomes.count(_OK) == len(outcomes):
                rows = by_table.get(annex[0])
                if rows is None:
                    rows = by_table[annex[0]] = []
                rows.append(annex[1])
        for name, rows in by_table.items():
            update = ANNEX_UPDATES.get(name)
            if update is not None:
                self._update_annex_rows(update, [str(row[0]) for row in rows], now_us)
                continue
            table = ANNEX_TABLES[name]  # KeyError: a table nobody registered, fails the batch
            width = len(table.columns)
            assert all(len(row) == width for row in rows), f"{name} rows have {width} values"
            self._insert_annex_rows(table, rows)

    def _load_accounts(self, head: Head, account_ids: set[int]) -> dict[int, AccountState]:
        cache = self._accounts
        if (head.batch_seq, head.accounts_version) != self._accounts_as_of or (
            len(cache) > ACCOUNT_CACHE_MAX
        ):
            cache.clear()
        missing = sorted(
            i for i in account_ids if i.__class__ is int and 0 < i < 2**63 and i not in cache
        )
        if missing:
            for state in self._fetch_accounts(missing):
                cache[state.id] = state
        return cache

    def expired_pending(self, now_us: int, limit: int) -> list[tuple[str, str]]:
        """(id, code) of pending transfers past their timeout and not yet posted or voided."""
        return self._expired_pending(now_us, limit)

    # The dialect-specific steps. Each runs inside the batch's transaction.
    @abc.abstractmethod
    def _begin(self) -> None: ...
    @abc.abstractmethod
    def _commit(self) -> None: ...
    @abc.abstractmethod
    def _rollback(self) -> None: ...
    @abc.abstractmethod
    def _lock_head(self) -> Head: ...
    @abc.abstractmethod
    def _fetch_transfers(self, ids: Iterable[str]) -> dict[str, StoredTransfer]: ...
    @abc.abstractmethod
    def _fetch_resolutions(self, pending_ids: Iterable[str]) -> dict[str, str]: ...
    @abc.abstractmethod
    def _fetch_accounts(self, account_ids: list[int]) -> Iterable[AccountState]: ...
    @abc.abstractmethod
    def _insert_transfers(self, rows: list[Row]) -> None: ...
    @abc.abstractmethod
    def _insert_annex_rows(self, table: AnnexTable, rows: list[tuple[object, ...]]) -> None: ...
    @abc.abstractmethod
    def _update_annex_rows(self, update: AnnexUpdate, keys: list[str], now_us: int) -> None: ...
    @abc.abstractmethod
    def _update_accounts(self, deltas: list[AccountDelta]) -> None: ...
    @abc.abstractmethod
    def _append_batch(self, head: Head, new_head: Head, count: int, now_us: int) -> None: ...
    @abc.abstractmethod
    def _expired_pending(self, now_us: int, limit: int) -> list[tuple[str, str]]: ...
    @abc.abstractmethod
    def close(self) -> None: ...


TRANSFER_SELECT = (
    "SELECT seq, id, debit_account_id, credit_account_id, amount, asset, code, kind, pending_id,"
    " reverses_id, timeout_s, expires_at_us, batch_seq, created_at_us FROM transfers"
)
ACCOUNT_STATE_SELECT = (
    "SELECT id, asset, flags, debits_pending, debits_posted, credits_pending, credits_posted"
    " FROM accounts"
)
EXPIRED_PENDING_SQL = (
    "SELECT p.id, p.code FROM transfers p WHERE p.kind = 'pending' AND p.expires_at_us <= {now}"
    " AND NOT EXISTS (SELECT 1 FROM transfers r WHERE r.pending_id = p.id)"
    " ORDER BY p.expires_at_us LIMIT {limit}"
)
