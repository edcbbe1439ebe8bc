"""Subscriptions: a viewer pays a creator a monthly price in coins, renewed from the balance.

    subscribe ──► checks (a creator with a price, not oneself, not blocked, age)
              ──► the row (one per subscriber and creator, kept across lapses)
              ──► period p+1 charged: the gift's money chain, ids ``sub:<id>:<p+1>:…``,
                  with a ``subscription_periods`` annex row (ledger/annex.py)
              ──► the row advanced by a conditional UPDATE (``WHERE period = p``)

    every node, every ``sweep_interval_s``: the subscriptions due (active or in grace, their
    ``next_attempt_us`` past) are renewed the same way; coins short, an account frozen or
    blocked: no charge, ``grace`` (retried every ``retry_s``), then ``lapsed``.

Exactly once per period whatever the number of nodes and retries: the transfer ids name the
subscription and the period, so the ledger commits one charge and answers the others
``exists`` (or, a day later, ``id_reused_with_different_fields`` for the day's spend leg);
the period's annex row says it was paid, and of the nodes advancing the row only one matches
``period = p``. A crash between the charge and the UPDATE leaves a paid period the row does not
show yet: the next sweep charges the same ids, the ledger answers ``exists``, and the row
advances then.

Money is the gift's (economy/gifting.py ``money_chain``): coins subscriber → platform, the
creator's diamonds at the published rate (whole diamonds and the exact hundredths), the day's
spend leg under the daily cap. Cancel stops the renewals; access runs to the end of the paid
period, no refund. A cancel and a renewal racing: whichever the ledger and the row see first
decides, and each outcome is whole (docs/economy.md, "Subscriptions").
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NoReturn

from sqlalchemy import Connection, Engine, and_, case, func, insert, select, update

from giftwave.clock import day_of, now_us
from giftwave.db.tables import subscription_periods, subscription_prices, subscriptions, users
from giftwave.db.upsert import insert_for, insert_new
from giftwave.economy.diamond_fractions import split_diamonds
from giftwave.economy.gifting import (
    MoneyLegs,
    chain_outcome,
    coins_leg_id,
    gift_failure,
    money_chain,
    money_legs,
    refuse_in_debt,
    refused_leg,
)
from giftwave.economy.spending import Spending
from giftwave.economy.wallets import Wallets
from giftwave.errors import Code, Conflict, DomainError, Forbidden, Invalid, NotFound
from giftwave.identity.permissions import require_creator
from giftwave.identity.users import AgeRule, Role, User, find_user
from giftwave.ledger.accounts import find_account
from giftwave.ledger.annex import SUBSCRIPTION_PERIODS
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.model import Outcome, Transfer, TransferCode
from giftwave.periodic import PeriodicTask, Schedule
from giftwave.ratelimit import Rate, RateLimiter, UserLimit
from giftwave.realtime.notices import AnyNotice, SubscriberChanged
from giftwave.ttl_cache import TtlCache

log = logging.getLogger(__name__)

RENEW_BATCH: Final = 200  # subscriptions renewed per sweep: a bounded round; the rest next time
RENEW_AT_ONCE: Final = 50  # renewals submitted together (the ledger batches them)
SUBSCRIBERS_MAX: Final = 1_000  # one page of a creator's subscribers
FIGURES_DAYS: Final = 30
# Subscribing, cancelling and pricing, per user: a person's pace, never a script's.
CHANGES_PER_S: Final = 0.2
CHANGES_BURST: Final = 10
# A badge may show a subscription this late (a join or a chat line asks this node's cache).
BADGE_TTL_S: Final = 30.0
BADGES_CACHED: Final = 100_000
US_PER_S: Final = 1_000_000


class SubStatus(enum.StrEnum):
    UNPAID = "unpaid"  # the row exists, no period was ever paid (a first charge was refused)
    ACTIVE = "active"  # paid to ``paid_until_us``, renewed then
    GRACE = "grace"  # a renewal was refused; retried until ``grace_until_us``
    CANCELLED = "cancelled"  # no more renewals; access to ``paid_until_us``
    LAPSED = "lapsed"  # the grace ran out unpaid
    # Someone gifted the period (economy/subscription_gifts.py): access to ``paid_until_us``,
    # never renewed from the recipient's coins unless they subscribe themselves.
    GIFTED = "gifted"


# Who may still be charged for a next period.
RENEWING: Final = (SubStatus.ACTIVE.value, SubStatus.GRACE.value)
# Who has access while their paid (or gifted) period runs.
WITH_ACCESS: Final = (SubStatus.ACTIVE.value, SubStatus.CANCELLED.value, SubStatus.GIFTED.value)
# Not renewed at the end of the period: the period ends it.
NOT_RENEWED: Final = (SubStatus.CANCELLED, SubStatus.GIFTED)


@dataclass(frozen=True, slots=True)
class SubscriptionPolicy:
    min_coins: int
    max_coins: int
    period_s: int
    grace_s: int
    retry_s: int
    diamonds_per_100_coins: int
    age_rule: AgeRule
    sweep_interval_s: float = 30.0

    def __post_init__(self) -> None:
        assert 1 <= self.min_coins <= self.max_coins
        assert self.period_s > 0
        assert self.grace_s >= 0
        assert self.retry_s > 0


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    subscriber_id: int
    creator_id: int
    price_coins: int
    status: SubStatus
    months: int  # periods paid, over the subscription's whole life (the badge's count)
    paid_until_us: int
    grace_until_us: int | None
    cancelled_at_us: int | None
    last_failure: str | None

    def has_access(self, at_us: int) -> bool:
        """Paid to a time still ahead (a cancelled one too: to the end of its period)."""
        return self.status.value in WITH_ACCESS and self.paid_until_us > at_us

    def shown_status(self, at_us: int) -> str:
        """What a person reads: ``ended`` is a cancelled or gifted one past its period."""
        if self.status in NOT_RENEWED and self.paid_until_us <= at_us:
            return "ended"
        return self.status.value


class ChangeKind(enum.StrEnum):
    STARTED = "started"  # a first period paid, or one taken anew after it ended
    RENEWED = "renewed"  # the next period paid, by the sweeper or from a grace
    LAPSED = "lapsed"  # the grace ran out unpaid


@dataclass(frozen=True, slots=True)
class SubscriptionChange:
    kind: ChangeKind
    subscription: Subscription  # as the move left it
    at_us: int
    gifted_by: int | None = None  # the buyer, when a gifted period started it


SubscriptionObserver = Callable[[Connection, SubscriptionChange], object]


@dataclass(frozen=True, slots=True)
class Subscribed:
    subscription: Subscription
    charged: bool  # this call paid a new period (False: the same subscription back)


@dataclass(frozen=True, slots=True)
class SubscriberFigures:
    """A creator's subscriptions over the last ``FIGURES_DAYS`` days (the studio's figures)."""

    paying: int  # with access now
    new: int  # first periods paid in the window
    ended: int  # access ended in the window, not renewed (lapsed, or cancelled)
    revenue_coins: int  # every period paid in the window
    revenue_diamonds: int  # whole diamonds earned by them
    gifted: int = 0  # of those periods, the ones another viewer gifted


@dataclass(frozen=True, slots=True)
class _Paid:
    ends_at_us: int
    coins: int  # what the period cost (the row keeps it as the subscription's price)
    new: bool  # this call's charge committed (False: an earlier one had paid the period)


def _to_subscription(row: object) -> Subscription:
    m = row._mapping  # type: ignore[attr-defined]
    return Subscription(
        id=int(m["id"]),
        subscriber_id=int(m["subscriber_id"]),
        creator_id=int(m["creator_id"]),
        price_coins=int(m["price_coins"]),
        status=SubStatus(m["status"]),
        months=int(m["period"]),
        paid_until_us=int(m["paid_until_us"]),
        grace_until_us=None if m["grace_until_us"] is None else int(m["grace_until_us"]),
        cancelled_at_us=None if m["cancelled_at_us"] is None else int(m["cancelled_at_us"]),
        last_failure=m["last_failure"],
    )


def _find(conn: Connection, subscriber_id: int, creator_id: int) -> Subscription | None:
    row = conn.execute(
        select(subscriptions).where(
            subscriptions.c.subscriber_id == subscriber_id,
            subscriptions.c.creator_id == creator_id,
        )
    ).first()
    return None if row is None else _to_subscription(row)


def _by_id(conn: Connection, subscription_id: int) -> Subscription:
    row = conn.execute(select(subscriptions).where(subscriptions.c.id == subscription_id)).one()
    return _to_subscription(row)


def coin_debt(conn: Connection, user_id: int) -> int:
    """Coins a refunded top-up left owed (settled from the next top-up): no spending till then."""
    account = find_account(conn, f"user:{user_id}:coin_debt")
    return 0 if account is None else max(0, -account.balance)


def is_subscriber(db: Engine, creator_id: int, user_id: int) -> bool:
    """Whether ``user_id`` has a paid subscription to ``creator_id`` now (for a chat mode)."""
    with db.connect() as conn:
        sub = _find(conn, user_id, creator_id)
    return sub is not None and sub.has_access(now_us())


def subscriber_months(db: Engine, creator_id: int, user_ids: list[int]) -> dict[int, int]:
    """The badge: each of ``user_ids`` subscribed to ``creator_id`` now, with their months."""
    if not user_ids:
        return {}
    now = now_us()
    with db.connect() as conn:
        rows = conn.execute(
            select(subscriptions.c.subscriber_id, subscriptions.c.period).where(
                subscriptions.c.creator_id == creator_id,
                subscriptions.c.subscriber_id.in_(user_ids),
                subscriptions.c.status.in_(WITH_ACCESS),
                subscriptions.c.paid_until_us > now,
            )
        ).all()
    return {int(user_id): int(months) for user_id, months in rows}


class SubscriberBadges:
    """The months a chat line's or a join's badge shows, per node, at most ``BADGE_TTL_S``
    old: a busy chat asks the database once per person and creator per TTL, not per line."""

    def __init__(self, db: Engine) -> None:
        self._db = db
        self._cache: TtlCache[tuple[int, int], int] = TtlCache(
            max_entries=BADGES_CACHED, ttl_s=BADGE_TTL_S
        )

    async def months(self, creator_id: int, user_id: int) -> int:
        """0 for anyone not subscribed now."""
        key = (creator_id, user_id)
        months = self._cache.get(key)
        if months is None:
            found = await asyncio.to_thread(subscriber_months, self._db, creator_id, [user_id])
            months = found.get(user_id, 0)
            self._cache.put(key, months)
        return months

    def forget(self, creator_id: int, user_id: int) -> None:
        self._cache.drop((creator_id, user_id))

    def notice(self, notice: AnyNotice | None) -> None:
        """A broker notice: a subscription changed on some node (None: some were lost)."""
        if notice is None:
            self._cache.clear()
        elif isinstance(notice, SubscriberChanged):
            self.forget(notice.creator_id, notice.user_id)


def price_of(db: Engine, creator_id: int) -> int | None:
    """A creator's monthly price in coins (None: they offer no subscription)."""
    with db.connect() as conn:
        price = conn.execute(
            select(subscription_prices.c.price_coins).where(
                subscription_prices.c.creator_id == creator_id
            )
        ).scalar()
    return None if price is None else int(price)


class Subscriptions:
    def __init__(
        self,
        db: Engine,
        engine: PostingEngine,
        wallets: Wallets,
        policy: SubscriptionPolicy,
        spending: Spending,
    ) -> None:
        self._db = db
        self._engine = engine
        self._wallets = wallets
        self._policy = policy
        self.spending = spending  # the subscriber's own limits and self-exclusion
        self.badges = SubscriberBadges(db)
        self._observers: list[SubscriptionObserver] = []
        self.rate = UserLimit(
            "subscription",
            Rate(CHANGES_PER_S, CHANGES_BURST),
            code=Code.SUBSCRIPTION_RATE_LIMITED,
            detail="too many subscription changes too fast; try again in a moment",
        )
        # The database or ledger restarting fails a sweep: the next one tries again.
        self._sweeps = PeriodicTask(
            "subscription-renewals",
            self.sweep,
            Schedule(policy.sweep_interval_s),
            run_at_start=True,
        )

    @property
    def policy(self) -> SubscriptionPolicy:
        return self._policy

    def use_rate_limiter(self, limiter: RateLimiter) -> None:
        """Count changes in the node's shared limiter (Redis with a redis:// broker)."""
        self.rate.use(limiter)

    def start(self) -> None:
        self._sweeps.start()

    async def stop(self) -> None:
        await self._sweeps.stop()

    # --- the creator's price -------------------------------------------------------------

    async def set_price(self, creator: User, price_coins: int) -> int:
        """Set (or change) the creator's monthly price: it applies to new subscriptions and
        to a lapsed one taken again; a running subscription keeps the price it was taken at."""
        require_creator(creator, "offer subscriptions")
        await self.rate.take(creator.id)
        return await asyncio.to_thread(self._set_price, creator, price_coins)

    def price(self, creator_id: int) -> int | None:
        return price_of(self._db, creator_id)

    def offer(
        self, creator_id: int, viewer_id: int | None
    ) -> tuple[int | None, Subscription | None]:
        """What a creator's profile shows a visitor: the price, and their subscription."""
        price = price_of(self._db, creator_id)
        if viewer_id is None:
            return price, None
        with self._db.connect() as conn:
            sub = _find(conn, viewer_id, creator_id)
        return price, None if sub is None or sub.months == 0 else sub

    def _set_price(self, creator: User, price_coins: int) -> int:
        low, high = self._policy.min_coins, self._policy.max_coins
        if not low <= price_coins <= high:
            raise Invalid(
                Code.SUBSCRIPTION_PRICE_OUT_OF_BOUNDS,
                f"a monthly price is {low:,} to {high:,} coins",
                min_coins=low,
                max_coins=high,
            )
        at = now_us()
        with self._db.begin() as conn:
            upsert = insert_for(conn, subscription_prices).values(
                creator_id=creator.id, price_coins=price_coins, updated_at_us=at
            )
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[subscription_prices.c.creator_id],
                    set_={"price_coins": price_coins, "updated_at_us": at},
                )
            )
        return price_coins

    # --- the subscriber's side -----------------------------------------------------------

    async def subscribe(self, subscriber: User, creator_id: int) -> Subscribed:
        """Subscribe and pay the first period at once; the same subscription back when it is
        already paid (idempotent); a cancelled one still paid is resumed without a charge."""
        await self.rate.take(subscriber.id)
        sub, price = await asyncio.to_thread(self._open, subscriber, creator_id)
        at = now_us()
        if sub.status is SubStatus.ACTIVE and sub.paid_until_us > at:
            return Subscribed(sub, charged=False)
        if sub.status in NOT_RENEWED and sub.paid_until_us > at:
            # Cancelled or gifted, still running: renewed from the subscriber's coins at its end.
            resumed = await asyncio.to_thread(self._resume, sub)
            self.badges.forget(creator_id, subscriber.id)
            return Subscribed(resumed, charged=False)
        if sub.status is SubStatus.ACTIVE:  # due, and no sweep came yet: renewed as one would
            renewed = await self.renew(sub)
            if renewed.has_access(at):
                return Subscribed(renewed, charged=True)
            raise _refusal(renewed.last_failure)
        if price is not None and sub.status is not SubStatus.GRACE:
            # Taken anew (first, lapsed, ended): at today's price. A grace keeps its own.
            sub = dataclasses.replace(sub, price_coins=price)
        outcome = await self._charge(sub, sub.months + 1, at, subscriber)
        if not isinstance(outcome, _Paid):
            self.raise_refused(outcome)
        advanced = await asyncio.to_thread(self._advance, sub, outcome, resubscribe=True)
        self.badges.forget(creator_id, subscriber.id)  # this node shows it at once
        return Subscribed(advanced, charged=outcome.new)

    def _open(self, subscriber: User, creator_id: int) -> tuple[Subscription, int | None]:
        """Every check, then the pair's row (made unpaid if new) and the creator's price."""
        at = now_us()
        with self._db.connect() as conn:
            creator = find_user(conn, creator_id)
            if creator is None or creator.role is not Role.CREATOR:
                raise NotFound(Code.CREATOR_NOT_FOUND, f"no creator {creator_id}")
            if creator.id == subscriber.id:
                raise Forbidden(
                    Code.CANNOT_SUBSCRIBE_SELF, "creators cannot subscribe to themselves"
                )
            if subscriber.blocked:
                raise Forbidden(Code.ACCOUNT_BLOCKED, "this account is blocked")
            if creator.blocked:
                raise Forbidden(Code.CREATOR_UNAVAILABLE, "this creator cannot take subscriptions")
            rule = self._policy.age_rule
            rule.require(subscriber, day_of(at), "subscribing")
            self.spending.check_not_excluded(subscriber.id)
            refuse_in_debt(coin_debt(conn, subscriber.id))
            sub = _find(conn, subscriber.id, creator.id)
        price = price_of(self._db, creator.id)
        if price is None and (sub is None or not sub.has_access(at)):
            raise Conflict(
                Code.SUBSCRIPTIONS_NOT_OFFERED, "this creator offers no subscription yet"
            )
        if sub is not None:
            return sub, price
        with self._db.begin() as conn:
            # A concurrent request may make it first: then that row is the one.
            insert_new(
                conn,
                insert(subscriptions).values(
                    subscriber_id=subscriber.id,
                    creator_id=creator.id,
                    price_coins=price,
                    status=SubStatus.UNPAID.value,
                    period=0,
                    paid_until_us=0,
                    next_attempt_us=0,
                    created_at_us=at,
                ),
            )
            found = _find(conn, subscriber.id, creator.id)
        assert found is not None, "made above or by the request that raced it"
        return found, price

    def _resume(self, sub: Subscription) -> Subscription:
        with self._db.begin() as conn:
            conn.execute(
                update(subscriptions)
                .where(
                    subscriptions.c.id == sub.id,
                    subscriptions.c.status == sub.status.value,
                    subscriptions.c.period == sub.months,
                )
                .values(
                    status=SubStatus.ACTIVE.value,
                    cancelled_at_us=None,
                    next_attempt_us=subscriptions.c.paid_until_us,
                )
            )
            return _by_id(conn, sub.id)

    async def cancel(self, subscriber: User, creator_id: int) -> Subscription:
        """No more renewals; access to the end of the paid period, no refund. Cancelling again
        answers the same."""
        await self.rate.take(subscriber.id)
        return await asyncio.to_thread(self.cancel_now, subscriber, creator_id)

    def cancel_now(self, subscriber: User, creator_id: int) -> Subscription:
        """``cancel`` without the rate (the sweeper's race tests call it between steps)."""
        with self._db.begin() as conn:
            sub = _find(conn, subscriber.id, creator_id)
            if sub is None or sub.months == 0:
                raise NotFound(Code.SUBSCRIPTION_NOT_FOUND, "no subscription to this creator")
            conn.execute(
                update(subscriptions)
                .where(subscriptions.c.id == sub.id, subscriptions.c.status.in_(RENEWING))
                .values(status=SubStatus.CANCELLED.value, cancelled_at_us=now_us())
            )
            return _by_id(conn, sub.id)

    def mine(self, subscriber_id: int) -> list[tuple[Subscription, str]]:
        """The user's subscriptions ever paid, with each creator's handle; newest first."""
        with self._db.connect() as conn:
            rows = conn.execute(
                select(subscriptions, users.c.handle.label("handle"))
                .join(users, users.c.id == subscriptions.c.creator_id)
                .where(subscriptions.c.subscriber_id == subscriber_id, subscriptions.c.period > 0)
                .order_by(subscriptions.c.created_at_us.desc(), subscriptions.c.id.desc())
                .limit(SUBSCRIBERS_MAX)
            ).all()
        return [(_to_subscription(r), str(r._mapping["handle"])) for r in rows]

    def subscribers(
        self, creator: User, limit: int
    ) -> tuple[SubscriberFigures, list[tuple[Subscription, str]]]:
        """A creator's figures and paying subscribers now (a page, most months first)."""
        require_creator(creator, "see their subscribers")
        now = now_us()
        since = now - FIGURES_DAYS * 86_400 * US_PER_S
        paying = and_(
            subscriptions.c.creator_id == creator.id,
            subscriptions.c.status.in_(WITH_ACCESS),
            subscriptions.c.paid_until_us > now,
        )
        ended = and_(
            subscriptions.c.creator_id == creator.id,
            subscriptions.c.status.in_(
                [SubStatus.LAPSED.value, SubStatus.CANCELLED.value, SubStatus.GIFTED.value]
            ),
            subscriptions.c.paid_until_us >= since,
            subscriptions.c.paid_until_us <= now,
        )
        periods = subscription_periods.c
        in_window = and_(periods.creator_id == creator.id, periods.created_at_us >= since)
        with self._db.connect() as conn:
            count_paying = conn.execute(select(func.count()).where(paying)).scalar_one()
            count_ended = conn.execute(select(func.count()).where(ended)).scalar_one()
            revenue = conn.execute(
                select(
                    func.count().filter(periods.period == 1),
                    func.coalesce(func.sum(periods.coins), 0),
                    func.coalesce(func.sum(periods.diamonds), 0),
                    func.count().filter(periods.gifted_by.is_not(None)),
                ).where(in_window)
            ).one()
            rows = conn.execute(
                select(subscriptions, users.c.handle.label("handle"))
                .join(users, users.c.id == subscriptions.c.subscriber_id)
                .where(paying)
                .order_by(subscriptions.c.period.desc(), subscriptions.c.id)
                .limit(min(limit, SUBSCRIBERS_MAX))
            ).all()
        figures = SubscriberFigures(
            paying=int(count_paying),
            new=int(revenue[0]),
            ended=int(count_ended),
            revenue_coins=int(revenue[1]),
            revenue_diamonds=int(revenue[2]),
            gifted=int(revenue[3]),
        )
        return figures, [(_to_subscription(r), str(r._mapping["handle"])) for r in rows]

    # --- renewals ------------------------------------------------------------------------

    async def sweep(self) -> None:
        """Renew (or move to grace, or lapse) the subscriptions due, a bounded batch."""
        due = await asyncio.to_thread(self.due, now_us())
        for i in range(0, len(due), RENEW_AT_ONCE):
            await asyncio.gather(*(self.renew(sub) for sub in due[i : i + RENEW_AT_ONCE]))

    def due(self, at_us: int) -> list[Subscription]:
        with self._db.connect() as conn:
            rows = conn.execute(
                select(subscriptions)
                .where(
                    subscriptions.c.status.in_(RENEWING),
                    subscriptions.c.next_attempt_us <= at_us,
                )
                .order_by(subscriptions.c.next_attempt_us, subscriptions.c.id)
                .limit(RENEW_BATCH)
            ).all()
        return [_to_subscription(r) for r in rows]

    async def renew(self, sub: Subscription) -> Subscription:
        """Charge the next period of a subscription read as due; whatever another node did
        with it meanwhile, the period is charged at most once and the row moves once."""
        at = now_us()
        # On time, the new period follows the old one; after a refusal it starts when paid
        # (no access was given during the grace, so none is charged for).
        starts_at = sub.paid_until_us if sub.status is SubStatus.ACTIVE else at
        outcome: _Paid | Outcome | DomainError | str
        subscriber = await asyncio.to_thread(self._payer, sub)
        if isinstance(subscriber, str):
            outcome = subscriber  # blocked, or the creator is: nothing is charged
        else:
            outcome = await self._charge(sub, sub.months + 1, starts_at, subscriber)
        if isinstance(outcome, _Paid):
            return await asyncio.to_thread(self._advance, sub, outcome, resubscribe=False)
        if isinstance(outcome, DomainError):
            failure = outcome.code.value
        else:
            failure = outcome if isinstance(outcome, str) else outcome.value
        return await asyncio.to_thread(self._refused, sub, failure, at)

    def _payer(self, sub: Subscription) -> User | str:
        """The subscriber, if they and the creator may still pay and be paid; else why not."""
        with self._db.connect() as conn:
            subscriber = find_user(conn, sub.subscriber_id)
            creator = find_user(conn, sub.creator_id)
            debt = coin_debt(conn, sub.subscriber_id)
        if subscriber is None or subscriber.blocked:
            return Code.ACCOUNT_BLOCKED.value
        if debt > 0:
            return Code.ACCOUNT_IN_DEBT.value
        if self.spending.profile(sub.subscriber_id).excluded(now_us()):
            return Code.SELF_EXCLUDED.value  # no renewal while it runs: the grace, then lapse
        if creator is None or creator.blocked or creator.role is not Role.CREATOR:
            return Code.CREATOR_UNAVAILABLE.value
        return subscriber

    def _refused(self, sub: Subscription, failure: str, at_us: int) -> Subscription:
        """A renewal not paid: into grace (retried), or lapsed once the grace is over. Only
        while the row is still at this period and renewing: a success or a cancel elsewhere
        is never undone."""
        grace_until = sub.grace_until_us
        if grace_until is None:
            grace_until = sub.paid_until_us + self._policy.grace_s * US_PER_S
        if at_us >= grace_until:
            values: dict[str, object] = {"status": SubStatus.LAPSED.value}
        else:
            values = {
                "status": SubStatus.GRACE.value,
                "grace_until_us": grace_until,
                # The last try comes at the grace's end, not after it.
                "next_attempt_us": min(at_us + self._policy.retry_s * US_PER_S, grace_until),
            }
        with self._db.begin() as conn:
            moved = conn.execute(
                update(subscriptions)
                .where(
                    subscriptions.c.id == sub.id,
                    subscriptions.c.period == sub.months,
                    subscriptions.c.status.in_(RENEWING),
                )
                .values(last_failure=failure, **values)
            ).rowcount
            after = _by_id(conn, sub.id)
            if moved and after.status is SubStatus.LAPSED:
                self._told(conn, ChangeKind.LAPSED, after, at_us)
            return after

    def _advance(self, sub: Subscription, paid: _Paid, *, resubscribe: bool) -> Subscription:
        """The row to the period just paid, if no one moved it there first. A renewal keeps
        a cancel that landed while it was charging (the period it paid is served, the next
        is not charged); a subscribe makes it active again."""
        if resubscribe:
            status: object = SubStatus.ACTIVE.value
        else:
            status = case(
                (subscriptions.c.status == SubStatus.CANCELLED.value, SubStatus.CANCELLED.value),
                else_=SubStatus.ACTIVE.value,
            )
        values: dict[str, object] = {
            "period": sub.months + 1,
            "paid_until_us": paid.ends_at_us,
            "next_attempt_us": paid.ends_at_us,
            "grace_until_us": None,
            "last_failure": None,
            "status": status,
        }
        if resubscribe:
            values["cancelled_at_us"] = None
            values["price_coins"] = paid.coins
        # A grace paid by the subscriber's own hand is still a renewal; anything else they
        # take (first, lapsed, ended, resumed after a gift ran out) starts one.
        renewing = not resubscribe or sub.status.value in RENEWING
        with self._db.begin() as conn:
            moved = conn.execute(
                update(subscriptions)
                .where(subscriptions.c.id == sub.id, subscriptions.c.period == sub.months)
                .values(**values)
            ).rowcount
            after = _by_id(conn, sub.id)
            if moved:
                kind = ChangeKind.RENEWED if renewing else ChangeKind.STARTED
                self._told(conn, kind, after, now_us())
            return after

    def add_observer(self, observer: SubscriptionObserver) -> None:
        """Called in the transaction that moves a subscription (started, renewed, lapsed),
        once per move: what it writes (a webhook's outbox row) exists exactly when the move
        does."""
        self._observers.append(observer)

    def gift_started(
        self, conn: Connection, subscription_id: int, at_us: int, buyer_id: int
    ) -> None:
        """A gifted period started the subscription (economy/subscription_gifts.py): observers
        are told as of a start paid by the subscriber, in the transaction that gave it, so the
        creator hears of every subscription that starts, whoever paid for it."""
        after = _by_id(conn, subscription_id)
        self._told(conn, ChangeKind.STARTED, after, at_us, gifted_by=buyer_id)

    def _told(
        self,
        conn: Connection,
        kind: ChangeKind,
        sub: Subscription,
        at_us: int,
        *,
        gifted_by: int | None = None,
    ) -> None:
        for observer in self._observers:
            observer(conn, SubscriptionChange(kind, sub, at_us, gifted_by))

    # --- the money -----------------------------------------------------------------------

    async def _charge(
        self, sub: Subscription, period: int, starts_at_us: int, payer: User
    ) -> _Paid | Outcome | DomainError:
        """Period ``period`` of ``sub`` paid (now, or before by any node), or why not (a
        spend limit's refusal as the error to answer)."""
        policy = self._policy
        at = now_us()
        legs = await asyncio.to_thread(self.legs_of, payer, sub.creator_id, at)
        coins = sub.price_coins
        diamonds, hundredths = split_diamonds(coins, policy.diamonds_per_100_coins)
        base = f"sub:{sub.id}:{period}"
        chain = money_chain(
            base,
            legs,
            coins,
            diamonds,
            hundredths,
            TransferCode.SUBSCRIPTION,
        )
        ends_at = starts_at_us + policy.period_s * US_PER_S
        row = (
            sub.id,
            period,
            sub.subscriber_id,
            sub.creator_id,
            coins,
            diamonds,
            coins_leg_id(base),
            starts_at_us,
            ends_at,
            at,
        )
        outcomes = await self._engine.submit(chain, (SUBSCRIPTION_PERIODS.name, row))
        outcome = chain_outcome(outcomes)
        if outcome is Outcome.EXCEEDS_DEBIT_LIMIT:
            return await self.limit_refusal(payer, chain, outcomes, legs)
        if outcome is Outcome.OK:
            return _Paid(ends_at, coins, new=True)
        if outcome.succeeded or outcome is Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS:
            # Paid before (another node, a retry, another day's spend leg): the period's row
            # holds what was paid and when it ends.
            paid = await asyncio.to_thread(self._period_paid, sub.id, period)
            if paid is not None:
                return paid
        return outcome

    def _period_paid(self, subscription_id: int, period: int) -> _Paid | None:
        with self._db.connect() as conn:
            row = conn.execute(
                select(subscription_periods.c.ends_at_us, subscription_periods.c.coins).where(
                    subscription_periods.c.subscription_id == subscription_id,
                    subscription_periods.c.period == period,
                )
            ).first()
        return None if row is None else _Paid(int(row[0]), int(row[1]), new=False)

    def legs_of(self, payer: User, creator_id: int, at_us: int) -> MoneyLegs:
        """A payment's accounts, with the payer's spend limits (a thread: it may read)."""
        limits = self.spending.limits_for(payer, self.spending.profile(payer.id), at_us)
        fractional = self._policy.diamonds_per_100_coins % 100 != 0
        return money_legs(
            self._wallets, self.spending, payer, creator_id, limits, fractional=fractional
        )

    async def limit_refusal(
        self, payer: User, chain: list[Transfer], outcomes: list[Outcome], legs: MoneyLegs
    ) -> DomainError:
        """The answer to a payment a spend limit refused: the payer's own, or the cap."""
        assert legs.limits is not None, "a refused limit was on a leg"
        return await asyncio.to_thread(
            self.spending.refusal,
            payer.id,
            refused_leg(chain, outcomes),
            legs.limits,
            legs.day_spent,
        )

    @staticmethod
    def raise_refused(outcome: Outcome | DomainError, what: str = "subscription") -> NoReturn:
        """The refusal of a payment the ledger refused (a spend limit's, as answered)."""
        if isinstance(outcome, DomainError):
            raise outcome
        raise gift_failure(outcome, what)


def _refusal(failure: str | None) -> DomainError:
    """The answer to a subscribe whose due renewal was refused (the row says why)."""
    if failure is not None:
        try:
            return gift_failure(Outcome(failure), "subscription")
        except ValueError:
            pass
        if failure in (
            Code.ACCOUNT_BLOCKED.value,
            Code.ACCOUNT_IN_DEBT.value,
            Code.CREATOR_UNAVAILABLE.value,
            Code.DAILY_SPEND_LIMIT.value,
            Code.SELF_EXCLUDED.value,
            Code.SPENDING_LIMIT_REACHED.value,
        ):
            return Forbidden(Code(failure), "this subscription cannot be paid now")
    return Conflict(Code.GIFT_REFUSED, "the ledger refused this subscription")
