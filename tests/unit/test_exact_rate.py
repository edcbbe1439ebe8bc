"""A creator earns exactly the published rate, to the hundredth of a diamond (issue 22).

No database: the gift's chain (whole diamonds ``:d`` and hundredths ``:f``, as
economy/gifting.py builds it), settlements (``diamond_fractions.plan_settlement``) and
reversals (``reversals.plan_reversal``) go through the ledger's own pure planner
(``plan_batch``) over accounts held in memory, with the flags the economy opens them with.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources

from hypothesis import given, settings
from hypothesis import strategies as st

from giftwave.economy.diamond_fractions import (
    fraction_reversal,
    plan_settlement,
    split_diamonds,
)
from giftwave.economy.reversals import ReversalAccounts, plan_reversal
from giftwave.ledger.model import (
    Account,
    AccountFlags,
    Outcome,
    StoredTransfer,
    Transfer,
    TransferCode,
)
from giftwave.ledger.planner import AccountState, plan_batch

NOW_US = 1_700_000_000_000_000
NO_OD = AccountFlags.NO_OVERDRAFT
GIFT = TransferCode.GIFT
PRICES = sorted(
    {
        int(g["price_coins"])
        for g in json.loads(
            resources.files("giftwave.economy").joinpath("default_catalog.json").read_text()
        )
    }
)


class Ledger:
    """Committed accounts and transfers, each submission planned as a batch of its own."""

    def __init__(self) -> None:
        self.flags: dict[int, tuple[str, int]] = {}
        self.sums: dict[int, list[int]] = {}  # dp, dpo, cp, cpo
        self.transfers: dict[str, StoredTransfer] = {}
        self.seq = 0
        self.batches = 0

    def open(self, asset: str, flags: AccountFlags = AccountFlags.NONE) -> int:
        account_id = len(self.flags) + 1
        self.flags[account_id] = (asset, int(flags))
        self.sums[account_id] = [0, 0, 0, 0]
        return account_id

    def account(self, account_id: int) -> Account:
        asset, flags = self.flags[account_id]
        dp, dpo, cp, cpo = self.sums[account_id]
        return Account(
            account_id, f"a{account_id}", asset, "", AccountFlags(flags), dp, dpo, cp, cpo
        )

    def submit(self, chain: Sequence[Transfer]) -> list[Outcome]:
        states = {i: AccountState(i, a, f, *self.sums[i]) for i, (a, f) in self.flags.items()}
        self.batches += 1
        plan = plan_batch(
            [chain],
            states,
            dict(self.transfers),
            {},
            first_seq=self.seq + 1,
            batch_seq=self.batches,
            now_us=NOW_US,
        )
        for row in plan.rows:
            self.transfers[row[1]] = StoredTransfer(*row)
        self.seq += len(plan.rows)
        for account_id, *delta in plan.deltas:
            self.sums[account_id] = [
                x + d for x, d in zip(self.sums[account_id], delta, strict=True)
            ]
        return plan.results[0]


class Economy:
    """One viewer, one creator and the platform's accounts, as economy/wallets.py opens them."""

    CREATOR = 7

    def __init__(self) -> None:
        ledger = self.ledger = Ledger()
        self.coins_issued = ledger.open("COIN")
        self.viewer = ledger.open("COIN", NO_OD)
        self.gifts_spent = ledger.open("COIN")
        self.diamonds_issued = ledger.open("DIAMOND")
        self.diamonds = ledger.open("DIAMOND", NO_OD)
        self.debt = ledger.open("DIAMOND")
        self.payouts = ledger.open("DIAMOND")
        self.fraction_issuer = ledger.open("CDIAMOND")
        self.fraction = ledger.open("CDIAMOND", NO_OD)
        self.ok([Transfer("topup", self.coins_issued, self.viewer, 10**12, TransferCode.TOPUP)])

    def ok(self, chain: list[Transfer]) -> None:
        outcomes = self.ledger.submit(chain)
        assert outcomes == [Outcome.OK] * len(chain), outcomes

    def gift(self, send_id: str, coins: int, rate: int) -> None:
        """The chain economy/gifting.py submits (without the daily cap's leg)."""
        whole, hundredths = split_diamonds(coins, rate)
        chain = [Transfer(send_id + ":c", self.viewer, self.gifts_spent, coins, GIFT)]
        if whole:
            chain.append(Transfer(send_id + ":d", self.diamonds_issued, self.diamonds, whole, GIFT))
        if hundredths:
            chain.append(
                Transfer(send_id + ":f", self.fraction_issuer, self.fraction, hundredths, GIFT)
            )
        self.ok([t._replace(linked=i < len(chain) - 1) for i, t in enumerate(chain)])

    def settlement(self) -> list[Transfer]:
        return plan_settlement(
            self.CREATOR,
            self.ledger.account(self.fraction),
            fraction_issuer=self.fraction_issuer,
            diamonds_issued=self.diamonds_issued,
            creator_diamonds=self.diamonds,
        )

    def settle(self) -> None:
        chain = self.settlement()
        if chain:
            self.ok(chain)

    def reverse(self, send_id: str) -> tuple[int, int, int]:
        done = {
            t: self.ledger.transfers[t].amount
            for t in (send_id + ":c", send_id + ":d", send_id + ":f")
            if t in self.ledger.transfers
        }
        accounts = ReversalAccounts(
            sender_coins=self.viewer,
            gifts_spent=self.gifts_spent,
            diamonds_issued=self.diamonds_issued,
            creator_diamonds=self.diamonds,
            creator_diamond_debt=self.debt,
            diamonds_available=self.ledger.account(self.diamonds).available,
            fraction_issuer=self.fraction_issuer,
            creator_fraction=self.fraction,
            fraction_available=self.ledger.account(self.fraction).available,
        )
        chain, receipt = plan_reversal(send_id, done, accounts, None)
        self.ok(chain)
        return receipt

    def pay_out(self, n: int) -> None:
        held = self.ledger.account(self.diamonds).available
        if held > 0:
            self.ok(
                [Transfer(f"payout:{n}", self.diamonds, self.payouts, held, TransferCode.PAYOUT)]
            )

    def earned_hundredths(self) -> int:
        """What the creator was credited, in hundredths: the diamonds held, paid out and owed
        (a debt account's balance is minus the debt), and the fraction not yet settled."""
        account = self.ledger.account
        whole = (
            account(self.diamonds).balance
            + account(self.payouts).balance
            + account(self.debt).balance
        )
        return 100 * whole + account(self.fraction).balance


operations = st.lists(
    st.one_of(
        st.tuples(st.just("gift"), st.sampled_from(PRICES), st.integers(1, 99)),
        st.tuples(st.just("reverse"), st.integers(0, 10_000), st.just(0)),
        st.tuples(st.just("settle"), st.just(0), st.just(0)),
        st.tuples(st.just("payout"), st.just(0), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(rate=st.integers(1, 100), ops=operations)
def test_a_creator_earns_exactly_the_rate_over_any_gifts_reversals_and_settlements(
    rate: int, ops: list[tuple[str, int, int]]
) -> None:
    economy = Economy()
    gifts: list[tuple[str, int]] = []
    kept: dict[str, int] = {}  # the gifts not reversed: send id → coins
    for n, (what, a, b) in enumerate(ops):
        if what == "gift":
            send_id = f"gift:1:k{n}"
            economy.gift(send_id, a * b, rate)
            gifts.append((send_id, a * b))
            kept[send_id] = a * b
        elif what == "reverse" and gifts:
            send_id, coins = gifts[a % len(gifts)]
            if send_id in kept:
                returned, _taken, _debt = economy.reverse(send_id)
                assert returned == coins
                del kept[send_id]
        elif what == "settle":
            economy.settle()
        elif what == "payout":
            economy.pay_out(n)
        # At every moment, never more and never less than the exact rate.
        assert economy.earned_hundredths() == rate * sum(kept.values())
    economy.settle()
    fraction = economy.ledger.account(economy.fraction)
    assert 0 <= fraction.balance < 100
    assert economy.earned_hundredths() == rate * sum(kept.values())
    # The platform's side is the mirror image: every hundredth issued is held by the creator.
    issuer = economy.ledger.account(economy.fraction_issuer)
    assert -issuer.balance == fraction.balance


def test_five_one_coin_roses_at_80_earn_four_diamonds_once_settled() -> None:
    economy = Economy()
    for n in range(5):
        economy.gift(f"gift:1:r{n}", 1, 80)
    # Before: 1 x 80 // 100 = 0 diamonds a Rose, and nothing carried.
    assert economy.ledger.account(economy.diamonds).balance == 0
    assert economy.ledger.account(economy.fraction).balance == 400
    economy.settle()
    assert economy.ledger.account(economy.diamonds).balance == 4
    assert economy.ledger.account(economy.fraction).balance == 0


def test_the_default_rate_has_no_fraction() -> None:
    assert {split_diamonds(coins, 100)[1] for coins in range(10_000)} == {0}
    assert split_diamonds(7, 80) == (5, 60)


def test_two_nodes_settling_at_once_pay_once() -> None:
    economy = Economy()
    for n in range(3):
        economy.gift(f"gift:1:a{n}", 1, 50)  # 50 hundredths each: 150
    assert economy.ledger.account(economy.fraction).balance == 150
    first = economy.settlement()
    same = economy.settlement()  # another node, reading the same state
    assert first == same
    economy.ok(first)
    assert economy.ledger.submit(same) == [Outcome.EXISTS, Outcome.EXISTS]
    assert economy.ledger.account(economy.diamonds).balance == 1


def test_a_stale_settlement_is_refused_never_paid_twice() -> None:
    economy = Economy()
    for n in range(3):
        economy.gift(f"gift:1:a{n}", 1, 50)  # 50 hundredths each: 150
    assert economy.ledger.account(economy.fraction).balance == 150
    early = economy.settlement()  # one diamond
    economy.gift("gift:1:b", 1, 50)  # 200 hundredths: the same debits so far, more credits
    late = economy.settlement()  # two diamonds, under the same ids
    economy.ok(early)
    outcomes = economy.ledger.submit(late)
    assert Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS in outcomes
    # Planned again from the state after the first: the one diamond left.
    economy.settle()
    assert economy.ledger.account(economy.diamonds).balance == 2
    assert economy.ledger.account(economy.fraction).balance == 0


def test_reversing_a_gift_whose_fraction_was_settled_takes_a_diamond_and_gives_change() -> None:
    economy = Economy()
    economy.gift("gift:1:a", 1, 80)  # 80 hundredths
    economy.gift("gift:1:b", 1, 80)  # 160
    economy.settle()  # 1 diamond, 60 hundredths
    assert fraction_reversal(80, 60) == (1, 20)
    assert economy.reverse("gift:1:a") == (1, 1, 0)
    assert economy.ledger.account(economy.diamonds).balance == 0
    assert economy.ledger.account(economy.fraction).balance == 80  # the other Rose, exactly


def test_a_borrowed_diamond_already_paid_out_is_owed() -> None:
    economy = Economy()
    economy.gift("gift:1:a", 1, 80)
    economy.gift("gift:1:b", 1, 80)
    economy.settle()
    economy.pay_out(0)
    assert economy.reverse("gift:1:a") == (1, 0, 1)
    assert economy.ledger.account(economy.debt).balance == -1
    assert economy.earned_hundredths() == 80
