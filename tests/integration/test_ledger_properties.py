"""Property tests of the ledger on SQLite and PostgreSQL: random concurrent traffic.

Each example opens its own accounts (the database lives for the whole test), funds them, then
fires a random mix of submissions at one PostingEngine at once: linked gift pairs, top-ups,
pending payouts, linked chains, open chains, hopeless overdrafts and reused ids. A second wave
posts, part-posts, voids or races on the payouts that were reserved. Then:

* every outcome is what the rules say, whatever order the batches came in;
* the balances are exactly what the successful transfers add up to (nothing applied twice);
* per asset, value is conserved; no no-overdraft account is below zero; ``verify_ledger``
  is clean;
* replaying every submission with the same ids changes nothing.

The traffic is built so that every outcome is independent of the interleaving: legitimate
spends are covered by the opening balance whatever their order, overdrafts are larger than
all the money there is. That is what makes "the same outcome on replay" a fair demand.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from giftwave.db.urls import DatabaseUrl
from giftwave.ledger.accounts import open_account
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.model import AccountFlags, Outcome, Transfer, TransferCode, TransferKind
from giftwave.ledger.stores import open_store
from giftwave.ledger.verify import verify_ledger

VIEWERS, CREATORS = 3, 2
OPENING_BALANCE = 10_000
MAX_OPS = 14
MAX_CHAIN = 4
MAX_AMOUNT = 60
TOPUP_MAX = 1_000
HOPELESS = 10**9  # more than all the money there is
# Every legitimate spend fits in the opening balance, even if all ops (and their changed
# duplicates, one more each) drain one account: no legitimate outcome depends on the order.
assert MAX_OPS * MAX_CHAIN * (MAX_AMOUNT + 1) <= OPENING_BALANCE

GIFT, TOPUP, PAYOUT = TransferCode.GIFT, TransferCode.TOPUP, TransferCode.PAYOUT
PENDING, POST, VOID = TransferKind.PENDING, TransferKind.POST_PENDING, TransferKind.VOID_PENDING
NO_OD = AccountFlags.NO_OVERDRAFT
_examples = itertools.count()


# --- what to submit, as plain data (account indices, not ids) --------------------------------


@dataclass(frozen=True)
class Op:
    """One submission: ``what`` in gift, topup, payout, chain, open_chain, dup."""

    what: str
    viewer: int = 0
    creator: int = 0
    amounts: tuple[int, ...] = (1,)
    hopeless: bool = False  # carries an amount no account can cover
    target: int = 0  # for dup: the op whose ids it reuses
    changed: bool = False  # for dup: with other fields (a conflict), or an exact replay
    delay_ms: int = 0  # when to submit: spreads the traffic over several batches


def _amount() -> st.SearchStrategy[int]:
    return st.integers(1, MAX_AMOUNT)


@st.composite
def traffic(draw: st.DrawFn) -> tuple[list[Op], list[tuple[str, int, int]]]:
    viewer = st.integers(0, VIEWERS - 1)
    creator = st.integers(0, CREATORS - 1)
    delay = st.sampled_from([0, 0, 1, 2])
    kinds = st.sampled_from(["gift", "gift", "topup", "payout", "chain", "open_chain"])
    ops: list[Op] = [
        # At least one reservation, so that the second wave has something to post.
        Op("payout", creator=draw(creator), amounts=(draw(_amount()),), delay_ms=draw(delay))
    ]
    for _ in range(draw(st.integers(0, MAX_OPS - 1))):
        if len(ops) > 1 and draw(st.integers(0, 5)) == 0:
            target = draw(st.integers(0, len(ops) - 1))
            if ops[target].what != "dup" and not any(
                o.what == "dup" and o.target == target for o in ops
            ):
                changed = draw(st.booleans())
                ops.append(Op("dup", target=target, changed=changed, delay_ms=draw(delay)))
                continue
        what = draw(kinds)
        count = draw(st.integers(2, MAX_CHAIN)) if what == "chain" else 1
        ops.append(
            Op(
                what,
                viewer=draw(viewer),
                creator=draw(creator),
                amounts=tuple(draw(_amount()) for _ in range(count)),
                hopeless=what in ("gift", "payout", "chain") and draw(st.integers(0, 4)) == 0,
                delay_ms=draw(delay),
            )
        )
    # Second wave, per op index: what to do with its reservation if it got one.
    actions = st.tuples(
        st.sampled_from(["post", "partial", "void", "none", "race"]),
        st.integers(1, MAX_AMOUNT),
        delay,
    )
    resolutions = [draw(actions) for _ in ops]
    if resolutions[0][0] not in ("post", "partial"):
        resolutions[0] = ("post", *resolutions[0][1:])
    return ops, resolutions


# --- one example against the database ---------------------------------------------------------


@dataclass
class World:
    prefix: str
    issued: int
    spent: int
    d_issued: int
    payouts: int
    viewers: list[int]
    creators: list[int]

    @property
    def account_ids(self) -> list[int]:
        return [self.issued, self.spent, self.d_issued, self.payouts, *self.viewers, *self.creators]


def open_world(sa_engine: Engine) -> World:
    prefix = f"x{next(_examples)}r{random.randrange(10**9)}"
    with sa_engine.begin() as conn:

        def acct(name: str, asset: str, flags: AccountFlags = AccountFlags.NONE) -> int:
            return open_account(conn, f"{prefix}:{name}", asset, flags=flags).id

        return World(
            prefix=prefix,
            issued=acct("coins_issued", "COIN"),
            spent=acct("gifts_spent", "COIN"),
            d_issued=acct("diamonds_issued", "DIAMOND"),
            payouts=acct("payouts", "DIAMOND"),
            viewers=[acct(f"viewer{i}", "COIN", NO_OD) for i in range(VIEWERS)],
            creators=[acct(f"creator{i}", "DIAMOND", NO_OD) for i in range(CREATORS)],
        )


def build(w: World, ops: Sequence[Op], index: int) -> list[Transfer]:
    op = ops[index]
    tid = f"{w.prefix}:{index}"
    v, c = w.viewers[op.viewer], w.creators[op.creator]
    amount = HOPELESS if op.hopeless else op.amounts[0]
    if op.what == "gift":
        return [
            Transfer(f"{tid}:c", v, w.spent, amount, GIFT, linked=True),
            Transfer(f"{tid}:d", w.d_issued, c, amount, GIFT),
        ]
    if op.what == "topup":
        return [Transfer(tid, w.issued, v, op.amounts[0] * TOPUP_MAX // MAX_AMOUNT, TOPUP)]
    if op.what == "payout":
        return [Transfer(tid, c, w.payouts, amount, PAYOUT, kind=PENDING)]
    if op.what == "chain":
        chain = [
            Transfer(f"{tid}:{k}", v, w.spent, a, GIFT, linked=True)
            for k, a in enumerate(op.amounts)
        ]
        if op.hopeless:
            chain[-1] = chain[-1]._replace(amount=HOPELESS)
        chain[-1] = chain[-1]._replace(linked=False)
        return chain
    if op.what == "open_chain":
        return [Transfer(tid, v, w.spent, op.amounts[0], GIFT, linked=True)]
    assert op.what == "dup"
    original = build(w, ops, op.target)
    if op.changed:
        original[0] = original[0]._replace(amount=original[0].amount + 1)
    return original


def resolution(
    w: World, ops: Sequence[Op], index: int, action: str, amount: int, reserved: int | None
) -> list[tuple[str, list[Transfer]]]:
    """The second-wave submissions for op ``index`` (its pending id is ``prefix:index``),
    each with what it must come to: resolve (ok), missing (not found), race (one of two)."""
    pid = f"{w.prefix}:{index}"
    post = Transfer(f"{pid}:post", 0, 0, reserved or 1, PAYOUT, kind=POST, pending_id=pid)
    void = Transfer(f"{pid}:void", 0, 0, 0, PAYOUT, kind=VOID, pending_id=pid)
    if reserved is None:  # the reservation failed: posting it finds nothing
        return [("missing", [post])] if ops[index].what == "payout" else []
    if action == "post":
        return [("resolve", [post])]
    if action == "partial":
        return [("resolve", [post._replace(amount=min(amount, reserved))])]
    if action == "void":
        return [("resolve", [void])]
    if action == "race":
        return [("race", [post]), ("race", [void])]
    return []


async def fire(
    engine: PostingEngine, submissions: Sequence[tuple[int, list[Transfer]]]
) -> list[list[Outcome]]:
    async def one(delay_ms: int, transfers: list[Transfer]) -> list[Outcome]:
        await asyncio.sleep(delay_ms / 1000)
        return await engine.submit(transfers)

    return await asyncio.gather(*(one(d, t) for d, t in submissions))


@dataclass
class Run:
    world: World
    ops: list[Op]
    submissions: list[tuple[int, list[Transfer]]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # Op.what, or resolve / missing / race
    outcomes: list[list[Outcome]] = field(default_factory=list)
    replayed: list[list[Outcome]] = field(default_factory=list)
    before_replay: tuple[dict[int, tuple[int, ...]], int] = ({}, 0)
    after_replay: tuple[dict[int, tuple[int, ...]], int] = ({}, 0)


def sums(sa_engine: Engine, ids: Sequence[int]) -> tuple[dict[int, tuple[int, ...]], int]:
    with sa_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, debits_pending, debits_posted, credits_pending, credits_posted"
                " FROM accounts"
            )
        ).all()
        count = int(conn.execute(text("SELECT COUNT(*) FROM transfers")).scalar_one())
    wanted = set(ids)
    return {int(r[0]): tuple(int(x) for x in r[1:]) for r in rows if int(r[0]) in wanted}, count


async def run_example(
    db_url: DatabaseUrl,
    sa_engine: Engine,
    ops: list[Op],
    actions: list[tuple[str, int, int]],
) -> Run:
    w = open_world(sa_engine)
    run = Run(w, ops)
    async with PostingEngine(open_store(db_url), expiry_interval_s=3600) as engine:
        adjust = TransferCode.ADJUSTMENT
        funding = [
            Transfer(f"{w.prefix}:fund:v{i}", w.issued, v, OPENING_BALANCE, TOPUP)
            for i, v in enumerate(w.viewers)
        ] + [
            Transfer(f"{w.prefix}:fund:c{i}", w.d_issued, c, OPENING_BALANCE, adjust)
            for i, c in enumerate(w.creators)
        ]
        assert await engine.submit(funding) == [Outcome.OK] * len(funding)

        first = [(op.delay_ms, build(w, ops, i)) for i, op in enumerate(ops)]
        run.submissions += first
        run.kinds += [op.what for op in ops]
        run.outcomes += await fire(engine, first)

        reserved = _reserved(sa_engine, w, ops)
        second: list[tuple[int, list[Transfer]]] = []
        for i, (action, amount, delay_ms) in enumerate(actions):
            for kind, submission in resolution(w, ops, i, action, amount, reserved.get(i)):
                second.append((delay_ms, submission))
                run.kinds.append(kind)
        run.submissions += second
        run.outcomes += await fire(engine, second)

        run.before_replay = sums(sa_engine, w.account_ids)
        run.replayed = await fire(engine, run.submissions)
        run.after_replay = sums(sa_engine, w.account_ids)
    return run


def _reserved(sa_engine: Engine, w: World, ops: Sequence[Op]) -> dict[int, int]:
    """Op index -> amount actually reserved, for each pending transfer that was stored."""
    with sa_engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, amount FROM transfers WHERE kind = 'pending' AND id LIKE :p"),
            {"p": f"{w.prefix}:%"},
        ).all()
    return {int(str(tid).rsplit(":", 1)[1]): int(amount) for tid, amount in rows}


# --- the properties ----------------------------------------------------------------------------


def expected_sums(run: Run) -> dict[int, list[int]]:
    """What the transfers that answered ``ok`` add up to, per account."""
    model: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    pending: dict[str, Transfer] = {}
    applied: set[str] = set()
    ok = [
        t
        for (_, transfers), outcomes in zip(run.submissions, run.outcomes, strict=True)
        for t, o in zip(transfers, outcomes, strict=True)
        if o is Outcome.OK
    ]
    for t in ok:
        assert t.id not in applied, f"{t.id} answered ok twice"
        applied.add(t.id)
        if t.kind == PENDING:
            pending[t.id] = t
    for t in ok:
        if t.kind in (TransferKind.POSTED, PENDING):
            d, c = (0, 2) if t.kind == PENDING else (1, 3)
            model[t.debit_account_id][d] += t.amount
            model[t.credit_account_id][c] += t.amount
            continue
        assert t.pending_id is not None
        p = pending[t.pending_id]
        model[p.debit_account_id][0] -= p.amount
        model[p.credit_account_id][2] -= p.amount
        if t.kind == POST:
            model[p.debit_account_id][1] += t.amount
            model[p.credit_account_id][3] += t.amount
    return model


def check_outcomes(run: Run) -> None:
    """Each submission's outcome follows from the rules alone, not from the interleaving."""
    ops, outcomes = run.ops, run.outcomes
    ok = [all(o.succeeded for o in result) for result in outcomes]
    for result, whole in zip(outcomes, ok, strict=True):
        assert whole or not any(o.succeeded for o in result), result  # all or nothing
    for i, op in enumerate(ops):
        if op.what == "dup":
            continue  # judged with the op it duplicates
        group = [i] + [j for j, o in enumerate(ops) if o.what == "dup" and o.target == i]
        for k in group:
            if op.what == "open_chain":
                assert outcomes[k] == [Outcome.LINKED_EVENT_CHAIN_OPEN]
            elif op.hopeless:
                assert Outcome.INSUFFICIENT_FUNDS in outcomes[k], outcomes[k]
        if op.what == "open_chain" or op.hopeless:
            assert not any(ok[k] for k in group)
        elif len(group) == 2 and ops[group[1]].changed:
            # One id, two meanings: exactly one of them is stored, the other is a conflict.
            assert ok[group[0]] != ok[group[1]], [outcomes[k] for k in group]
            loser = group[1] if ok[group[0]] else group[0]
            assert Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS in outcomes[loser]
        else:
            assert all(ok[k] for k in group), [outcomes[k] for k in group]
    second = list(zip(run.kinds, outcomes, ok, strict=True))[len(ops) :]
    races = [(result, whole) for kind, result, whole in second if kind == "race"]
    for kind, result, _ in second:
        if kind == "resolve":
            assert result == [Outcome.OK]
        elif kind == "missing":
            assert result == [Outcome.PENDING_TRANSFER_NOT_FOUND]
    for (post, post_ok), (void, void_ok) in zip(races[::2], races[1::2], strict=True):
        assert post_ok != void_ok, (post, void)
        assert (post + void).count(Outcome.OK) == 1
        assert {*post, *void} - {Outcome.OK} <= {
            Outcome.PENDING_TRANSFER_ALREADY_POSTED,
            Outcome.PENDING_TRANSFER_ALREADY_VOIDED,
        }


def check_ledger(sa_engine: Engine, run: Run) -> None:
    stored, _ = run.before_replay
    model = expected_sums(run)
    w = run.world
    opening = {v: [0, 0, 0, OPENING_BALANCE] for v in [*w.viewers, *w.creators]}
    for account_id in w.account_ids:
        want = list(model[account_id])
        if account_id in opening:
            want[3] += OPENING_BALANCE
        if account_id == w.issued:
            want[1] += OPENING_BALANCE * VIEWERS
        if account_id == w.d_issued:
            want[1] += OPENING_BALANCE * CREATORS
        assert list(stored[account_id]) == want, account_id
    with sa_engine.connect() as conn:
        per_asset = conn.execute(
            text(
                "SELECT asset, SUM(credits_posted - debits_posted),"
                " SUM(credits_pending - debits_pending) FROM accounts GROUP BY asset"
            )
        ).all()
        overdrawn = conn.execute(
            text(
                "SELECT name FROM accounts WHERE (flags & 1) <> 0"
                " AND credits_posted - debits_posted - debits_pending < 0"
            )
        ).all()
        report = verify_ledger(conn)
    assert {asset: (int(a), int(b)) for asset, a, b in per_asset} == {
        "COIN": (0, 0),
        "DIAMOND": (0, 0),
    }
    assert overdrawn == []
    assert report.ok, report.problems


PROPERTY_SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(plan=traffic())
def test_random_concurrent_traffic_keeps_every_invariant(
    db_url: DatabaseUrl,
    sa_engine: Engine,
    plan: tuple[list[Op], list[tuple[str, int, int]]],
) -> None:
    ops, actions = plan
    run = asyncio.run(run_example(db_url, sa_engine, ops, actions))
    check_outcomes(run)
    check_ledger(sa_engine, run)
    # The replay moved nothing and stored nothing.
    assert run.after_replay == run.before_replay
    for outcomes in run.replayed:
        assert Outcome.OK not in outcomes
    with sa_engine.connect() as conn:
        report = verify_ledger(conn)
    assert report.ok, report.problems


@settings(PROPERTY_SETTINGS, phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(plan=traffic())
def test_replaying_every_submission_answers_exists_or_the_same_failure(
    db_url: DatabaseUrl,
    sa_engine: Engine,
    plan: tuple[list[Op], list[tuple[str, int, int]]],
) -> None:
    ops, actions = plan
    run = asyncio.run(run_example(db_url, sa_engine, ops, actions))
    for submission, first, again in zip(run.submissions, run.outcomes, run.replayed, strict=True):
        want = [Outcome.EXISTS if o.succeeded else o for o in first]
        assert again == want, submission[1]
    assert run.after_replay == run.before_replay
