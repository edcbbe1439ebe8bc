"""The ledger's rules through a real PostingEngine, on SQLite and PostgreSQL.

Every bad input comes back as a typed ``Outcome`` and writes nothing: balances and the number
of stored transfers are the same before and after. Then the two-phase flow end to end, with
expiry by the engine's own sweeper, and ``verify_ledger`` both clean and catching tampering.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from giftwave.db.urls import DatabaseUrl
from giftwave.ledger.accounts import (
    AccountSpec,
    find_account,
    get_account,
    open_account,
    open_accounts,
    set_account_flags,
)
from giftwave.ledger.engine import LedgerUnavailable, PostingEngine, expiry_void_id
from giftwave.ledger.errors import AccountConflict, InvalidAccount
from giftwave.ledger.model import (
    AMOUNT_MAX,
    AccountFlags,
    Outcome,
    Transfer,
    TransferCode,
    TransferKind,
)
from giftwave.ledger.stores import open_store
from giftwave.ledger.verify import verify_ledger

GIFT = TransferCode.GIFT
TOPUP = TransferCode.TOPUP
PAYOUT = TransferCode.PAYOUT
PENDING = TransferKind.PENDING
POST = TransferKind.POST_PENDING
VOID = TransferKind.VOID_PENDING
NO_OD = AccountFlags.NO_OVERDRAFT


@dataclass(frozen=True, slots=True)
class Accounts:
    issued: int  # COIN, the source of top-ups
    spent: int  # COIN, where gifts go
    viewer: int  # COIN, no-overdraft, 100 coins
    frozen: int  # COIN, no-overdraft and frozen, 50 coins
    d_issued: int  # DIAMOND
    creator: int  # DIAMOND, no-overdraft, 100 diamonds
    payouts: int  # DIAMOND


Snapshot = tuple[dict[int, tuple[int, int, int, int]], int]


def snapshot(sa_engine: Engine) -> Snapshot:
    """Every account's four sums and the number of stored transfers."""
    with sa_engine.connect() as conn:
        sums = {
            int(r[0]): (int(r[1]), int(r[2]), int(r[3]), int(r[4]))
            for r in conn.execute(
                text(
                    "SELECT id, debits_pending, debits_posted, credits_pending, credits_posted"
                    " FROM accounts"
                )
            )
        }
        count = int(conn.execute(text("SELECT COUNT(*) FROM transfers")).scalar_one())
    return sums, count


def assert_verified(sa_engine: Engine) -> None:
    with sa_engine.connect() as conn:
        report = verify_ledger(conn)
    assert report.ok, report.problems


def balances(sa_engine: Engine, account_id: int) -> tuple[int, int, int, int]:
    with sa_engine.connect() as conn:
        a = get_account(conn, account_id)
    return a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted


@pytest.fixture
async def acc(sa_engine: Engine, posting: PostingEngine) -> Accounts:
    with sa_engine.begin() as conn:
        a = Accounts(
            issued=open_account(conn, "platform:coins_issued", "COIN").id,
            spent=open_account(conn, "platform:gifts_spent", "COIN").id,
            viewer=open_account(conn, "viewer:1:coins", "COIN", flags=NO_OD).id,
            frozen=open_account(conn, "viewer:2:coins", "COIN", flags=NO_OD).id,
            d_issued=open_account(conn, "platform:diamonds_issued", "DIAMOND").id,
            creator=open_account(conn, "creator:1:diamonds", "DIAMOND", flags=NO_OD).id,
            payouts=open_account(conn, "platform:payouts", "DIAMOND").id,
        )
    assert await posting.submit(
        [
            Transfer("fund:viewer", a.issued, a.viewer, 100, TOPUP),
            Transfer("fund:frozen", a.issued, a.frozen, 50, TOPUP),
            Transfer("fund:creator", a.d_issued, a.creator, 100, GIFT),
        ]
    ) == [Outcome.OK, Outcome.OK, Outcome.OK]
    with sa_engine.begin() as conn:
        set_account_flags(conn, a.frozen, NO_OD | AccountFlags.FROZEN)
    return a


def _t(tid: Any, debit: int, credit: int, amount: Any, code: Any = GIFT, **kw: Any) -> Transfer:
    return Transfer(tid, debit, credit, amount, code)._replace(**kw)


# (case id, the submission, the outcomes it must get)
BAD: list[tuple[str, Callable[[Accounts], list[Transfer]], list[Outcome]]] = [
    ("zero_amount", lambda a: [_t("t", a.viewer, a.spent, 0)], [Outcome.AMOUNT_MUST_BE_POSITIVE]),
    (
        "negative_amount",
        lambda a: [_t("t", a.viewer, a.spent, -5)],
        [Outcome.AMOUNT_MUST_BE_POSITIVE],
    ),
    (
        "float_amount",
        lambda a: [_t("t", a.viewer, a.spent, 1.5)],
        [Outcome.AMOUNT_MUST_BE_POSITIVE],
    ),
    (
        "bool_amount",
        lambda a: [_t("t", a.viewer, a.spent, True)],
        [Outcome.AMOUNT_MUST_BE_POSITIVE],
    ),
    (
        "amount_too_large",
        lambda a: [_t("t", a.issued, a.viewer, AMOUNT_MAX + 1, TOPUP)],
        [Outcome.AMOUNT_TOO_LARGE],
    ),
    (
        "amount_beyond_int64",
        lambda a: [_t("t", a.issued, a.viewer, 2**64, TOPUP)],
        [Outcome.AMOUNT_TOO_LARGE],
    ),
    ("unknown_debit", lambda a: [_t("t", 10**9, a.spent, 5)], [Outcome.DEBIT_ACCOUNT_NOT_FOUND]),
    ("negative_debit", lambda a: [_t("t", -1, a.spent, 5)], [Outcome.DEBIT_ACCOUNT_NOT_FOUND]),
    ("huge_debit", lambda a: [_t("t", 2**70, a.spent, 5)], [Outcome.DEBIT_ACCOUNT_NOT_FOUND]),
    ("unknown_credit", lambda a: [_t("t", a.viewer, 10**9, 5)], [Outcome.CREDIT_ACCOUNT_NOT_FOUND]),
    ("asset_mismatch", lambda a: [_t("t", a.viewer, a.creator, 5)], [Outcome.ASSET_MISMATCH]),
    (
        "transfer_to_self",
        lambda a: [_t("t", a.viewer, a.viewer, 5)],
        [Outcome.ACCOUNTS_MUST_BE_DIFFERENT],
    ),
    ("frozen_debit", lambda a: [_t("t", a.frozen, a.spent, 5)], [Outcome.DEBIT_ACCOUNT_FROZEN]),
    (
        "frozen_credit",
        lambda a: [_t("t", a.issued, a.frozen, 5, TOPUP)],
        [Outcome.CREDIT_ACCOUNT_FROZEN],
    ),
    (
        "frozen_pending_payout",
        lambda a: [_t("t", a.frozen, a.spent, 5, PAYOUT, kind=PENDING)],
        [Outcome.DEBIT_ACCOUNT_FROZEN],
    ),
    (
        "insufficient_funds",
        lambda a: [_t("t", a.viewer, a.spent, 101)],
        [Outcome.INSUFFICIENT_FUNDS],
    ),
    (
        "insufficient_for_pending",
        lambda a: [_t("t", a.creator, a.payouts, 101, PAYOUT, kind=PENDING)],
        [Outcome.INSUFFICIENT_FUNDS],
    ),
    ("empty_id", lambda a: [_t("", a.viewer, a.spent, 5)], [Outcome.INVALID_ID]),
    ("long_id", lambda a: [_t("x" * 129, a.viewer, a.spent, 5)], [Outcome.INVALID_ID]),
    ("bad_chars_id", lambda a: [_t("a b/c", a.viewer, a.spent, 5)], [Outcome.INVALID_ID]),
    ("non_str_id", lambda a: [_t(42, a.viewer, a.spent, 5)], [Outcome.INVALID_ID]),
    (
        "id_reused",
        lambda a: [_t("fund:viewer", a.issued, a.viewer, 101, TOPUP)],
        [Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS],
    ),
    (
        "exact_replay",
        lambda a: [_t("fund:viewer", a.issued, a.viewer, 100, TOPUP)],
        [Outcome.EXISTS],
    ),
    ("invalid_code", lambda a: [_t("t", a.viewer, a.spent, 5, "tip")], [Outcome.INVALID_CODE]),
    (
        "invalid_kind",
        lambda a: [_t("t", a.viewer, a.spent, 5, kind="later")],
        [Outcome.INVALID_KIND],
    ),
    (
        "linked_chain_fails_whole",
        lambda a: [
            _t("c", a.viewer, a.spent, 60, linked=True),
            _t("d", a.d_issued, a.creator, 60, linked=True),
            _t("e", a.viewer, a.spent, 41),
        ],
        [Outcome.LINKED_EVENT_FAILED, Outcome.LINKED_EVENT_FAILED, Outcome.INSUFFICIENT_FUNDS],
    ),
    (
        "linked_chain_open",
        lambda a: [_t("c", a.viewer, a.spent, 5, linked=True), _t("d", 0, 0, 5, linked=True)],
        [Outcome.LINKED_EVENT_FAILED, Outcome.LINKED_EVENT_CHAIN_OPEN],
    ),
    (
        "timeout_on_posted",
        lambda a: [_t("t", a.viewer, a.spent, 5, timeout_s=10)],
        [Outcome.TIMEOUT_REQUIRES_PENDING],
    ),
    (
        "negative_timeout",
        lambda a: [_t("t", a.creator, a.payouts, 5, PAYOUT, kind=PENDING, timeout_s=-1)],
        [Outcome.INVALID_TIMEOUT],
    ),
    (
        "post_without_pending_id",
        lambda a: [_t("t", 0, 0, 5, PAYOUT, kind=POST)],
        [Outcome.PENDING_ID_REQUIRED],
    ),
    (
        "post_of_unknown_pending",
        lambda a: [_t("t", 0, 0, 5, PAYOUT, kind=POST, pending_id="nope")],
        [Outcome.PENDING_TRANSFER_NOT_FOUND],
    ),
    (
        "void_of_a_posted_transfer",
        lambda a: [_t("t", 0, 0, 0, TOPUP, kind=VOID, pending_id="fund:viewer")],
        [Outcome.PENDING_TRANSFER_NOT_PENDING],
    ),
    (
        "pending_id_on_posted",
        lambda a: [_t("t", a.viewer, a.spent, 5, pending_id="fund:viewer")],
        [Outcome.PENDING_ID_MUST_BE_BLANK],
    ),
    (
        "reverses_nothing",
        lambda a: [_t("t", a.spent, a.viewer, 5, TransferCode.REFUND, reverses_id="nope")],
        [Outcome.REVERSED_TRANSFER_NOT_FOUND],
    ),
]


async def test_bad_input_is_a_typed_outcome_and_writes_nothing(
    sa_engine: Engine, posting: PostingEngine, acc: Accounts, subtests: pytest.Subtests
) -> None:
    for name, submission, expected in BAD:
        with subtests.test(name):
            before = snapshot(sa_engine)
            assert await posting.submit(submission(acc)) == expected
            assert snapshot(sa_engine) == before
    assert_verified(sa_engine)


async def test_bad_submissions_in_one_batch_leave_the_good_ones_alone(
    sa_engine: Engine, posting: PostingEngine, acc: Accounts
) -> None:
    before_sums, before_count = snapshot(sa_engine)
    good = [
        Transfer("good1", acc.viewer, acc.spent, 10, GIFT, linked=True),
        Transfer("good2", acc.d_issued, acc.creator, 10, GIFT),
    ]
    # Gathered, so that they queue together and share one database transaction.
    results = await asyncio.gather(
        *(posting.submit(case(acc)) for _, case, _ in BAD), posting.submit(good)
    )
    assert results == [[*expected] for _, _, expected in BAD] + [[Outcome.OK, Outcome.OK]]
    after_sums, after_count = snapshot(sa_engine)
    assert after_count == before_count + 2
    assert after_sums[acc.viewer] == (0, 10, 0, 100)
    assert after_sums[acc.creator] == (0, 0, 0, 110)
    untouched = set(before_sums) - {acc.viewer, acc.spent, acc.d_issued, acc.creator}
    assert {i: after_sums[i] for i in untouched} == {i: before_sums[i] for i in untouched}
    assert_verified(sa_engine)


async def test_clawback_codes_reach_a_frozen_account(
    sa_engine: Engine, posting: PostingEngine, acc: Accounts
) -> None:
    assert await posting.submit(
        [
            Transfer("cb", acc.frozen, acc.spent, 20, TransferCode.CHARGEBACK),
            Transfer("rf", acc.spent, acc.frozen, 5, TransferCode.REFUND),
            Transfer("adj", acc.frozen, acc.spent, 5, TransferCode.ADJUSTMENT),
        ]
    ) == [Outcome.OK, Outcome.OK, Outcome.OK]
    assert balances(sa_engine, acc.frozen) == (0, 25, 0, 55)
    assert_verified(sa_engine)


async def test_replay_answers_exists_after_the_balance_is_spent(
    sa_engine: Engine, posting: PostingEngine, acc: Accounts
) -> None:
    gift = [
        Transfer("g:c", acc.viewer, acc.spent, 100, GIFT, linked=True),
        Transfer("g:d", acc.d_issued, acc.creator, 100, GIFT),
    ]
    assert await posting.submit(gift) == [Outcome.OK, Outcome.OK]
    before = snapshot(sa_engine)
    # The viewer holds 0 coins now: the replay must still be recognized, not re-charged.
    assert await posting.submit(gift) == [Outcome.EXISTS, Outcome.EXISTS]
    with sa_engine.begin() as conn:
        set_account_flags(conn, acc.viewer, NO_OD | AccountFlags.FROZEN)
    assert await posting.submit(gift) == [Outcome.EXISTS, Outcome.EXISTS]
    assert snapshot(sa_engine) == before


async def test_replay_of_a_post_answers_exists(
    sa_engine: Engine, posting: PostingEngine, acc: Accounts
) -> None:
    pending = Transfer("p", acc.creator, acc.payouts, 40, PAYOUT, kind=PENDING)
    post = Transfer("p:post", 0, 0, 40, PAYOUT, kind=POST, pending_id="p")
    assert await posting.submit([pending]) == [Outcome.OK]
    assert await posting.submit([post]) == [Outcome.OK]
    before = snapshot(sa_engine)
    assert await posting.submit([pending]) == [Outcome.EXISTS]
    assert await posting.submit([post]) == [Outcome.EXISTS]
    assert await posting.submit([post._replace(amount=39)]) == [
        Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS
    ]
    assert snapshot(sa_engine) == before


@pytest.mark.parametrize("field", ["id", "pending_id", "reverses_id"])
@pytest.mark.parametrize("bad", ["nul\x00byte", "lone\ud800surrogate"], ids=["nul", "surrogate"])
async def test_unstorable_strings_are_typed_outcomes_and_spare_the_batch(
    request: pytest.FixtureRequest,
    db_url: DatabaseUrl,
    sa_engine: Engine,
    posting: PostingEngine,
    acc: Accounts,
    field: str,
    bad: str,
) -> None:
    """A string the database cannot store is refused by the rules, never by the database:
    otherwise every other caller's transfers in the same batch fail with it."""
    bad_transfer, expected = {
        "id": (Transfer(bad, acc.viewer, acc.spent, 5, GIFT), Outcome.INVALID_ID),
        "pending_id": (
            Transfer("t", 0, 0, 5, PAYOUT, kind=POST, pending_id=bad),
            Outcome.PENDING_TRANSFER_NOT_FOUND,
        ),
        "reverses_id": (
            Transfer("t", acc.spent, acc.viewer, 5, TransferCode.REFUND, reverses_id=bad),
            Outcome.REVERSED_TRANSFER_NOT_FOUND,
        ),
    }[field]
    # A replay in the same submission: the store then looks every id of the batch up.
    replay = Transfer("fund:viewer", acc.issued, acc.viewer, 100, TOPUP)
    good = Transfer("good", acc.viewer, acc.spent, 7, GIFT)
    before = snapshot(sa_engine)
    results = await asyncio.gather(
        posting.submit([bad_transfer, replay]), posting.submit([good]), return_exceptions=True
    )
    assert list(results) == [[expected, Outcome.EXISTS], [Outcome.OK]]
    assert snapshot(sa_engine)[1] == before[1] + 1
    assert_verified(sa_engine)


# --- two-phase -------------------------------------------------------------------------------


async def test_pending_payout_posted_and_voided_end_to_end(
    sa_engine: Engine, posting: PostingEngine, acc: Accounts
) -> None:
    c, p = acc.creator, acc.payouts
    assert await posting.submit([Transfer("p1", c, p, 60, PAYOUT, kind=PENDING)]) == [Outcome.OK]
    assert balances(sa_engine, c) == (60, 0, 0, 100)
    assert balances(sa_engine, p) == (0, 0, 60, 0)
    # 60 reserved of 100: a second payout of 41 does not fit, 40 does.
    assert await posting.submit([Transfer("p2", c, p, 41, PAYOUT, kind=PENDING)]) == [
        Outcome.INSUFFICIENT_FUNDS
    ]
    assert await posting.submit([Transfer("p2", c, p, 40, PAYOUT, kind=PENDING)]) == [Outcome.OK]

    before = snapshot(sa_engine)
    for attempt, outcome in [
        (
            Transfer("x", 0, 0, 61, PAYOUT, kind=POST, pending_id="p1"),
            Outcome.EXCEEDS_PENDING_AMOUNT,
        ),
        (
            Transfer("x", 0, 0, 0, PAYOUT, kind=POST, pending_id="p1"),
            Outcome.AMOUNT_MUST_BE_POSITIVE,
        ),
        (
            Transfer("x", 0, 0, 60, GIFT, kind=POST, pending_id="p1"),
            Outcome.PENDING_TRANSFER_HAS_DIFFERENT_CODE,
        ),
        (
            Transfer("x", acc.payouts, c, 60, PAYOUT, kind=POST, pending_id="p1"),
            Outcome.PENDING_TRANSFER_HAS_DIFFERENT_ACCOUNTS,
        ),
        (
            Transfer("x", 0, 0, 59, PAYOUT, kind=VOID, pending_id="p1"),
            Outcome.VOID_AMOUNT_MUST_MATCH_PENDING,
        ),
        (
            Transfer("x", 0, 0, 60, PAYOUT, kind=POST, pending_id="p1", timeout_s=5),
            Outcome.TIMEOUT_REQUIRES_PENDING,
        ),
    ]:
        assert await posting.submit([attempt]) == [outcome], attempt
    assert snapshot(sa_engine) == before

    # Post 50 of the 60: the other 10 go back to the creator.
    assert await posting.submit(
        [Transfer("p1:post", c, p, 50, PAYOUT, kind=POST, pending_id="p1")]
    ) == [Outcome.OK]
    assert balances(sa_engine, c) == (40, 50, 0, 100)
    assert balances(sa_engine, p) == (0, 0, 40, 50)
    assert await posting.submit(
        [Transfer("p2:void", 0, 0, 0, PAYOUT, kind=VOID, pending_id="p2")]
    ) == [Outcome.OK]
    assert balances(sa_engine, c) == (0, 50, 0, 100)
    assert balances(sa_engine, p) == (0, 0, 0, 50)

    before = snapshot(sa_engine)
    assert await posting.submit(
        [Transfer("again", 0, 0, 10, PAYOUT, kind=POST, pending_id="p1")]
    ) == [Outcome.PENDING_TRANSFER_ALREADY_POSTED]
    assert await posting.submit(
        [Transfer("again", 0, 0, 0, PAYOUT, kind=VOID, pending_id="p1")]
    ) == [Outcome.PENDING_TRANSFER_ALREADY_POSTED]
    assert await posting.submit(
        [Transfer("again", 0, 0, 40, PAYOUT, kind=POST, pending_id="p2")]
    ) == [Outcome.PENDING_TRANSFER_ALREADY_VOIDED]
    assert snapshot(sa_engine) == before
    assert_verified(sa_engine)


async def test_expired_pending_transfer_is_voided_by_the_sweeper(
    sa_engine: Engine, posting: PostingEngine, acc: Accounts
) -> None:
    c, p = acc.creator, acc.payouts
    hold = Transfer("hold", c, p, 70, PAYOUT, kind=PENDING, timeout_s=1)
    assert await posting.submit([hold]) == [Outcome.OK]
    assert balances(sa_engine, c) == (70, 0, 0, 100)
    deadline = time.monotonic() + 5.0  # timeout 1 s, sweeper every 0.05 s
    # The sweeper counts its voids once their batch has answered, a moment after the commit
    # this test can already read: wait for both.
    while balances(sa_engine, c)[0] != 0 or posting.stats.expired_pending == 0:
        assert time.monotonic() < deadline, "the reservation was never released"
        await asyncio.sleep(0.05)
    assert balances(sa_engine, c) == (0, 0, 0, 100)
    assert balances(sa_engine, p) == (0, 0, 0, 0)
    with sa_engine.connect() as conn:
        row = conn.execute(
            text("SELECT kind, pending_id, amount FROM transfers WHERE id = :id"),
            {"id": expiry_void_id("hold")},
        ).one()
    assert tuple(row) == ("void_pending", "hold", 70)
    assert posting.stats.expired_pending == 1
    # Too late to post; the reservation is spendable again.
    assert await posting.submit(
        [Transfer("late", 0, 0, 70, PAYOUT, kind=POST, pending_id="hold")]
    ) == [Outcome.PENDING_TRANSFER_ALREADY_VOIDED]
    assert await posting.submit([Transfer("all", c, p, 100, PAYOUT)]) == [Outcome.OK]
    assert_verified(sa_engine)


async def test_post_after_expiry_but_before_the_sweep(
    db_url: DatabaseUrl, sa_engine: Engine
) -> None:
    with sa_engine.begin() as conn:
        creator = open_account(conn, "creator:diamonds", "DIAMOND").id
        payouts = open_account(conn, "platform:payouts", "DIAMOND").id
    clock_us = [1_700_000_000_000_000]
    engine = PostingEngine(open_store(db_url), expiry_interval_s=3600, clock_us=lambda: clock_us[0])
    async with engine:
        pending = Transfer("hold", creator, payouts, 30, PAYOUT, kind=PENDING, timeout_s=10)
        assert await engine.submit([pending]) == [Outcome.OK]
        clock_us[0] += 10_000_000 - 1
        post = Transfer("post", 0, 0, 30, PAYOUT, kind=POST, pending_id="hold")
        void = Transfer("void", 0, 0, 0, PAYOUT, kind=VOID, pending_id="hold")
        assert await engine.submit([post._replace(amount=31)]) == [Outcome.EXCEEDS_PENDING_AMOUNT]
        clock_us[0] += 1  # exactly at expiry
        before = snapshot(sa_engine)
        assert await engine.submit([post]) == [Outcome.PENDING_TRANSFER_EXPIRED]
        assert snapshot(sa_engine) == before
        assert await engine.submit([void]) == [Outcome.OK]
    assert balances(sa_engine, creator) == (0, 0, 0, 0)
    assert_verified(sa_engine)


async def test_engine_refuses_submissions_larger_than_a_batch(db_url: DatabaseUrl) -> None:
    engine = PostingEngine(open_store(db_url), batch_max_transfers=4)
    async with engine:
        with pytest.raises(ValueError, match=r"1\.\.4"):
            await engine.submit([Transfer(f"t{i}", 1, 2, 1, GIFT) for i in range(5)])
        with pytest.raises(ValueError, match=r"1\.\.4"):
            await engine.submit([])
        # Still serving.
        assert await engine.submit([Transfer("t", 1, 2, 1, GIFT)]) == [
            Outcome.DEBIT_ACCOUNT_NOT_FOUND
        ]


# --- verify ----------------------------------------------------------------------------------


async def _busy_ledger(posting: PostingEngine, a: Accounts) -> None:
    """Several batches of gifts, a pending post and void: something worth verifying."""
    for i in range(4):
        assert await posting.submit(
            [
                Transfer(f"g{i}:c", a.viewer, a.spent, 10, GIFT, linked=True),
                Transfer(f"g{i}:d", a.d_issued, a.creator, 10, GIFT),
            ]
        ) == [Outcome.OK, Outcome.OK]
    assert await posting.submit(
        [
            Transfer("p1", a.creator, a.payouts, 30, PAYOUT, kind=PENDING),
            Transfer("p2", a.creator, a.payouts, 20, PAYOUT, kind=PENDING),
        ]
    ) == [Outcome.OK, Outcome.OK]
    assert await posting.submit(
        [
            Transfer("p1:post", 0, 0, 25, PAYOUT, kind=POST, pending_id="p1"),
            Transfer("p2:void", 0, 0, 0, PAYOUT, kind=VOID, pending_id="p2"),
        ]
    ) == [Outcome.OK, Outcome.OK]


async def test_verify_is_clean_after_a_busy_ledger(
    sa_engine: Engine, posting: PostingEngine, acc: Accounts
) -> None:
    await _busy_ledger(posting, acc)
    with sa_engine.connect() as conn:
        report = verify_ledger(conn)
        batches = int(conn.execute(text("SELECT COUNT(*) FROM ledger_batches")).scalar_one())
    assert report.ok, report.problems
    assert report.accounts == 7
    assert report.transfers == 3 + 8 + 2 + 2
    assert report.batches == batches >= 7


TAMPERING = [
    (
        "balance",
        "UPDATE accounts SET credits_posted = credits_posted + 1 WHERE name = 'viewer:1:coins'",
        ["account viewer:1:coins", "credits_posted is 101, transfers say 100", "asset COIN"],
    ),
    (
        "pending_balance",
        "UPDATE accounts SET debits_pending = 7 WHERE name = 'creator:1:diamonds'",
        ["account creator:1:diamonds", "debits_pending is 7, transfers say 0"],
    ),
    (
        "transfer_amount",
        "UPDATE transfers SET amount = 11 WHERE id = 'g1:c'",
        ["account viewer:1:coins", "hash does not match"],
    ),
    ("batch_row", "DELETE FROM ledger_batches WHERE seq = 3", ["batch 3 is missing"]),
    ("transfer_row", "DELETE FROM transfers WHERE id = 'g2:d'", ["transfers are missing"]),
    (
        "chain_link",
        "UPDATE ledger_batches SET prev_hash = '" + "f" * 64 + "' WHERE seq = 2",
        ["batch 2: prev_hash does not match"],
    ),
]


@pytest.mark.parametrize(
    ("sql", "named"), [t[1:] for t in TAMPERING], ids=[t[0] for t in TAMPERING]
)
async def test_verify_names_tampering(
    sa_engine: Engine, posting: PostingEngine, acc: Accounts, sql: str, named: list[str]
) -> None:
    await _busy_ledger(posting, acc)
    assert_verified(sa_engine)
    with sa_engine.begin() as conn:
        assert conn.execute(text(sql)).rowcount == 1
    with sa_engine.connect() as conn:
        report = verify_ledger(conn)
    assert not report.ok
    text_of_problems = "\n".join(report.problems)
    for phrase in named:
        assert phrase in text_of_problems, report.problems


async def test_an_overdrawn_no_overdraft_account_is_refused_or_named(
    sa_engine: Engine, posting: PostingEngine, acc: Accounts
) -> None:
    await _busy_ledger(posting, acc)
    tamper = text("UPDATE accounts SET debits_posted = 1000 WHERE id = :id")
    try:
        with sa_engine.begin() as conn:
            conn.execute(tamper, {"id": acc.viewer})
    except IntegrityError:
        return  # the schema itself forbids the overdraft: nothing for verify to find
    with sa_engine.connect() as conn:
        report = verify_ledger(conn)
    assert any(
        "viewer:1:coins" in p and "no-overdraft" in p and "-900" in p for p in report.problems
    ), report.problems


async def test_ledger_unavailable_is_raised_not_swallowed(
    db_url: DatabaseUrl, sa_engine: Engine
) -> None:
    """A batch the database refuses is answered with LedgerUnavailable; nothing is acked."""
    engine = PostingEngine(open_store(db_url), expiry_interval_s=3600)
    with sa_engine.begin() as conn:
        a = open_account(conn, "a", "COIN").id
        b = open_account(conn, "b", "COIN").id
        conn.execute(text("DROP TABLE ledger_batches"))
    async with engine:
        with pytest.raises(LedgerUnavailable):
            await engine.submit([Transfer("t", a, b, 5, GIFT)])
        assert engine.stats.failed_batches == 1
    with sa_engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM transfers")).scalar_one() == 0
        assert get_account(conn, a).debits_posted == 0


def test_accounts_open_together_once_and_refuse_a_conflict_whole(sa_engine: Engine) -> None:
    no_od = AccountFlags.NO_OVERDRAFT
    with sa_engine.begin() as conn:
        first = open_account(conn, "user:7:coins", "COIN", flags=no_od, owner="user:7")
    specs = [
        AccountSpec("user:7:coins", "COIN", no_od, "user:7"),  # exists: the same one back
        AccountSpec("user:7:diamonds", "DIAMOND", no_od, "user:7"),
        AccountSpec("user:7:coin_debt", "COIN", AccountFlags.NONE, "user:7"),
    ]
    with sa_engine.begin() as conn:
        opened = open_accounts(conn, specs)
    assert [a.name for a in opened] == [s.name for s in specs]
    assert opened[0].id == first.id
    assert (opened[1].asset, opened[1].flags, opened[1].owner) == ("DIAMOND", no_od, "user:7")
    with sa_engine.begin() as conn:
        again = open_accounts(conn, specs)  # idempotent: the same accounts
    assert [a.id for a in again] == [a.id for a in opened]

    # One conflicting account fails the call; in its transaction, the new ones go too.
    with pytest.raises(AccountConflict), sa_engine.begin() as conn:
        open_accounts(
            conn,
            [
                AccountSpec("user:8:coins", "COIN", no_od, "user:8"),
                AccountSpec("user:7:diamonds", "COIN"),  # exists as DIAMOND
            ],
        )
    with pytest.raises(InvalidAccount), sa_engine.begin() as conn:
        open_accounts(conn, [AccountSpec("12345", "COIN")])  # all digits reads as an id
    with sa_engine.connect() as conn:
        assert find_account(conn, "user:8:coins") is None
