"""Play a scenario through the real economy, in a scratch SQLite database of its own.

Each simulated minute: streams start and end (``live.streams``), goals are set
(``live.goals``), viewers short of coins buy them (``TopUps.create_order``, then the sandbox
provider's ``succeeded`` event handed to ``TopUps.handle_event``: the event path of a verified
webhook, without the HTTP hop and signature), and every planned gift goes through
``Gifting.send`` concurrently, so the real ``PostingEngine`` batches them. At the end of each
day some of the day's top-ups are disputed, and some refunded (that day, or a few days later:
``refund_delay_days_max``; the same event path, so the real clawbacks run), creators at the
payout minimum request a payout that the operator approves, viewer counts are recorded and the
rollup job catches up. The clock is simulated
(``clock.simulated_clock``), so daily limits and statements see simulated days.

Nothing touches the operator's database. The per-user gift rate limit is off (a simulated
minute takes milliseconds of real time); every other check runs as in production.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
from sqlalchemy import Engine, update

from giftwave.analytics.reports import (
    EconomyReport,
    StreamReport,
    economy_report,
    stream_report,
)
from giftwave.analytics.rollup import Rollup, record_viewers
from giftwave.clock import simulated_clock
from giftwave.config import Settings
from giftwave.db.engine import make_engine, migrate
from giftwave.db.tables import coin_packages
from giftwave.db.urls import parse_database_url
from giftwave.economy.gifting import SendGift
from giftwave.economy.packages import list_packages, put_package
from giftwave.economy.services import Economy, risk_rules_of
from giftwave.economy.topups import Order
from giftwave.errors import DomainError
from giftwave.identity.users import Role, User, create_user
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.stores import open_store
from giftwave.ledger.verify import verify_ledger
from giftwave.live.goals import GoalKind, clear_goal, set_goal
from giftwave.live.streams import end_stream, start_stream
from giftwave.payments.base import PaymentEvent, PaymentEventKind
from giftwave.payments.sandbox import SandboxProvider
from giftwave.simulate.fraud import FraudActors, RiskReport, Truth, measure, run_rules
from giftwave.simulate.population import DayPlan, Population, Send
from giftwave.simulate.scenario import Scenario

FIRST_DAY: Final = date(2025, 1, 6)  # a Monday: cohort weeks start on whole weeks
MINUTE_US: Final = 60_000_000
CURRENCY: Final = "USD"
BIRTH_DATE: Final = date(1990, 1, 1)
GOAL_TARGET_COINS: Final = 1_000


@dataclass(slots=True)
class Tally:
    """What the simulator itself did, counted on its side (a check on the figures)."""

    viewers_watched: int = 0
    sessions: int = 0
    gifters: int = 0
    sends_planned: int = 0
    sends_committed: int = 0
    coins_gifted: int = 0
    topups: int = 0
    coins_bought: int = 0
    refunds: int = 0
    chargebacks: int = 0
    payouts: int = 0
    churned: int = 0
    refused: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class SimulationResult:
    scenario: Scenario
    figures: EconomyReport
    busiest_stream: StreamReport | None
    tally: Tally
    ledger_clean: bool
    ledger_problems: list[str]
    transfers: int
    day_seconds: list[float]
    risk: RiskReport

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.model_dump(),
            "figures": self.figures.as_dict(),
            "busiest_stream": None
            if self.busiest_stream is None
            else self.busiest_stream.as_dict(),
            "tally": asdict(self.tally),
            "ledger_clean": self.ledger_clean,
            "ledger_problems": self.ledger_problems,
            "transfers": self.transfers,
            "day_seconds": self.day_seconds,
            "risk": self.risk.as_dict(),
        }


def scratch_dir() -> str:
    """Where scratch databases go: memory-backed /dev/shm when there is one."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else ""


def simulate(
    scenario: Scenario, progress: Callable[[int, int], None] | None = None
) -> SimulationResult:
    """Run the scenario; ``progress(done_days, days)`` after each simulated day."""
    with tempfile.TemporaryDirectory(prefix="giftwave-sim-", dir=scratch_dir() or None) as tmp:
        url = f"sqlite:///{Path(tmp) / 'economy.db'}"
        db = make_engine(parse_database_url(url))
        try:
            migrate(db)
            return asyncio.run(_Simulation(scenario, url, db, progress).run())
        finally:
            db.dispose()


class _Simulation:
    def __init__(
        self,
        scenario: Scenario,
        url: str,
        db: Engine,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.s = scenario
        self.url = url
        self.db = db
        self.progress = progress
        self.now = [_minute_us(FIRST_DAY, 0)]
        self.tally = Tally()
        self.users: dict[int, User] = {}  # viewer index → user
        self.creators: list[User] = []
        self.stream_ids: dict[int, str] = {}
        self.balance: dict[int, int] = {}  # viewer index → coins they can spend
        self.day_topups: list[tuple[str, str, int]] = []  # (order, payment, amount) today
        self.gifters: set[int] = set()
        self.order_buyers: dict[str, int] = {}
        self.watchers: set[int] = set()
        self.truth = Truth()
        self.fraud = FraudActors(self, scenario, self.truth)
        self.evidence: dict[str, set[int]] = {}  # rule → users its evidence named
        # Honest refunds asked for on a later day: day → (order, payment, amount).
        self.refunds_due: dict[int, list[tuple[str, str, int]]] = {}
        self.settings = Settings(
            database_url=url,
            gift_rate_per_s=0,
            creator_diamonds_per_100_coins=scenario.diamonds_per_100_coins,
            payout_min_cents=scenario.economy.payout_min_cents,
            diamond_value_usd_micros=scenario.economy.diamond_value_usd_micros,
            password_time_cost=1,
            password_memory_kib=8,
        )

    def clock(self) -> int:
        return self.now[0]

    def today(self) -> date:
        return datetime.fromtimestamp(self.now[0] / 1e6, UTC).date()

    async def run(self) -> SimulationResult:
        with simulated_clock(self.clock):
            engine = PostingEngine(open_store(parse_database_url(self.url)), clock_us=self.clock)
            async with engine, httpx.AsyncClient() as client:
                provider = SandboxProvider(
                    db=self.db,
                    secret=secrets.token_urlsafe(16),
                    tolerance_s=300,
                    client=client,
                    webhook_url="http://simulation.invalid/v1/payments/sandbox/webhook",
                )
                self.economy = Economy.build(self.settings, self.db, engine, provider)
                self.provider = provider
                self._setup()
                gifts = [
                    (g.gift_id, g.price_coins)
                    for g in self.economy.catalog.gifts().values()
                    if g.available_at(self.clock())
                ]
                population = Population(self.s, gifts)
                rollup = Rollup(self.db)
                day_seconds = []
                for day in range(self.s.days):
                    started = time.perf_counter()
                    plan = population.plan_day()
                    await self._play_day(day, plan)
                    await asyncio.to_thread(rollup.catch_up)
                    await asyncio.to_thread(
                        run_rules, self.db, risk_rules_of(self.settings), self.evidence
                    )
                    day_seconds.append(round(time.perf_counter() - started, 3))
                    if self.progress is not None:
                        self.progress(day + 1, self.s.days)
            return self._result(day_seconds)

    def _setup(self) -> None:
        today = FIRST_DAY
        self.economy.seed_defaults()
        with self.db.begin() as conn:
            if self.s.economy.packages:
                conn.execute(update(coin_packages).values(active=False))
                for p in self.s.economy.packages:
                    put_package(conn, CURRENCY, p.coins, p.price_cents)
            for k in range(self.s.population.creators):
                self.creators.append(
                    create_user(
                        conn,
                        handle=f"creator{k}",
                        role=Role.CREATOR,
                        birth_date=BIRTH_DATE,
                        country="US",
                        today=today,
                        age_rule=self.economy.age_rule,
                    )
                )
            self.all_packages = list_packages(conn, CURRENCY)
        self.truth.honest_creators.update(c.id for c in self.creators)

    async def _play_day(self, day: int, plan: DayPlan) -> None:
        the_day = FIRST_DAY + timedelta(days=day)
        self.tally.sessions += plan.sessions
        self.tally.churned += plan.churned
        self.watchers |= plan.watchers
        self.tally.sends_planned += len(plan.sends)
        by_minute: dict[int, list[Send]] = {}
        for send in plan.sends:
            by_minute.setdefault(send.minute, []).append(send)
        self.now[0] = _minute_us(the_day, 0)
        buyers = sorted({send.viewer for send in plan.sends} - self.users.keys())
        if buyers:
            await asyncio.to_thread(self._new_viewers, buyers, the_day)
        await self.fraud.disputes()  # yesterday's stolen cards
        acts: dict[int, list[Callable[[], Awaitable[None]]]] = {}
        for minute, act in self.fraud.plans_for(day, plan.streams):
            acts.setdefault(minute, []).append(act)
        first = min(p.start_minute for p in plan.streams)
        last = max(p.start_minute + p.minutes for p in plan.streams)
        for minute in sorted(m for m in acts if m < first):
            self.now[0] = _minute_us(the_day, minute)
            for act in acts.pop(minute):
                await act()
        samples: list[tuple[str, int, int]] = []
        stream_events = {
            m
            for p in plan.streams
            for m in (p.start_minute, p.goal_from, p.start_minute + p.minutes)
        }
        for minute in range(first, last + 1):
            self.now[0] = _minute_us(the_day, minute)
            if minute in stream_events:
                await asyncio.to_thread(self._streams_at, plan, minute)
            for p in plan.streams:
                offset = minute - p.start_minute
                if 0 <= offset < p.minutes:
                    samples.append(
                        (
                            self.stream_ids[p.creator],
                            self.now[0],
                            plan.viewers_per_minute[p.creator][offset],
                        )
                    )
            sends = by_minute.get(minute)
            if sends:
                await self._top_up_for(sends, the_day)
                await self._gift(sends)
            for act in acts.pop(minute, []):
                await act()
        for minute in sorted(acts):
            self.now[0] = _minute_us(the_day, minute)
            for act in acts[minute]:
                await act()
        self.now[0] = _minute_us(the_day, 23 * 60 + 30)
        await asyncio.to_thread(record_viewers, self.db, samples)
        await self._refunds(day)
        await self._payouts(the_day)

    def _streams_at(self, plan: DayPlan, minute: int) -> None:
        with self.db.begin() as conn:
            for p in plan.streams:
                creator = self.creators[p.creator]
                if minute == p.start_minute:
                    stream = start_stream(conn, creator.id, title=f"Live with creator{p.creator}")
                    self.stream_ids[p.creator] = stream.id
                elif minute == p.goal_from:
                    set_goal(
                        conn,
                        self.stream_ids[p.creator],
                        GoalKind.COINS,
                        GOAL_TARGET_COINS,
                        "Tonight's goal",
                        None,
                    )
                elif minute == p.start_minute + p.minutes:
                    clear_goal(conn, self.stream_ids[p.creator])
                    end_stream(conn, self.stream_ids[p.creator], creator.id, admin=False)
                    self.economy.gifting.forget_stream(self.stream_ids[p.creator])

    async def _top_up_for(self, sends: list[Send], today: date) -> None:
        need: Counter[int] = Counter()
        for send in sends:
            need[send.viewer] += send.price_coins
        short = {
            v: coins - self.balance.get(v, 0)
            for v, coins in need.items()
            if coins > self.balance.get(v, 0)
        }
        # One after another: on SQLite concurrent writers only wait for each other's lock
        # (busy_timeout sleeps), which made top-ups at once several times slower.
        for viewer, coins in sorted(short.items()):
            await self._buy(viewer, coins, today)
        if short:
            self.balance.update(await asyncio.to_thread(self._coins_available, list(short)))

    def _coins_available(self, viewers: list[int]) -> dict[int, int]:
        """What each of these viewers can spend now, in one query."""
        wallets = self.economy.wallets
        accounts = {v: wallets.user(self.users[v].id).coins for v in viewers}
        available = wallets.available(list(accounts.values()))
        return {v: available[a] for v, a in accounts.items()}

    async def _buy(self, viewer: int, shortfall: int, today: date) -> None:
        order, payment_id = await self.buy_as(
            self.users[viewer], shortfall, f"5{viewer:015d}", f"sim-{self.now[0]}"
        )
        self.day_topups.append((order.id, payment_id, order.amount_minor))
        self.order_buyers[order.id] = viewer

    async def buy_as(self, user: User, shortfall: int, card: str, key: str) -> tuple[Order, str]:
        """Coins for ``user`` (the smallest package covering ``shortfall``), paid with
        ``card``: the order and its payment."""
        order, payment_id = await self._checkout(user, shortfall, key, None)
        await self._tell(order, payment_id, PaymentEventKind.SUCCEEDED, card)
        self.tally.topups += 1
        self.tally.coins_bought += order.coins
        return order, payment_id

    async def decline_as(self, user: User, card: str, key: str, address: str) -> None:
        """A small top-up the provider declines (a card tester's try)."""
        order, payment_id = await self._checkout(user, 1, key, address)
        await self._tell(order, payment_id, PaymentEventKind.FAILED, card)

    async def _checkout(
        self, user: User, shortfall: int, key: str, address: str | None
    ) -> tuple[Order, str]:
        package_id, coins = self._package_for(shortfall)
        order = await self.economy.topups.create_order(
            user,
            package_id=package_id,
            coins=coins,
            currency=CURRENCY,
            idempotency_key=key,
            site_url="http://simulation.invalid",
            return_url="http://simulation.invalid/shop",
            today=self.today(),
            address_hash=address,
        )
        assert order.provider_session_id is not None
        return order, self.provider.payment_id(order.provider_session_id)

    async def _tell(self, order: Order, payment_id: str, kind: PaymentEventKind, card: str) -> None:
        """The provider's webhook, as verified (no HTTP hop): with the card's fingerprint."""
        await self.economy.topups.handle_event(
            PaymentEvent(
                "sandbox",
                f"evt_sim_{order.id}",
                kind,
                payment_id,
                order.id,
                order.amount_minor,
                CURRENCY,
                self.provider.card_fingerprint(card),
            )
        )

    def _package_for(self, shortfall: int) -> tuple[int | None, int | None]:
        """The smallest package that covers it, else a custom amount (at least 30 coins)."""
        for package in sorted(self.all_packages, key=lambda p: p.coins):
            if package.coins >= shortfall:
                return package.id, None
        return None, max(30, shortfall)

    def _new_viewers(self, viewers: list[int], today: date) -> None:
        """Register the day's first-time buyers and open their accounts, all at once."""
        with self.db.begin() as conn:
            made = {
                viewer: create_user(
                    conn,
                    handle=f"viewer{viewer}",
                    role=Role.VIEWER,
                    birth_date=BIRTH_DATE,
                    country="US",
                    today=today,
                    age_rule=self.economy.age_rule,
                )
                for viewer in viewers
            }
        self.economy.wallets.open_users(user.id for user in made.values())
        self.users.update(made)

    async def _gift(self, sends: list[Send]) -> None:
        gifting = self.economy.gifting
        base = self.now[0]

        async def one(i: int, send: Send) -> None:
            user = self.users[send.viewer]
            try:
                sent = await gifting.send(
                    SendGift(user, self.stream_ids[send.creator], send.gift_id, 1, f"s{base}-{i}")
                )
            except DomainError as exc:
                self.refused(exc.code)
                return
            self.tally.sends_committed += 1
            self.tally.coins_gifted += sent.coins
            self.balance[send.viewer] = min(self.balance.get(send.viewer, 0), sent.balance_coins)
            self.gifters.add(send.viewer)

        # Each viewer's sends in plan order; different viewers at once (one ledger batch).
        for send in sends:
            self.balance[send.viewer] = self.balance.get(send.viewer, 0) - send.price_coins
        await asyncio.gather(*(one(i, send) for i, send in enumerate(sends)))
        for viewer in {s.viewer for s in sends}:
            self.balance[viewer] = max(0, self.balance.get(viewer, 0))

    def refused(self, code: str) -> None:
        self.tally.refused[code] = self.tally.refused.get(code, 0) + 1

    async def _refunds(self, day: int) -> None:
        """The day's top-ups some honest buyers dispute (today) or ask back (today, or on a
        later day up to ``refund_delay_days_max``); then the refunds due today."""
        rng = random.Random(self.s.seed * 1_000_003 + day)
        rules = self.s.economy
        for order_id, payment_id, amount in self.day_topups:
            x = rng.random()
            if x < rules.chargeback_rate:
                self.tally.chargebacks += 1
                await self._ask_back(PaymentEventKind.DISPUTED, order_id, payment_id, amount)
            elif x < rules.chargeback_rate + rules.refund_rate:
                late = rules.refund_delay_days_max and rng.randint(0, rules.refund_delay_days_max)
                self.refunds_due.setdefault(day + late, []).append((order_id, payment_id, amount))
        self.day_topups.clear()
        for order_id, payment_id, amount in self.refunds_due.pop(day, []):
            self.tally.refunds += 1
            await self._ask_back(PaymentEventKind.REFUNDED, order_id, payment_id, amount)

    async def _ask_back(
        self, kind: PaymentEventKind, order_id: str, payment_id: str, amount: int
    ) -> None:
        """The provider's refund or dispute event for an honest buyer's top-up."""
        await self.economy.topups.handle_event(
            PaymentEvent(
                "sandbox",
                f"evt_sim_{kind.value}_{order_id}",
                kind,
                payment_id,
                order_id,
                amount,
                CURRENCY,
            )
        )
        await self._reread_balance(order_id)

    async def _reread_balance(self, order_id: str) -> None:
        """A clawback took coins: what the order's buyer can spend now."""
        buyer = self.order_buyers[order_id]
        self.balance[buyer] = await asyncio.to_thread(
            self.economy.wallets.coins_available, self.users[buyer].id
        )

    async def _payouts(self, today: date) -> None:
        payouts = self.economy.payouts
        policy = payouts.policy
        # What a serving process's loop does every half minute: hundredths of a diamond
        # (a rate below 100 per 100 coins) become whole diamonds before the balances are read.
        await self.economy.fractions.settle_due()
        for creator in self.creators:
            view = await asyncio.to_thread(self.economy.wallets.view, creator.id)
            if view.diamonds <= 0 or policy.cents_for(view.diamonds) < policy.min_cents:
                continue
            try:
                payout = await payouts.request(creator, view.diamonds, f"sim-{today}", today)
                await payouts.review(payout.id, None, True, "simulated review")
            except DomainError as exc:
                self.refused("payout_" + exc.code)
                continue
            self.tally.payouts += 1

    def _result(self, day_seconds: list[float]) -> SimulationResult:
        self.tally.viewers_watched = len(self.watchers)
        self.tally.gifters = len(self.gifters)
        rules = self.s.economy
        with self.db.connect() as conn:
            check = verify_ledger(conn)
            figures = economy_report(
                conn,
                payout_min_cents=rules.payout_min_cents,
                diamond_value_usd_micros=rules.diamond_value_usd_micros,
                days=min(366, self.s.days),
            )
            report = _busiest_stream(conn, self.stream_ids, self.clock())
        return SimulationResult(
            scenario=self.s,
            figures=figures,
            busiest_stream=report,
            tally=self.tally,
            ledger_clean=check.ok,
            ledger_problems=list(check.problems)[:20],
            transfers=check.transfers,
            day_seconds=day_seconds,
            risk=measure(self.db, self.truth, self.evidence),
        )


def _busiest_stream(conn: Any, stream_ids: dict[int, str], now: int) -> StreamReport | None:
    """The last day's stream with the most coins."""
    reports = [stream_report(conn, sid, now_us=now) for sid in stream_ids.values()]
    found = [r for r in reports if r is not None]
    return max(found, key=lambda r: (r.coins, r.stream_id), default=None)


def _minute_us(day: date, minute: int) -> int:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return int(start.timestamp()) * 1_000_000 + minute * MINUTE_US
