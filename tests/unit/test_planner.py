"""The ledger's rules, straight through ``plan_batch``: no database, accounts built by hand.

``MemLedger`` plays the store's part: it loads every account as an ``AccountState``, hands the
planner the committed transfers and resolutions, and applies the returned rows and deltas the
way a store commits them. That lets a test span several batches (a replay, a post after a
pending) while checking exactly what one batch would write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from giftwave.ledger.model import (
    AMOUNT_MAX,
    AccountFlags,
    Outcome,
    StoredTransfer,
    Transfer,
    TransferCode,
    TransferKind,
)
from giftwave.ledger.planner import INT64_MAX, TIMEOUT_MAX_S, AccountState, BatchPlan, plan_batch

NOW_US = 1_700_000_000_000_000
SECOND_US = 1_000_000

GIFT = TransferCode.GIFT
TOPUP = TransferCode.TOPUP
PAYOUT = TransferCode.PAYOUT
PENDING = TransferKind.PENDING
POST = TransferKind.POST_PENDING
VOID = TransferKind.VOID_PENDING
NO_OD = AccountFlags.NO_OVERDRAFT
FROZEN = AccountFlags.FROZEN

Balances = tuple[int, int, int, int]  # debits pending, debits posted, credits pending, posted


class MemLedger:
    """The committed state a store would hold, and a store's way of planning a batch."""

    def __init__(self) -> None:
        self.accounts: dict[int, tuple[str, int]] = {}  # id -> (asset, flags)
        self.sums: dict[int, list[int]] = {}  # id -> [dp, dpo, cp, cpo]
        self.transfers: dict[str, StoredTransfer] = {}
        self.resolutions: dict[str, str] = {}
        self.transfer_seq = 0
        self.batch_seq = 0
        self.states: dict[int, AccountState] = {}  # what the last batch was planned against

    def open(self, asset: str = "COIN", flags: AccountFlags = AccountFlags.NONE) -> int:
        account_id = len(self.accounts) + 1
        self.accounts[account_id] = (asset, int(flags))
        self.sums[account_id] = [0, 0, 0, 0]
        return account_id

    def plan(self, *requests: Sequence[Transfer], now_us: int = NOW_US) -> BatchPlan:
        """Plan one batch of submissions and commit what it wrote."""
        self.states = {
            i: AccountState(i, asset, flags, *self.sums[i])
            for i, (asset, flags) in self.accounts.items()
        }
        plan = plan_batch(
            requests,
            self.states,
            dict(self.transfers),
            dict(self.resolutions),
            first_seq=self.transfer_seq + 1,
            batch_seq=self.batch_seq + 1,
            now_us=now_us,
        )
        assert len(plan.results) == len(requests)
        for request, result in zip(requests, plan.results, strict=True):
            assert len(result) == len(request)
        for row in plan.rows:
            stored = StoredTransfer(*row)
            self.transfers[stored.id] = stored
            if stored.pending_id is not None:
                self.resolutions[stored.pending_id] = stored.kind
        for account_id, *delta in plan.deltas:
            self.sums[account_id] = [
                a + b for a, b in zip(self.sums[account_id], delta, strict=True)
            ]
        if plan.rows:
            self.transfer_seq += len(plan.rows)
            self.batch_seq += 1
        return plan

    def submit(self, *transfers: Transfer, now_us: int = NOW_US) -> list[Outcome]:
        """One submission alone in its batch."""
        return self.plan(list(transfers), now_us=now_us).results[0]

    def balances(self, account_id: int) -> Balances:
        dp, dpo, cp, cpo = self.sums[account_id]
        return dp, dpo, cp, cpo

    def fund(self, account_id: int, amount: int) -> None:
        """Top the account up from a fresh issuer of the same asset."""
        issuer = self.open(self.accounts[account_id][0])
        tid = f"fund-{account_id}-{self.transfer_seq}"
        assert self.submit(Transfer(tid, issuer, account_id, amount, TOPUP)) == [Outcome.OK]


def nothing_written(plan: BatchPlan, ledger: MemLedger) -> bool:
    """No rows, no deltas, and every account the planner saw back at its loaded sums."""
    restored = all((s.dp, s.dpo, s.cp, s.cpo) == s.loaded for s in ledger.states.values())
    return plan.rows == [] and plan.deltas == [] and restored


def fail_alone(ledger: MemLedger, transfer: Transfer, expected: Outcome) -> None:
    """Submit one transfer that must fail with ``expected`` and change nothing."""
    before = {i: ledger.balances(i) for i in ledger.accounts}
    count = len(ledger.transfers)
    plan = ledger.plan([transfer])
    assert plan.results == [[expected]]
    assert nothing_written(plan, ledger)
    assert {i: ledger.balances(i) for i in ledger.accounts} == before
    assert len(ledger.transfers) == count


@pytest.fixture
def ledger() -> MemLedger:
    return MemLedger()


@pytest.fixture
def coin(ledger: MemLedger) -> tuple[int, int]:
    """A funded no-overdraft viewer (100 coins) and a plain platform account."""
    viewer = ledger.open("COIN", NO_OD)
    platform = ledger.open("COIN")
    ledger.fund(viewer, 100)
    return viewer, platform


# --- one transfer, one rule ------------------------------------------------------------------


def test_a_valid_gift_moves_the_amount_and_writes_one_row(
    ledger: MemLedger, coin: tuple[int, int]
) -> None:
    viewer, platform = coin
    plan = ledger.plan([Transfer("g1", viewer, platform, 30, GIFT)])
    assert plan.results == [[Outcome.OK]]
    assert len(plan.rows) == 1
    row = StoredTransfer(*plan.rows[0])
    assert (row.id, row.debit_account_id, row.credit_account_id, row.amount) == (
        "g1",
        viewer,
        platform,
        30,
    )
    assert (row.asset, row.code, row.kind, row.batch_seq) == ("COIN", "gift", "posted", 2)
    assert plan.deltas == sorted(plan.deltas)
    assert ledger.balances(viewer) == (0, 30, 0, 100)
    assert ledger.balances(platform) == (0, 0, 0, 30)


@pytest.mark.parametrize("amount", [0, -1, -(2**63)])
def test_amount_must_be_positive(ledger: MemLedger, coin: tuple[int, int], amount: int) -> None:
    viewer, platform = coin
    fail_alone(
        ledger, Transfer("t", viewer, platform, amount, GIFT), Outcome.AMOUNT_MUST_BE_POSITIVE
    )


@pytest.mark.parametrize("amount", [1.0, 5.5, "5", None, True, False, b"5"])
def test_amount_must_be_an_int(ledger: MemLedger, coin: tuple[int, int], amount: Any) -> None:
    viewer, platform = coin
    fail_alone(
        ledger, Transfer("t", viewer, platform, amount, GIFT), Outcome.AMOUNT_MUST_BE_POSITIVE
    )


def test_amount_above_the_maximum_is_refused(ledger: MemLedger) -> None:
    issuer, viewer = ledger.open("COIN"), ledger.open("COIN")
    fail_alone(
        ledger, Transfer("t", issuer, viewer, AMOUNT_MAX + 1, TOPUP), Outcome.AMOUNT_TOO_LARGE
    )
    assert ledger.submit(Transfer("t", issuer, viewer, AMOUNT_MAX, TOPUP)) == [Outcome.OK]


def test_amount_that_would_overflow_a_running_sum_is_refused(ledger: MemLedger) -> None:
    issuer, viewer = ledger.open("COIN"), ledger.open("COIN")
    ledger.sums[viewer][3] = INT64_MAX - 5  # credits_posted near the column's limit
    fail_alone(ledger, Transfer("t", issuer, viewer, 6, TOPUP), Outcome.AMOUNT_TOO_LARGE)
    assert ledger.submit(Transfer("t", issuer, viewer, 5, TOPUP)) == [Outcome.OK]


def test_unknown_debit_account(ledger: MemLedger, coin: tuple[int, int]) -> None:
    _, platform = coin
    fail_alone(ledger, Transfer("t", 999, platform, 5, GIFT), Outcome.DEBIT_ACCOUNT_NOT_FOUND)
    # Checked before the credit side: both unknown names the debit.
    fail_alone(ledger, Transfer("t", 998, 999, 5, GIFT), Outcome.DEBIT_ACCOUNT_NOT_FOUND)


def test_unknown_credit_account(ledger: MemLedger, coin: tuple[int, int]) -> None:
    viewer, _ = coin
    fail_alone(ledger, Transfer("t", viewer, 999, 5, GIFT), Outcome.CREDIT_ACCOUNT_NOT_FOUND)
    fail_alone(ledger, Transfer("t", viewer, 0, 5, GIFT), Outcome.CREDIT_ACCOUNT_NOT_FOUND)


def test_assets_must_match(ledger: MemLedger, coin: tuple[int, int]) -> None:
    viewer, _ = coin
    creator = ledger.open("DIAMOND")
    fail_alone(ledger, Transfer("t", viewer, creator, 5, GIFT), Outcome.ASSET_MISMATCH)


def test_transfer_to_self_is_refused(ledger: MemLedger, coin: tuple[int, int]) -> None:
    viewer, _ = coin
    fail_alone(ledger, Transfer("t", viewer, viewer, 5, GIFT), Outcome.ACCOUNTS_MUST_BE_DIFFERENT)
    fail_alone(
        ledger,
        Transfer("p", viewer, viewer, 5, GIFT, kind=PENDING),
        Outcome.ACCOUNTS_MUST_BE_DIFFERENT,
    )


@pytest.mark.parametrize("code", [TransferCode.GIFT, TransferCode.TOPUP, TransferCode.PAYOUT])
@pytest.mark.parametrize("kind", [TransferKind.POSTED, TransferKind.PENDING])
def test_frozen_accounts_refuse_ordinary_codes(
    ledger: MemLedger, code: TransferCode, kind: TransferKind
) -> None:
    frozen, plain = ledger.open("COIN", FROZEN), ledger.open("COIN")
    fail_alone(
        ledger, Transfer("d", frozen, plain, 5, code, kind=kind), Outcome.DEBIT_ACCOUNT_FROZEN
    )
    fail_alone(
        ledger, Transfer("c", plain, frozen, 5, code, kind=kind), Outcome.CREDIT_ACCOUNT_FROZEN
    )


@pytest.mark.parametrize(
    "code", [TransferCode.REFUND, TransferCode.CHARGEBACK, TransferCode.ADJUSTMENT]
)
def test_clawback_codes_reach_a_frozen_account(ledger: MemLedger, code: TransferCode) -> None:
    frozen, plain = ledger.open("COIN", FROZEN | NO_OD), ledger.open("COIN")
    ledger.sums[frozen][3] = 50  # holds 50 coins
    assert ledger.submit(Transfer("out", frozen, plain, 20, code)) == [Outcome.OK]
    assert ledger.submit(Transfer("in", plain, frozen, 5, code)) == [Outcome.OK]
    assert ledger.balances(frozen) == (0, 20, 0, 55)
    # Frozen still does not mean overdraft: a clawback beyond the balance is refused.
    fail_alone(ledger, Transfer("big", frozen, plain, 36, code), Outcome.INSUFFICIENT_FUNDS)


def test_insufficient_funds_on_a_no_overdraft_account(
    ledger: MemLedger, coin: tuple[int, int]
) -> None:
    viewer, platform = coin
    fail_alone(ledger, Transfer("t", viewer, platform, 101, GIFT), Outcome.INSUFFICIENT_FUNDS)
    assert ledger.submit(Transfer("t", viewer, platform, 100, GIFT)) == [Outcome.OK]
    fail_alone(ledger, Transfer("u", viewer, platform, 1, GIFT), Outcome.INSUFFICIENT_FUNDS)
    assert ledger.balances(viewer) == (0, 100, 0, 100)


def test_reserved_and_incoming_pending_amounts_are_not_spendable(
    ledger: MemLedger, coin: tuple[int, int]
) -> None:
    viewer, platform = coin
    assert ledger.submit(Transfer("hold", viewer, platform, 60, PAYOUT, kind=PENDING)) == [
        Outcome.OK
    ]
    fail_alone(ledger, Transfer("t", viewer, platform, 41, GIFT), Outcome.INSUFFICIENT_FUNDS)
    assert ledger.submit(Transfer("t", viewer, platform, 40, GIFT)) == [Outcome.OK]
    # Incoming pending credit is not money yet.
    other = ledger.open("COIN", NO_OD)
    ledger.fund(platform, 10)
    assert ledger.submit(Transfer("in", platform, other, 10, TOPUP, kind=PENDING)) == [Outcome.OK]
    fail_alone(ledger, Transfer("spend", other, platform, 1, GIFT), Outcome.INSUFFICIENT_FUNDS)


def test_an_account_without_no_overdraft_may_go_negative(ledger: MemLedger) -> None:
    issuer, viewer = ledger.open("COIN"), ledger.open("COIN", NO_OD)
    assert ledger.submit(Transfer("t", issuer, viewer, 500, TOPUP)) == [Outcome.OK]
    assert ledger.balances(issuer) == (0, 500, 0, 0)


@pytest.mark.parametrize(
    "bad_id",
    [
        "",
        "a" * 129,
        "-leading-dash",
        "_leading",
        "has space",
        "slash/y",
        "caf\u00e9",
        "tab\t",
        "line\n",
        "nul\x00",
        "\ud800",
        None,
        123,
        b"bytes",
    ],
)
def test_malformed_transfer_id(ledger: MemLedger, coin: tuple[int, int], bad_id: Any) -> None:
    viewer, platform = coin
    fail_alone(ledger, Transfer(bad_id, viewer, platform, 5, GIFT), Outcome.INVALID_ID)


@pytest.mark.parametrize("good_id", ["a" * 128, "0", "Gift:2024-01.x_y", "A-b.C:d_e"])
def test_well_formed_transfer_ids(ledger: MemLedger, coin: tuple[int, int], good_id: str) -> None:
    viewer, platform = coin
    assert ledger.submit(Transfer(good_id, viewer, platform, 5, GIFT)) == [Outcome.OK]


@pytest.mark.parametrize("code", ["tip", "", "GIFT", "gift ", None, 3])
def test_invalid_code(ledger: MemLedger, coin: tuple[int, int], code: Any) -> None:
    viewer, platform = coin
    fail_alone(ledger, Transfer("t", viewer, platform, 5, code), Outcome.INVALID_CODE)


def test_plain_string_code_and_kind_are_accepted(ledger: MemLedger, coin: tuple[int, int]) -> None:
    viewer, platform = coin
    transfer = Transfer("t", viewer, platform, 5, "gift", kind="posted")  # type: ignore[arg-type]
    assert ledger.submit(transfer) == [Outcome.OK]
    assert ledger.transfers["t"].code == "gift"
    assert ledger.transfers["t"].kind == "posted"


def test_invalid_kind(ledger: MemLedger, coin: tuple[int, int]) -> None:
    viewer, platform = coin
    fail_alone(
        ledger,
        Transfer("t", viewer, platform, 5, GIFT, kind="reserve"),  # type: ignore[arg-type]
        Outcome.INVALID_KIND,
    )


# --- idempotency -----------------------------------------------------------------------------


def test_exact_replay_answers_exists_and_writes_nothing(
    ledger: MemLedger, coin: tuple[int, int]
) -> None:
    viewer, platform = coin
    gift = Transfer("g", viewer, platform, 30, GIFT)
    assert ledger.submit(gift) == [Outcome.OK]
    before = ledger.balances(viewer)
    plan = ledger.plan([gift])
    assert plan.results == [[Outcome.EXISTS]]
    assert nothing_written(plan, ledger)
    assert ledger.balances(viewer) == before
    # Even when the viewer could no longer afford it: a replay is not a new debit.
    assert ledger.submit(Transfer("all", viewer, platform, 70, GIFT)) == [Outcome.OK]
    assert ledger.submit(gift) == [Outcome.EXISTS]


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": 31},
        {"debit_account_id": 3},
        {"credit_account_id": 3},
        {"code": TransferCode.ADJUSTMENT},
        {"kind": TransferKind.PENDING},
        {"timeout_s": 10, "kind": TransferKind.PENDING},
        {"reverses_id": "other"},
    ],
    ids=lambda c: "+".join(c),
)
def test_id_reused_with_other_fields(
    ledger: MemLedger, coin: tuple[int, int], changes: dict[str, Any]
) -> None:
    viewer, platform = coin
    ledger.open("COIN")  # account 3, a valid other side
    assert ledger.submit(Transfer("other", viewer, platform, 1, GIFT)) == [Outcome.OK]
    gift = Transfer("g", viewer, platform, 30, GIFT)
    assert ledger.submit(gift) == [Outcome.OK]
    fail_alone(ledger, gift._replace(**changes), Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS)


def test_same_id_twice_in_one_batch(ledger: MemLedger, coin: tuple[int, int]) -> None:
    viewer, platform = coin
    gift = Transfer("g", viewer, platform, 30, GIFT)
    plan = ledger.plan([gift], [gift], [gift._replace(amount=31)])
    assert plan.results == [
        [Outcome.OK],
        [Outcome.EXISTS],
        [Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS],
    ]
    assert len(plan.rows) == 1
    assert ledger.balances(viewer) == (0, 30, 0, 100)


def test_same_id_twice_in_one_submission(ledger: MemLedger, coin: tuple[int, int]) -> None:
    viewer, platform = coin
    gift = Transfer("g", viewer, platform, 30, GIFT)
    assert ledger.submit(gift, gift._replace(amount=5)) == [
        Outcome.OK,
        Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS,
    ]
    assert ledger.balances(viewer) == (0, 30, 0, 100)


def test_a_failed_transfer_does_not_take_its_id(ledger: MemLedger, coin: tuple[int, int]) -> None:
    viewer, platform = coin
    plan = ledger.plan(
        [Transfer("g", viewer, platform, 500, GIFT)], [Transfer("g", viewer, platform, 50, GIFT)]
    )
    assert plan.results == [[Outcome.INSUFFICIENT_FUNDS], [Outcome.OK]]
    assert [StoredTransfer(*r).amount for r in plan.rows] == [50]


# --- linked chains ---------------------------------------------------------------------------


def test_linked_chain_failure_rolls_back_earlier_members(ledger: MemLedger) -> None:
    viewer, spent = ledger.open("COIN", NO_OD), ledger.open("COIN")
    issued, creator = ledger.open("DIAMOND"), ledger.open("DIAMOND", NO_OD)
    ledger.fund(viewer, 100)
    before = {i: ledger.balances(i) for i in ledger.accounts}
    plan = ledger.plan(
        [
            Transfer("c", viewer, spent, 60, GIFT, linked=True),
            Transfer("d", issued, creator, 60, GIFT, linked=True),
            Transfer("x", viewer, spent, 41, GIFT),  # 60 + 41 > 100
        ]
    )
    assert plan.results == [
        [Outcome.LINKED_EVENT_FAILED, Outcome.LINKED_EVENT_FAILED, Outcome.INSUFFICIENT_FUNDS]
    ]
    assert nothing_written(plan, ledger)
    assert {i: ledger.balances(i) for i in ledger.accounts} == before
    assert {"c", "d", "x"}.isdisjoint(ledger.transfers)


def test_linked_chain_failure_in_the_middle(ledger: MemLedger, coin: tuple[int, int]) -> None:
    viewer, platform = coin
    plan = ledger.plan(
        [
            Transfer("a", viewer, platform, 10, GIFT, linked=True),
            Transfer("b", viewer, 999, 10, GIFT, linked=True),
            Transfer("c", viewer, platform, 10, GIFT),
        ]
    )
    assert plan.results == [
        [Outcome.LINKED_EVENT_FAILED, Outcome.CREDIT_ACCOUNT_NOT_FOUND, Outcome.LINKED_EVENT_FAILED]
    ]
    assert nothing_written(plan, ledger)


def test_linked_chain_members_see_each_other(ledger: MemLedger) -> None:
    issuer, viewer, platform = ledger.open("COIN"), ledger.open("COIN", NO_OD), ledger.open("COIN")
    # The top-up funds the gift that follows it in the same chain.
    assert ledger.submit(
        Transfer("top", issuer, viewer, 10, TOPUP, linked=True),
        Transfer("gift", viewer, platform, 10, GIFT),
    ) == [Outcome.OK, Outcome.OK]
    assert ledger.balances(viewer) == (0, 10, 0, 10)


def test_chains_in_one_submission_are_independent(ledger: MemLedger, coin: tuple[int, int]) -> None:
    viewer, platform = coin
    plan = ledger.plan(
        [
            Transfer("a1", viewer, platform, 10, GIFT, linked=True),
            Transfer("a2", viewer, platform, 10, GIFT),
            Transfer("b1", viewer, platform, 10, GIFT, linked=True),
            Transfer("b2", viewer, platform, 999, GIFT),
            Transfer("c", viewer, platform, 5, GIFT),
        ]
    )
    assert plan.results == [
        [
            Outcome.OK,
            Outcome.OK,
            Outcome.LINKED_EVENT_FAILED,
            Outcome.INSUFFICIENT_FUNDS,
            Outcome.OK,
        ]
    ]
    assert [StoredTransfer(*r).id for r in plan.rows] == ["a1", "a2", "c"]
    assert ledger.balances(viewer) == (0, 25, 0, 100)
    # Rows are numbered without gaps even though b1 was planned and then rolled back.
    assert [r[0] for r in plan.rows] == [2, 3, 4]


def test_a_rolled_back_chain_frees_its_ids_for_later_submissions(
    ledger: MemLedger, coin: tuple[int, int]
) -> None:
    viewer, platform = coin
    plan = ledger.plan(
        [Transfer("a", viewer, platform, 10, GIFT, linked=True), Transfer("b", viewer, 0, 1, GIFT)],
        [Transfer("a", viewer, platform, 20, GIFT)],
    )
    assert plan.results == [
        [Outcome.LINKED_EVENT_FAILED, Outcome.CREDIT_ACCOUNT_NOT_FOUND],
        [Outcome.OK],
    ]
    assert ledger.transfers["a"].amount == 20


def test_an_open_chain_fails_whole(ledger: MemLedger, coin: tuple[int, int]) -> None:
    viewer, platform = coin
    fail_alone(
        ledger,
        Transfer("a", viewer, platform, 5, GIFT, linked=True),
        Outcome.LINKED_EVENT_CHAIN_OPEN,
    )
    plan = ledger.plan(
        [
            Transfer("ok", viewer, platform, 5, GIFT),
            Transfer("a", viewer, platform, 5, GIFT, linked=True),
            Transfer("b", viewer, platform, 5, GIFT, linked=True),
        ]
    )
    assert plan.results == [
        [Outcome.OK, Outcome.LINKED_EVENT_FAILED, Outcome.LINKED_EVENT_CHAIN_OPEN]
    ]
    assert [StoredTransfer(*r).id for r in plan.rows] == ["ok"]
    assert ledger.balances(viewer) == (0, 5, 0, 100)


def test_a_failing_submission_does_not_disturb_its_batch_neighbours(
    ledger: MemLedger, coin: tuple[int, int]
) -> None:
    viewer, platform = coin
    plan = ledger.plan(
        [Transfer("a", viewer, platform, 40, GIFT)],
        [Transfer("b", viewer, platform, 40, GIFT, linked=True), Transfer("x", 0, 0, 1, GIFT)],
        [Transfer("c", viewer, platform, 40, GIFT)],
    )
    assert plan.results == [
        [Outcome.OK],
        [Outcome.LINKED_EVENT_FAILED, Outcome.ACCOUNTS_MUST_BE_DIFFERENT],
        [Outcome.OK],
    ]
    assert ledger.balances(viewer) == (0, 80, 0, 100)
    assert plan.deltas == [(viewer, 0, 80, 0, 0), (platform, 0, 0, 0, 80)]


# --- two-phase: pending, post, void, expiry --------------------------------------------------


@pytest.fixture
def held(ledger: MemLedger) -> tuple[int, int]:
    """A creator with 100 diamonds and a pending payout of 60 of them (id "p", 60 s timeout)."""
    creator, payouts = ledger.open("DIAMOND", NO_OD), ledger.open("DIAMOND")
    ledger.fund(creator, 100)
    pending = Transfer("p", creator, payouts, 60, PAYOUT, kind=PENDING, timeout_s=60)
    assert ledger.submit(pending) == [Outcome.OK]
    assert ledger.balances(creator) == (60, 0, 0, 100)
    assert ledger.balances(payouts) == (0, 0, 60, 0)
    row = ledger.transfers["p"]
    assert (row.kind, row.timeout_s, row.expires_at_us) == ("pending", 60, NOW_US + 60 * SECOND_US)
    return creator, payouts


def _post(amount: int, tid: str = "post", **kw: Any) -> Transfer:
    return Transfer(tid, 0, 0, amount, PAYOUT, kind=POST, pending_id="p")._replace(**kw)


def _void(amount: int = 0, tid: str = "void", **kw: Any) -> Transfer:
    return Transfer(tid, 0, 0, amount, PAYOUT, kind=VOID, pending_id="p")._replace(**kw)


def test_post_the_full_pending_amount(ledger: MemLedger, held: tuple[int, int]) -> None:
    creator, payouts = held
    assert ledger.submit(_post(60)) == [Outcome.OK]
    assert ledger.balances(creator) == (0, 60, 0, 100)
    assert ledger.balances(payouts) == (0, 0, 0, 60)
    row = ledger.transfers["post"]
    assert (row.debit_account_id, row.credit_account_id, row.amount) == (creator, payouts, 60)


def test_post_part_of_the_pending_amount_releases_the_rest(
    ledger: MemLedger, held: tuple[int, int]
) -> None:
    creator, payouts = held
    assert ledger.submit(_post(25, debit_account_id=creator, credit_account_id=payouts)) == [
        Outcome.OK
    ]
    assert ledger.balances(creator) == (0, 25, 0, 100)
    assert ledger.balances(payouts) == (0, 0, 0, 25)


def test_post_more_than_the_pending_amount(ledger: MemLedger, held: tuple[int, int]) -> None:
    fail_alone(ledger, _post(61), Outcome.EXCEEDS_PENDING_AMOUNT)


@pytest.mark.parametrize("amount", [0, -5])
def test_post_of_nothing(ledger: MemLedger, held: tuple[int, int], amount: int) -> None:
    fail_alone(ledger, _post(amount), Outcome.AMOUNT_MUST_BE_POSITIVE)


@pytest.mark.parametrize("amount", [0, 60])
def test_void_releases_the_reservation(
    ledger: MemLedger, held: tuple[int, int], amount: int
) -> None:
    creator, payouts = held
    assert ledger.submit(_void(amount)) == [Outcome.OK]
    assert ledger.balances(creator) == (0, 0, 0, 100)
    assert ledger.balances(payouts) == (0, 0, 0, 0)
    assert ledger.transfers["void"].amount == 60


@pytest.mark.parametrize("amount", [1, 59, 61, -60])
def test_void_of_another_amount(ledger: MemLedger, held: tuple[int, int], amount: int) -> None:
    fail_alone(ledger, _void(amount), Outcome.VOID_AMOUNT_MUST_MATCH_PENDING)


@pytest.mark.parametrize("same_batch", [False, True], ids=["across_batches", "same_batch"])
def test_post_twice(ledger: MemLedger, held: tuple[int, int], same_batch: bool) -> None:
    creator, _ = held
    if same_batch:
        plan = ledger.plan([_post(10)], [_post(10, "post2")], [_void(tid="void2")])
        assert plan.results == [
            [Outcome.OK],
            [Outcome.PENDING_TRANSFER_ALREADY_POSTED],
            [Outcome.PENDING_TRANSFER_ALREADY_POSTED],
        ]
    else:
        assert ledger.submit(_post(10)) == [Outcome.OK]
        fail_alone(ledger, _post(10, "post2"), Outcome.PENDING_TRANSFER_ALREADY_POSTED)
        fail_alone(ledger, _void(tid="void2"), Outcome.PENDING_TRANSFER_ALREADY_POSTED)
    assert ledger.balances(creator) == (0, 10, 0, 100)


@pytest.mark.parametrize("same_batch", [False, True], ids=["across_batches", "same_batch"])
def test_post_after_void(ledger: MemLedger, held: tuple[int, int], same_batch: bool) -> None:
    creator, _ = held
    if same_batch:
        plan = ledger.plan([_void()], [_post(60)], [_void(tid="void2")])
        assert plan.results == [
            [Outcome.OK],
            [Outcome.PENDING_TRANSFER_ALREADY_VOIDED],
            [Outcome.PENDING_TRANSFER_ALREADY_VOIDED],
        ]
    else:
        assert ledger.submit(_void()) == [Outcome.OK]
        fail_alone(ledger, _post(60), Outcome.PENDING_TRANSFER_ALREADY_VOIDED)
    assert ledger.balances(creator) == (0, 0, 0, 100)


def test_replays_of_post_and_void_answer_exists(ledger: MemLedger, held: tuple[int, int]) -> None:
    assert ledger.submit(_post(60)) == [Outcome.OK]
    creator, payouts = held
    # Accounts may be left 0 or named: both are the same post.
    assert ledger.submit(_post(60)) == [Outcome.EXISTS]
    assert ledger.submit(_post(60, debit_account_id=creator, credit_account_id=payouts)) == [
        Outcome.EXISTS
    ]
    fail_alone(ledger, _post(59), Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS)
    assert ledger.balances(creator) == (0, 60, 0, 100)


def test_post_after_expiry_is_refused_but_void_is_allowed(
    ledger: MemLedger, held: tuple[int, int]
) -> None:
    creator, _ = held
    expires_at_us = NOW_US + 60 * SECOND_US
    plan = ledger.plan([_post(60)], now_us=expires_at_us)
    assert plan.results == [[Outcome.PENDING_TRANSFER_EXPIRED]]
    assert nothing_written(plan, ledger)
    assert ledger.plan([_post(60)], now_us=expires_at_us + SECOND_US).results == [
        [Outcome.PENDING_TRANSFER_EXPIRED]
    ]
    assert ledger.plan([_void()], now_us=expires_at_us + SECOND_US).results == [[Outcome.OK]]
    assert ledger.balances(creator) == (0, 0, 0, 100)


def test_post_just_before_expiry(ledger: MemLedger, held: tuple[int, int]) -> None:
    assert ledger.plan([_post(60)], now_us=NOW_US + 60 * SECOND_US - 1).results == [[Outcome.OK]]


def test_a_pending_transfer_without_timeout_never_expires(ledger: MemLedger) -> None:
    creator, payouts = ledger.open("DIAMOND", NO_OD), ledger.open("DIAMOND")
    ledger.fund(creator, 10)
    assert ledger.submit(Transfer("q", creator, payouts, 10, PAYOUT, kind=PENDING)) == [Outcome.OK]
    assert ledger.transfers["q"].expires_at_us is None
    post = Transfer("post", 0, 0, 10, PAYOUT, kind=POST, pending_id="q")
    assert ledger.plan([post], now_us=NOW_US + 400 * 24 * 3600 * SECOND_US).results == [
        [Outcome.OK]
    ]


def test_post_naming_other_accounts(ledger: MemLedger, held: tuple[int, int]) -> None:
    creator, payouts = held
    other = ledger.open("DIAMOND")
    fail_alone(
        ledger, _post(60, debit_account_id=other), Outcome.PENDING_TRANSFER_HAS_DIFFERENT_ACCOUNTS
    )
    fail_alone(
        ledger,
        _post(60, debit_account_id=payouts, credit_account_id=creator),
        Outcome.PENDING_TRANSFER_HAS_DIFFERENT_ACCOUNTS,
    )
    fail_alone(
        ledger, _void(credit_account_id=other), Outcome.PENDING_TRANSFER_HAS_DIFFERENT_ACCOUNTS
    )


def test_post_with_another_code(ledger: MemLedger, held: tuple[int, int]) -> None:
    fail_alone(
        ledger,
        _post(60)._replace(code=TransferCode.GIFT),
        Outcome.PENDING_TRANSFER_HAS_DIFFERENT_CODE,
    )


def test_timeout_on_a_transfer_that_is_not_pending(
    ledger: MemLedger, coin: tuple[int, int], held: tuple[int, int]
) -> None:
    viewer, platform = coin
    fail_alone(
        ledger,
        Transfer("t", viewer, platform, 5, GIFT, timeout_s=10),
        Outcome.TIMEOUT_REQUIRES_PENDING,
    )
    fail_alone(ledger, _post(60, timeout_s=10), Outcome.TIMEOUT_REQUIRES_PENDING)
    fail_alone(ledger, _void(timeout_s=10), Outcome.TIMEOUT_REQUIRES_PENDING)


@pytest.mark.parametrize("timeout_s", [-1, TIMEOUT_MAX_S + 1, 1.5, "10"])
def test_invalid_timeout(ledger: MemLedger, coin: tuple[int, int], timeout_s: Any) -> None:
    viewer, platform = coin
    transfer = Transfer("t", viewer, platform, 5, PAYOUT, kind=PENDING, timeout_s=timeout_s)
    fail_alone(ledger, transfer, Outcome.INVALID_TIMEOUT)


def test_the_longest_timeout_is_accepted(ledger: MemLedger, coin: tuple[int, int]) -> None:
    viewer, platform = coin
    transfer = Transfer("t", viewer, platform, 5, PAYOUT, kind=PENDING, timeout_s=TIMEOUT_MAX_S)
    assert ledger.submit(transfer) == [Outcome.OK]


def test_post_and_void_need_a_pending_id(ledger: MemLedger, held: tuple[int, int]) -> None:
    fail_alone(ledger, _post(60)._replace(pending_id=None), Outcome.PENDING_ID_REQUIRED)
    fail_alone(ledger, _void()._replace(pending_id=None), Outcome.PENDING_ID_REQUIRED)


def test_new_transfers_must_not_name_a_pending_id(
    ledger: MemLedger, coin: tuple[int, int], held: tuple[int, int]
) -> None:
    viewer, platform = coin
    for kind in (TransferKind.POSTED, TransferKind.PENDING):
        fail_alone(
            ledger,
            Transfer("t", viewer, platform, 5, GIFT, kind=kind, pending_id="p"),
            Outcome.PENDING_ID_MUST_BE_BLANK,
        )


def test_post_of_an_unknown_pending_transfer(ledger: MemLedger, held: tuple[int, int]) -> None:
    fail_alone(ledger, _post(60)._replace(pending_id="nope"), Outcome.PENDING_TRANSFER_NOT_FOUND)
    fail_alone(ledger, _void()._replace(pending_id="nope"), Outcome.PENDING_TRANSFER_NOT_FOUND)


def test_post_of_a_transfer_that_is_not_pending(
    ledger: MemLedger, coin: tuple[int, int], held: tuple[int, int]
) -> None:
    viewer, platform = coin
    assert ledger.submit(Transfer("plain", viewer, platform, 5, PAYOUT)) == [Outcome.OK]
    fail_alone(ledger, _post(5)._replace(pending_id="plain"), Outcome.PENDING_TRANSFER_NOT_PENDING)
    assert ledger.submit(_post(60)) == [Outcome.OK]
    # A post is not pending either.
    fail_alone(
        ledger, _void(tid="v")._replace(pending_id="post"), Outcome.PENDING_TRANSFER_NOT_PENDING
    )


def test_pending_and_its_post_in_one_linked_chain(ledger: MemLedger) -> None:
    creator, payouts = ledger.open("DIAMOND", NO_OD), ledger.open("DIAMOND")
    ledger.fund(creator, 100)
    assert ledger.submit(
        Transfer("q", creator, payouts, 70, PAYOUT, kind=PENDING, linked=True),
        Transfer("post", 0, 0, 70, PAYOUT, kind=POST, pending_id="q"),
    ) == [Outcome.OK, Outcome.OK]
    assert ledger.balances(creator) == (0, 70, 0, 100)


def test_a_rolled_back_post_leaves_the_pending_transfer_open(
    ledger: MemLedger, held: tuple[int, int]
) -> None:
    creator, _ = held
    plan = ledger.plan(
        [_post(60, linked=True), Transfer("x", creator, 999, 1, PAYOUT)],
        [_void(tid="v2")],
    )
    assert plan.results == [
        [Outcome.LINKED_EVENT_FAILED, Outcome.CREDIT_ACCOUNT_NOT_FOUND],
        [Outcome.OK],
    ]
    assert ledger.balances(creator) == (0, 0, 0, 100)
    assert ledger.resolutions == {"p": "void_pending"}


def test_a_pending_transfer_that_failed_cannot_be_posted(ledger: MemLedger) -> None:
    creator, payouts = ledger.open("DIAMOND", NO_OD), ledger.open("DIAMOND")
    plan = ledger.plan(
        [Transfer("q", creator, payouts, 70, PAYOUT, kind=PENDING)],
        [Transfer("post", 0, 0, 70, PAYOUT, kind=POST, pending_id="q")],
    )
    assert plan.results == [[Outcome.INSUFFICIENT_FUNDS], [Outcome.PENDING_TRANSFER_NOT_FOUND]]
    assert nothing_written(plan, ledger)


# --- reversals -------------------------------------------------------------------------------


def test_reversal_of_nothing(ledger: MemLedger, coin: tuple[int, int]) -> None:
    viewer, platform = coin
    fail_alone(
        ledger,
        Transfer("r", platform, viewer, 5, TransferCode.REFUND, reverses_id="missing"),
        Outcome.REVERSED_TRANSFER_NOT_FOUND,
    )


def test_reversal_points_at_the_original(ledger: MemLedger, coin: tuple[int, int]) -> None:
    viewer, platform = coin
    assert ledger.submit(Transfer("g", viewer, platform, 30, GIFT)) == [Outcome.OK]
    refund = Transfer("r", platform, viewer, 30, TransferCode.REFUND, reverses_id="g")
    assert ledger.submit(refund) == [Outcome.OK]
    assert ledger.transfers["r"].reverses_id == "g"
    assert ledger.balances(viewer) == (0, 30, 0, 130)
    # The original is untouched: corrections are new transfers.
    assert ledger.transfers["g"].amount == 30


# --- a debit limit (the daily spend cap's leg: economy/gifting.py) ---------------------------


def test_a_debit_limit_refuses_what_would_take_net_debits_past_it_in_one_batch(
    ledger: MemLedger, coin: tuple[int, int]
) -> None:
    day, platform = ledger.open("COIN"), coin[1]
    plan = ledger.plan(
        *(
            [
                Transfer(f"s{n}", day, platform, 4, GIFT, True, debit_limit=10),
                Transfer(f"c{n}", coin[0], platform, 4, GIFT),
            ]
            for n in range(3)
        )
    )
    # 4 + 4 fit under 10; the third would make 12: its whole chain fails, the coins stay.
    assert plan.results[2] == [Outcome.EXCEEDS_DEBIT_LIMIT, Outcome.LINKED_EVENT_FAILED]
    assert ledger.balances(day) == (0, 8, 0, 0)
    assert ledger.balances(coin[0]) == (0, 8, 0, 100)
    # Credits (a reversal's leg) give room back; the limit counts net debits.
    assert ledger.submit(Transfer("back", platform, day, 4, TransferCode.REFUND)) == [Outcome.OK]
    assert ledger.submit(Transfer("s9", day, platform, 6, GIFT, debit_limit=10)) == [Outcome.OK]
    fail_alone(
        ledger, Transfer("s10", day, platform, 1, GIFT, debit_limit=10), Outcome.EXCEEDS_DEBIT_LIMIT
    )
    # A replay is judged as a replay, whatever the limit now.
    assert ledger.submit(Transfer("s9", day, platform, 6, GIFT, debit_limit=1)) == [Outcome.EXISTS]
    fail_alone(
        ledger, Transfer("s11", day, platform, 1, GIFT, debit_limit=-1), Outcome.INVALID_DEBIT_LIMIT
    )
