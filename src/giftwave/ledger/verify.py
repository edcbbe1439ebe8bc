"""``giftwave ledger verify``: prove the ledger's invariants from what is stored.

1. Per asset, posted debits = posted credits and pending debits = pending credits.
2. Every account's four stored sums = what its transfers add up to.
3. No no-overdraft account has debits (posted + pending) above its posted credits.
4. The batch hash chain is unbroken: each batch names the one before it, its hash matches
   its transfers, transfer sequence numbers have no gaps, and the head is the last batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import Connection, Engine, text

from giftwave.ledger.chain import GENESIS_HASH, batch_hash
from giftwave.ledger.model import AccountFlags

CHAIN_PAGE_BATCHES: Final = 200
MAX_PROBLEMS_PER_CHECK: Final = 50

# Per account, what its transfers add up to. A post or void releases its pending transfer's
# full amount from the pending sums; a post then adds its own (possibly partial) amount.
_SUMS_FROM_TRANSFERS = """
SELECT account_id, SUM(dp), SUM(dpo), SUM(cp), SUM(cpo) FROM (
    SELECT debit_account_id AS account_id,
           CASE WHEN kind = 'pending' THEN amount ELSE 0 END AS dp,
           CASE WHEN kind IN ('posted', 'post_pending') THEN amount ELSE 0 END AS dpo,
           0 AS cp, 0 AS cpo
      FROM transfers
    UNION ALL
    SELECT credit_account_id, 0, 0,
           CASE WHEN kind = 'pending' THEN amount ELSE 0 END,
           CASE WHEN kind IN ('posted', 'post_pending') THEN amount ELSE 0 END
      FROM transfers
    UNION ALL
    SELECT p.debit_account_id, -p.amount, 0, 0, 0
      FROM transfers r JOIN transfers p ON p.id = r.pending_id
    UNION ALL
    SELECT p.credit_account_id, 0, 0, -p.amount, 0
      FROM transfers r JOIN transfers p ON p.id = r.pending_id
) AS movements GROUP BY account_id
"""


@dataclass(slots=True)
class VerifyReport:
    accounts: int = 0
    transfers: int = 0
    batches: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_ledger(conn: Connection, progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Run every check; ``progress`` is called with batches checked so far."""
    report = VerifyReport()
    _check_assets_balance(conn, report)
    _check_account_sums(conn, report)
    _check_overdrafts(conn, report)
    _check_chain(conn, report, progress)
    return report


def verify_snapshot(db: Engine) -> VerifyReport:
    """``verify_ledger`` on a live database: every check reads one snapshot, so gifts
    committed while it runs cannot make account sums and transfers disagree."""
    with db.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        else:
            # pysqlite opens a transaction only before a write; in WAL mode this read
            # transaction sees the database as of its first read, until the rollback.
            conn.exec_driver_sql("BEGIN")
        try:
            return verify_ledger(conn)
        finally:
            conn.rollback()


def _add(report: VerifyReport, problems: list[str]) -> None:
    report.problems.extend(problems[:MAX_PROBLEMS_PER_CHECK])
    if len(problems) > MAX_PROBLEMS_PER_CHECK:
        report.problems.append(f"… and {len(problems) - MAX_PROBLEMS_PER_CHECK} more like it")


def _check_assets_balance(conn: Connection, report: VerifyReport) -> None:
    rows = conn.execute(
        text(
            "SELECT asset, SUM(debits_posted), SUM(credits_posted), SUM(debits_pending),"
            " SUM(credits_pending), COUNT(*) FROM accounts GROUP BY asset ORDER BY asset"
        )
    ).all()
    problems = []
    for asset, dpo, cpo, dp, cp, count in rows:
        report.accounts += int(count)
        if int(dpo) != int(cpo):
            problems.append(f"asset {asset}: posted debits {dpo} != posted credits {cpo}")
        if int(dp) != int(cp):
            problems.append(f"asset {asset}: pending debits {dp} != pending credits {cp}")
    mismatched = conn.execute(
        text(
            "SELECT t.id, t.asset, d.asset, c.asset FROM transfers t"
            " LEFT JOIN accounts d ON d.id = t.debit_account_id"
            " LEFT JOIN accounts c ON c.id = t.credit_account_id"
            " WHERE d.asset IS NULL OR c.asset IS NULL OR d.asset <> t.asset OR c.asset <> t.asset"
            f" LIMIT {MAX_PROBLEMS_PER_CHECK + 1}"
        )
    ).all()
    for tid, asset, debit_asset, credit_asset in mismatched:
        problems.append(
            f"transfer {tid}: asset {asset}, but its debit account holds"
            f" {debit_asset or 'nothing (missing)'} and its credit account"
            f" {credit_asset or 'nothing (missing)'}"
        )
    _add(report, problems)


def _check_account_sums(conn: Connection, report: VerifyReport) -> None:
    computed = {
        int(row[0]): tuple(int(v) for v in row[1:])
        for row in conn.execute(text(_SUMS_FROM_TRANSFERS))
    }
    problems = []
    names = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")
    stored_rows = conn.execute(
        text(
            "SELECT id, name, debits_pending, debits_posted, credits_pending, credits_posted"
            " FROM accounts ORDER BY id"
        )
    )
    for account_id, name, *stored in stored_rows:
        expected = computed.pop(int(account_id), (0, 0, 0, 0))
        for label, have, want in zip(names, stored, expected, strict=True):
            if int(have) != want:
                problems.append(
                    f"account {name} (#{account_id}): {label} is {have}, transfers say {want}"
                )
    for account_id in sorted(computed):
        problems.append(f"transfers name account #{account_id}, which does not exist")
    _add(report, problems)


def _check_overdrafts(conn: Connection, report: VerifyReport) -> None:
    rows = conn.execute(
        text(
            "SELECT id, name, credits_posted - debits_posted - debits_pending FROM accounts"
            " WHERE (flags & :flag) <> 0 AND debits_posted + debits_pending > credits_posted"
            " ORDER BY id"
        ),
        {"flag": int(AccountFlags.NO_OVERDRAFT)},
    ).all()
    _add(
        report,
        [
            f"account {name} (#{aid}) is no-overdraft but its available balance is {avail}"
            for aid, name, avail in rows
        ],
    )


def _pages(conn: Connection) -> Iterator[list[tuple[int, int, int, str, str, int]]]:
    after = 0
    while True:
        page = conn.execute(
            text(
                "SELECT seq, first_transfer_seq, transfer_count, prev_hash, hash, created_at_us"
                " FROM ledger_batches WHERE seq > :after ORDER BY seq LIMIT :limit"
            ),
            {"after": after, "limit": CHAIN_PAGE_BATCHES},
        ).all()
        if not page:
            return
        yield [tuple(r) for r in page]
        after = int(page[-1][0])


def _check_chain(
    conn: Connection, report: VerifyReport, progress: Callable[[int], None] | None
) -> None:
    problems: list[str] = []
    prev_hash, next_transfer_seq, expected_batch = GENESIS_HASH, 1, 1
    for page in _pages(conn):
        first, last = page[0][1], page[-1][1] + page[-1][2] - 1
        rows = conn.execute(
            text(
                "SELECT seq, id, debit_account_id, credit_account_id, amount, asset, code, kind,"
                " pending_id, reverses_id, timeout_s, expires_at_us, batch_seq, created_at_us"
                " FROM transfers WHERE seq BETWEEN :first AND :last ORDER BY seq"
            ),
            {"first": first, "last": last},
        ).all()
        by_seq = {int(r[0]): tuple(r) for r in rows}
        for seq, first_seq, count, stored_prev, stored_hash, created_at_us in page:
            report.batches += 1
            if seq != expected_batch:
                problems.append(f"batch {expected_batch} is missing (next stored batch is {seq})")
            if first_seq != next_transfer_seq:
                problems.append(
                    f"batch {seq}: starts at transfer {first_seq}, expected {next_transfer_seq}"
                )
            if stored_prev != prev_hash:
                problems.append(
                    f"batch {seq}: prev_hash does not match the hash of batch {seq - 1}"
                )
            batch_rows = [by_seq.get(s) for s in range(first_seq, first_seq + count)]
            if any(r is None for r in batch_rows):
                problems.append(f"batch {seq}: some of its {count} transfers are missing")
            elif batch_hash(stored_prev, seq, created_at_us, batch_rows) != stored_hash:  # type: ignore[arg-type]
                problems.append(
                    f"batch {seq}: hash does not match its transfers (altered or reordered)"
                )
            report.transfers += count
            prev_hash, next_transfer_seq, expected_batch = stored_hash, first_seq + count, seq + 1
        if progress is not None:
            progress(report.batches)
    total = int(conn.execute(text("SELECT COUNT(*) FROM transfers")).scalar_one())
    if total != report.transfers:
        problems.append(f"{total - report.transfers} transfers belong to no batch of the chain")
    head = conn.execute(
        text("SELECT batch_seq, transfer_seq, hash FROM ledger_head WHERE id = 1")
    ).first()
    if head is None:
        problems.append("the chain head row is missing")
    elif (int(head[0]), int(head[1]), head[2]) != (
        expected_batch - 1,
        next_transfer_seq - 1,
        prev_hash,
    ):
        problems.append(
            f"the chain head (batch {head[0]}, transfer {head[1]}) is not the last batch "
            f"(batch {expected_batch - 1}, transfer {next_transfer_seq - 1})"
        )
    _add(report, problems)
