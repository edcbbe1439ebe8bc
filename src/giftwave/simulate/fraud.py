"""Fraudulent actors in a simulation, and the risk rules measured on what the simulator knows.

The actors go through the same economy as everyone (``TopUps``, ``Gifting``, ``Payouts``):

    ring            a new creator goes live; fresh accounts register, buy coins with one of a
                    few shared cards and gift them all to the creator within minutes; the
                    creator asks for a payout at once; the next day some of the cards' owners
                    dispute their payments (chargebacks)
    card tester     an account that tries many small top-ups, one card number after another,
                    each declined by the provider
    refund abuser   a new account buys coins with its own card, gifts them all to a creator
                    who is live, and asks for its money back within the next hours (a share
                    disputes the payment instead: a chargeback)

The rules run as in production, off the gift path (``RiskFollower`` and ``CardTestingScan``
catching up after each simulated day); ``measure`` then compares their flags with the truth.
A rule that only writes evidence by default (``refund_after_gift``) is measured on the users
its evidence names, as its flags would have named them, without the flags changing what they
may do (capped top-ups) in the run.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any, Final

from sqlalchemy import Engine, select

from giftwave.db.tables import risk_flags
from giftwave.economy.gifting import SendGift
from giftwave.economy.risk_follower import CardTestingScan, RiskFollower
from giftwave.economy.risk_rules import FlagDraft, RiskRules, Rule
from giftwave.errors import DomainError
from giftwave.identity.users import Role, User, create_user
from giftwave.live.streams import end_stream, start_stream
from giftwave.payments.base import PaymentEvent, PaymentEventKind
from giftwave.simulate.population import StreamPlan
from giftwave.simulate.scenario import Scenario

CURRENCY: Final = "USD"
BIRTH_DATE: Final = date(1990, 1, 1)
RING_MINUTE_FIRST: Final = 8 * 60  # rings act between 08:00 and 22:00
RING_MINUTE_SPREAD: Final = 14 * 60
SENDS_PER_ACCOUNT_MAX: Final = 20
LAST_MINUTE: Final = 23 * 60 + 29  # the day's end-of-day work runs at 23:30


@dataclass(slots=True)
class Truth:
    """Who the simulator made fraudulent."""

    ring_creators: set[int] = field(default_factory=set)
    ring_members: set[int] = field(default_factory=set)
    card_testers: set[int] = field(default_factory=set)
    refund_abusers: set[int] = field(default_factory=set)
    honest_creators: set[int] = field(default_factory=set)
    disputes_due: list[tuple[str, str, int]] = field(default_factory=list)  # order, payment, ¢

    @property
    def fraudulent(self) -> set[int]:
        return self.ring_creators | self.ring_members | self.card_testers | self.refund_abusers


@dataclass(frozen=True, slots=True)
class RuleScore:
    rule: str
    flagged: int  # distinct users
    true_positives: int  # of them, fraudulent
    targets: int  # the actors this rule is meant to catch (0: none simulated)
    caught: int  # of the targets, flagged by this rule
    evidence_only: bool = False  # "flagged": the users its evidence named (no flag raised)

    @property
    def precision(self) -> float | None:
        return None if self.flagged == 0 else self.true_positives / self.flagged

    @property
    def recall(self) -> float | None:
        return None if self.targets == 0 else self.caught / self.targets

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "flagged": self.flagged,
            "true_positives": self.true_positives,
            "targets": self.targets,
            "caught": self.caught,
            "precision": self.precision,
            "recall": self.recall,
            "evidence_only": self.evidence_only,
        }


@dataclass(frozen=True, slots=True)
class RiskReport:
    rules: list[RuleScore]
    rings: int
    rings_caught: int
    card_testers: int
    card_testers_caught: int
    honest_creators: int
    honest_creators_flagged: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "rules": [r.as_dict() for r in self.rules],
            "rings": self.rings,
            "rings_caught": self.rings_caught,
            "card_testers": self.card_testers,
            "card_testers_caught": self.card_testers_caught,
            "honest_creators": self.honest_creators,
            "honest_creators_flagged": self.honest_creators_flagged,
        }


# What each rule is meant to catch among the simulated actors.
TARGETS: Final[dict[Rule, Callable[[Truth], set[int]]]] = {
    Rule.CARD_TESTING: lambda t: t.card_testers,
    Rule.FUNNEL: lambda t: t.ring_creators,
    Rule.FAST_CYCLE: lambda t: t.ring_creators,
    Rule.CHARGEBACKS: lambda t: t.ring_creators,
    Rule.REFUND_AFTER_GIFT: lambda t: t.refund_abusers,
    Rule.SHARED_CARD: lambda t: t.ring_members,
}


def measure(db: Engine, truth: Truth, evidence: dict[str, set[int]] | None = None) -> RiskReport:
    """Each rule's flags against the truth; the headline figures. ``evidence``: the users each
    evidence-only rule named (measured as if they were its flags; they flag nobody)."""
    with db.connect() as conn:
        rows = conn.execute(select(risk_flags.c.rule, risk_flags.c.user_id)).all()
    by_rule: dict[str, set[int]] = {}
    for rule, user in rows:
        by_rule.setdefault(str(rule), set()).add(int(user))
    named = evidence or {}
    scores = []
    for rule, targets_of in TARGETS.items():
        evidence_only = rule.value in named and rule.value not in by_rule
        flagged = named[rule.value] if evidence_only else by_rule.get(rule.value, set())
        targets = targets_of(truth)
        scores.append(
            RuleScore(
                rule.value,
                len(flagged),
                len(flagged & truth.fraudulent),
                len(targets),
                len(flagged & targets),
                evidence_only,
            )
        )
    anyone = set().union(*by_rule.values()) if by_rule else set()
    ring_rules = (Rule.FUNNEL, Rule.FAST_CYCLE, Rule.CHARGEBACKS)
    ring_flagged = set().union(*(by_rule.get(r.value, set()) for r in ring_rules))
    return RiskReport(
        rules=scores,
        rings=len(truth.ring_creators),
        rings_caught=len(truth.ring_creators & ring_flagged),
        card_testers=len(truth.card_testers),
        card_testers_caught=len(truth.card_testers & by_rule.get(Rule.CARD_TESTING.value, set())),
        honest_creators=len(truth.honest_creators),
        honest_creators_flagged=len(truth.honest_creators & anyone),
    )


def run_rules(db: Engine, rules: RiskRules, evidence: dict[str, set[int]]) -> None:
    """What the engine's loop does, to the end of the ledger (after a simulated day); the
    users an evidence-only rule names are added to ``evidence`` (by rule)."""

    def named(draft: FlagDraft) -> None:
        evidence.setdefault(draft.rule.value, set()).add(draft.user_id)

    RiskFollower(db, rules, evidence=named).catch_up(max_chunks=100_000)
    CardTestingScan(db, rules).run_once()


class FraudActors:
    """Plays the scenario's rings, card testers and refund abusers on the days they are due."""

    def __init__(self, sim: Any, scenario: Scenario, truth: Truth) -> None:
        self.sim = sim  # run._Simulation: its economy, clock and provider
        self.f = scenario.fraud
        self.days = scenario.days
        self.rng = random.Random(scenario.seed * 7_919 + 1)
        self.truth = truth
        self.handles = 0
        self.abuse_orders: dict[int, tuple[str, str, int]] = {}  # abuser → order, payment, ¢

    def plans_for(
        self, day: int, streams: list[StreamPlan]
    ) -> list[tuple[int, Callable[[], Awaitable[None]]]]:
        """(minute, act) of every actor due on ``day``: rings, testers and refund abusers
        spread over days (an abuser's gifts while a stream is live, its refund later)."""
        acts: list[tuple[int, Callable[[], Awaitable[None]]]] = []
        for k in range(self.f.refund_abusers):
            if (k + self.days // 3) % self.days == day:
                stream = self.rng.choice(streams)
                minute = stream.start_minute + self.rng.randrange(max(1, stream.minutes - 1))
                later = minute + self.rng.randint(1, self.f.refund_abuse_delay_min)
                acts.append((minute, partial(self._abuse_gifts, k, stream.creator)))
                acts.append((min(later, LAST_MINUTE), partial(self._abuse_refund, k)))
        for k in range(self.f.rings):
            if k % self.days == day:
                minute = RING_MINUTE_FIRST + self.rng.randrange(RING_MINUTE_SPREAD)
                acts.append((minute, partial(self._ring, k)))
        for k in range(self.f.card_testers):
            if (k + self.days // 2) % self.days == day:
                minute = self.rng.randrange(24 * 60 - 60)
                acts.append((minute, partial(self._card_tester, k)))
        return sorted(acts, key=lambda a: a[0])

    def _new_user(self, prefix: str, role: Role, today: date) -> User:
        self.handles += 1
        economy = self.sim.economy
        with self.sim.db.begin() as conn:
            user = create_user(
                conn,
                handle=f"{prefix}{self.handles}",
                role=role,
                birth_date=BIRTH_DATE,
                country="US",
                today=today,
                age_rule=economy.age_rule,
            )
        economy.wallets.open_users([user.id])
        return user

    async def _ring(self, k: int) -> None:
        sim, f = self.sim, self.f
        today = sim.today()
        creator = self._new_user("studio", Role.CREATOR, today)
        self.truth.ring_creators.add(creator.id)
        with sim.db.begin() as conn:
            stream = start_stream(conn, creator.id, title="Giveaway night").id
        for i in range(f.ring_accounts):
            member = self._new_user("fan", Role.VIEWER, today)
            self.truth.ring_members.add(member.id)
            card = f"4000{k:06d}{i % f.ring_cards:06d}"
            order, payment = await sim.buy_as(member, f.ring_coins_each, card, f"ring{k}.{i}")
            if self.rng.random() < f.ring_chargeback_rate:
                self.truth.disputes_due.append((order.id, payment, order.amount_minor))
            await self._gift_everything(member, stream, f"ring{k}.{i}")
        with sim.db.begin() as conn:
            end_stream(conn, stream, creator.id, admin=False)
        sim.economy.gifting.forget_stream(stream)
        view = sim.economy.wallets.view(creator.id)
        try:  # left in the review queue: an operator decides it, with the risk queue
            await sim.economy.payouts.request(creator, view.diamonds, f"ring{k}", today)
        except DomainError as exc:
            sim.refused("ring_payout_" + exc.code)

    async def _gift_everything(self, member: User, stream: str, key: str) -> None:
        economy = self.sim.economy
        coins = economy.wallets.coins_available(member.id)
        prices = sorted(
            (g.price_coins, g.gift_id)
            for g in economy.catalog.gifts().values()
            if g.available_at(self.sim.clock())
        )
        for n in range(SENDS_PER_ACCOUNT_MAX):
            affordable = [p for p in prices if p[0] <= coins]
            if not affordable:
                return
            price, gift_id = affordable[-1]
            try:
                await economy.gifting.send(SendGift(member, stream, gift_id, 1, f"{key}.{n}"))
            except DomainError as exc:
                self.sim.refused("ring_gift_" + exc.code)
                return
            coins -= price

    async def _card_tester(self, k: int) -> None:
        sim = self.sim
        tester = self._new_user("buyer", Role.VIEWER, sim.today())
        self.truth.card_testers.add(tester.id)
        address = f"tester-{k}"
        for i in range(self.f.card_tests_each):
            card = f"4111{k:06d}{i:06d}"
            try:
                await sim.decline_as(tester, card, f"test{k}.{i}", address)
            except DomainError as exc:  # blocked once caught: the attempt goes no further
                sim.refused("card_test_" + exc.code)
                return

    async def _abuse_gifts(self, k: int, creator: int) -> None:
        sim = self.sim
        abuser = self._new_user("fan", Role.VIEWER, sim.today())
        self.truth.refund_abusers.add(abuser.id)
        card = f"4242{k:06d}000000"
        order, payment = await sim.buy_as(abuser, self.f.refund_abuse_coins, card, f"abuse{k}")
        self.abuse_orders[k] = (order.id, payment, order.amount_minor)
        await self._gift_everything(abuser, sim.stream_ids[creator], f"abuse{k}")

    async def _abuse_refund(self, k: int) -> None:
        """The abuser asks for the money back (or disputes it): the provider's event."""
        order_id, payment_id, amount = self.abuse_orders.pop(k)
        dispute = self.rng.random() < self.f.refund_abuse_dispute_share
        kind = PaymentEventKind.DISPUTED if dispute else PaymentEventKind.REFUNDED
        await self.sim.economy.topups.handle_event(
            PaymentEvent(
                "sandbox",
                f"evt_sim_abuse_{kind.value}_{order_id}",
                kind,
                payment_id,
                order_id,
                amount,
                CURRENCY,
            )
        )

    async def disputes(self) -> None:
        """The stolen cards' owners dispute yesterday's ring payments."""
        due, self.truth.disputes_due = self.truth.disputes_due, []
        for order_id, payment_id, amount in due:
            await self.sim.economy.topups.handle_event(
                PaymentEvent(
                    "sandbox",
                    f"evt_sim_ring_dispute_{order_id}",
                    PaymentEventKind.DISPUTED,
                    payment_id,
                    order_id,
                    amount,
                    CURRENCY,
                )
            )
