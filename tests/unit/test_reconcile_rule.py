"""Reconciliation's rule (economy/reconcile.py), without a database: every kind of mismatch
found exactly once, nothing found between equal books, the window, the order."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from giftwave.economy.reconcile import (
    DuplicateRecord,
    Mismatch,
    MismatchKind,
    compare,
    count_mismatches,
    in_window,
)
from giftwave.payments.records import DONE, Record, RecordKind, TopupState, topup_state

DAY_US = 86_400 * 1_000_000

records = st.builds(
    Record,
    kind=st.sampled_from(RecordKind),
    reference=st.text("abcdef0123_", min_size=1, max_size=8),
    amount_minor=st.integers(0, 10**12),
    currency=st.sampled_from(["USD", "EUR", "JPY"]),
    state=st.sampled_from(["paid", "refunded", "processing", "returned", DONE]),
    at_us=st.integers(0, 30 * DAY_US),
)
books = st.lists(records, max_size=30, unique_by=lambda r: (r.kind, r.reference))


def rec(
    reference: str = "pi_1",
    amount: int = 499,
    currency: str = "USD",
    state: str = "paid",
    kind: RecordKind = RecordKind.TOPUP,
    at_us: int = 5 * DAY_US,
) -> Record:
    return Record(kind, reference, amount, currency, state, at_us)


@given(books)
def test_equal_books_have_no_mismatch(book: list[Record]) -> None:
    assert compare(book, list(book)) == []


@given(books, st.data())
def test_a_record_only_on_one_side_is_missing_on_the_other(
    book: list[Record], data: st.DataObject
) -> None:
    if not book:
        return
    gone = data.draw(st.sampled_from(book))
    rest = [r for r in book if r is not gone]
    assert compare(book, rest) == [
        Mismatch(MismatchKind.MISSING_AT_PROVIDER, gone.kind, gone.reference, gone, None)
    ]
    assert compare(rest, book) == [
        Mismatch(MismatchKind.MISSING_IN_LEDGER, gone.kind, gone.reference, None, gone)
    ]


@given(books, st.data())
def test_each_changed_field_is_its_own_mismatch(book: list[Record], data: st.DataObject) -> None:
    if not book:
        return
    mine = data.draw(st.sampled_from(book))
    amount = data.draw(st.booleans())
    state = data.draw(st.booleans())
    currency = data.draw(st.booleans())
    theirs = replace(
        mine,
        amount_minor=mine.amount_minor + 1 if amount else mine.amount_minor,
        state=mine.state + "_x" if state else mine.state,
        currency="XOF" if currency else mine.currency,
        at_us=mine.at_us + 1,  # when it happened on each side may differ: never a mismatch
    )
    provider = [theirs if r is mine else r for r in book]
    expected = []
    if currency:
        expected.append(MismatchKind.CURRENCY_DIFFERS)  # amounts in two currencies: not compared
    elif amount:
        expected.append(MismatchKind.AMOUNT_DIFFERS)
    if state:
        expected.append(MismatchKind.STATE_DIFFERS)
    found = compare(book, provider)
    assert [m.mismatch for m in found] == expected
    assert all((m.ledger, m.provider) == (mine, theirs) for m in found)


@given(books, books, st.randoms(use_true_random=False))
def test_the_answer_does_not_depend_on_the_order_read(
    ledger: list[Record], provider: list[Record], shuffle: random.Random
) -> None:
    first = compare(ledger, provider)
    shuffle.shuffle(ledger)
    shuffle.shuffle(provider)
    assert compare(ledger, provider) == first
    kinds = list(RecordKind)
    keys = [(kinds.index(m.kind), m.reference) for m in first]
    assert keys == sorted(keys)


@given(books, books, st.integers(0, 31 * DAY_US))
def test_the_window_keeps_a_pair_when_any_side_is_in_it(
    ledger: list[Record], provider: list[Record], since_us: int
) -> None:
    everything = compare(ledger, provider)
    windowed = compare(ledger, provider, since_us)
    newest = {}
    for r in ledger + provider:
        key = (r.kind, r.reference)
        newest[key] = max(newest.get(key, -1), r.at_us)
    assert windowed == [m for m in everything if newest[(m.kind, m.reference)] >= since_us]


def test_a_pair_straddling_the_window_is_compared() -> None:
    # Paid at the provider a moment before the window, credited a moment into it.
    before, after = rec(at_us=DAY_US - 1), rec(amount=500, at_us=DAY_US + 1)
    assert [m.mismatch for m in compare([after], [before], DAY_US)] == [MismatchKind.AMOUNT_DIFFERS]
    assert compare([before], [], DAY_US) == []
    assert compare([], [before], DAY_US) == []
    assert compare([], [after], DAY_US)[0].mismatch is MismatchKind.MISSING_IN_LEDGER


def test_same_reference_of_different_kinds_are_different_records() -> None:
    topup, refund = rec(), rec(kind=RecordKind.REFUND, state=DONE, amount=100)
    found = compare([topup, refund], [topup])
    assert [(m.mismatch, m.kind) for m in found] == [
        (MismatchKind.MISSING_AT_PROVIDER, RecordKind.REFUND)
    ]


def test_a_source_answering_a_record_twice_is_a_bug_not_a_mismatch() -> None:
    with pytest.raises(DuplicateRecord, match="ledger has two topup"):
        compare([rec(), rec(amount=1)], [])
    with pytest.raises(DuplicateRecord, match="provider has two"):
        compare([], [rec(), rec()])


def test_counts_name_every_kind() -> None:
    found = compare([rec("a"), rec("b", state="refunded")], [rec("b"), rec("c")])
    assert count_mismatches(found) == {
        "missing_at_provider": 1,
        "missing_in_ledger": 1,
        "currency_differs": 0,
        "amount_differs": 0,
        "state_differs": 1,
    }
    assert count_mismatches([]) == dict.fromkeys(count_mismatches(found), 0)
    assert in_window([rec(at_us=1), rec(at_us=5)], 5) == 1


@pytest.mark.parametrize(
    ("amount", "refunded", "disputed", "state"),
    [
        (499, 0, False, TopupState.PAID),
        (499, 1, False, TopupState.PARTLY_REFUNDED),
        (499, 498, False, TopupState.PARTLY_REFUNDED),
        (499, 499, False, TopupState.REFUNDED),
        (499, 600, False, TopupState.REFUNDED),
        (499, 100, True, TopupState.DISPUTED),
        (499, 499, True, TopupState.DISPUTED),
        (0, 0, False, TopupState.PAID),
    ],
)
def test_a_payments_state_from_its_refunds_and_dispute(
    amount: int, refunded: int, disputed: bool, state: TopupState
) -> None:
    assert topup_state(amount, refunded, disputed) is state
