"""Gifted subscriptions: a viewer buys K subscriptions in a creator's live room, and K viewers
present there get one period each (docs/economy.md, "Gifted subscriptions").

    give ──► checks (key, K in bounds, a live room, a creator with a price, not their own room,
             the buyer may spend) ──► K recipients drawn at random among the eligible
         ──► ONE linked chain, ids ``gsub:<buyer>:<key>``: the day's spend of K * price, then
             per recipient i ``…:<i>:{c,d,f}`` (coins from the buyer, the creator's diamonds
             at the published rate), with the purchase's ``subscription_gifts`` row (annex)
         ──► each recipient's gifted period applied in its own transaction, once
             (``subscription_gift_recipients`` keyed by purchase and recipient)
         ──► observers: the room's announcement, the ``subscription.gifted`` webhook

Eligible: present in the room now (live/presence.py: every node's sockets), not the buyer nor
the creator, not blocked, not opted out (``gifted_sub_optouts``: receiving is on by default,
as on Twitch), and without a subscription to the creator that has access or renews (active,
grace, cancelled or gifted still running). Fewer eligible than K: refused, 409
``not_enough_gift_recipients`` with how many there are, nothing charged (the issue's rule).

The chain is all or nothing: coins short for K periods, none of them is bought. The key makes
the purchase idempotent: a retry finds the purchase's row (or the ledger answers ``exists``)
and answers the recipients drawn the first time, applying any period a crash left unapplied;
every node's catch-up loop applies those too (``catch_up``). A gifted period does not renew from the
recipient's coins (status ``gifted``) unless they subscribe themselves (docs/economy.md).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Engine, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from giftwave.clock import day_of, now_us
from giftwave.db.id_lists import in_parts
from giftwave.db.tables import (
    gifted_sub_optouts,
    subscription_gift_recipients,
    subscription_gifts,
    subscription_periods,
    subscriptions,
    users,
)
from giftwave.db.upsert import insert_for, insert_new
from giftwave.economy.diamond_fractions import split_diamonds
from giftwave.economy.gifting import (
    IDEMPOTENCY_KEY_RE,
    chain_outcome,
    coins_leg_id,
    refuse_in_debt,
    shared_chain,
)
from giftwave.economy.subscriptions import (
    RENEWING,
    WITH_ACCESS,
    SubscriptionPolicy,
    Subscriptions,
    SubStatus,
    coin_debt,
    price_of,
)
from giftwave.economy.wallets import Wallets
from giftwave.errors import Code, Conflict, Forbidden, Invalid, NotFound
from giftwave.identity.users import Role, User, UserStatus, find_user
from giftwave.ledger.annex import SUBSCRIPTION_GIFTS
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.model import Outcome, TransferCode
from giftwave.live.presence import RoomPresence
from giftwave.live.streams import find_stream
from giftwave.periodic import PeriodicTask, Schedule

US_PER_S: Final = 1_000_000
APPLY_TRIES: Final = 5  # a recipient's row moved by a racing subscribe: read it again
CATCH_UP_BATCH: Final = 50  # purchases a sweep completes at most
CATCH_UP_WINDOW_S: Final = 7 * 86_400  # a crash's unapplied periods are found this long after

_g = subscription_gifts.c
_r = subscription_gift_recipients.c
_s = subscriptions.c


@dataclass(frozen=True, slots=True)
class GiftSubs:
    buyer: User
    stream_id: str
    count: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class Recipient:
    user_id: int
    handle: str
    months: int  # periods of theirs to the creator, this one included (the badge's count)


@dataclass(frozen=True, slots=True)
class SubsGiven:
    """A purchase, as its row says, and whether this call charged it."""

    gift_id: str  # "gsub:<buyer>:<key>": the transfer ids' base, the room's and webhook's id
    buyer_id: int
    buyer: str
    stream_id: str
    creator_id: int
    count: int
    price_coins: int
    coins: int
    diamonds: int
    recipients: tuple[Recipient, ...]
    created_at_us: int
    charged: bool


SubsGivenObserver = Callable[[SubsGiven], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Purchase:
    """A ``subscription_gifts`` row."""

    buyer_id: int
    key: str
    stream_id: str
    creator_id: int
    count: int
    price_coins: int
    coins: int
    diamonds: int
    recipients: tuple[int, ...]
    created_at_us: int

    @property
    def base(self) -> str:
        return gift_id_of(self.buyer_id, self.key)


def _purchase(conn: Connection, buyer_id: int, key: str) -> _Purchase | None:
    row = conn.execute(
        select(subscription_gifts).where(_g.buyer_id == buyer_id, _g.idempotency_key == key)
    ).first()
    if row is None:
        return None
    m = row._mapping
    return _Purchase(
        buyer_id=buyer_id,
        key=key,
        stream_id=str(m["stream_id"]),
        creator_id=int(m["creator_id"]),
        count=int(m["count"]),
        price_coins=int(m["price_coins"]),
        coins=int(m["coins"]),
        diamonds=int(m["diamonds"]),
        recipients=tuple(int(x) for x in str(m["recipients"]).split(",")),
        created_at_us=int(m["created_at_us"]),
    )


def gift_id_of(buyer_id: int, key: str) -> str:
    return f"gsub:{buyer_id}:{key}"


class SubscriptionGifts:
    def __init__(
        self,
        db: Engine,
        engine: PostingEngine,
        wallets: Wallets,
        subscriptions: Subscriptions,
        *,
        max_count: int,
    ) -> None:
        assert max_count >= 1
        self._db = db
        self._engine = engine
        self._wallets = wallets
        self._subscriptions = subscriptions
        self._max_count = max_count
        self._presence: RoomPresence | None = None
        self._observers: list[SubsGivenObserver] = []
        self._draw = random.SystemRandom()
        # A crash between a purchase's commit and its periods: every node completes it later.
        self._catching_up = PeriodicTask(
            "subscription-gift-catch-up",
            self._catch_up,
            Schedule(subscriptions.policy.sweep_interval_s),
            run_at_start=True,
        )

    def start(self) -> None:
        self._catching_up.start()

    async def stop(self) -> None:
        await self._catching_up.stop()

    async def _catch_up(self) -> None:
        await asyncio.to_thread(self.catch_up)

    @property
    def max_count(self) -> int:
        return self._max_count

    @property
    def _policy(self) -> SubscriptionPolicy:
        return self._subscriptions.policy

    @property
    def presence(self) -> RoomPresence | None:
        return self._presence

    def use_presence(self, presence: RoomPresence) -> None:
        """Who is in a room: the node's presence (without it, nobody is: all refused)."""
        self._presence = presence

    def add_observer(self, observer: SubsGivenObserver) -> None:
        """Called with every purchase after its periods are applied: the first time and on
        every retry (at least once; observers take each ``gift_id`` once)."""
        self._observers.append(observer)

    async def give(self, cmd: GiftSubs) -> SubsGiven:
        if not IDEMPOTENCY_KEY_RE.fullmatch(cmd.idempotency_key):
            raise Invalid(
                Code.INVALID_IDEMPOTENCY_KEY, "an idempotency key is 1-64 of A-Z a-z 0-9 _.:-"
            )
        if not 1 <= cmd.count <= self._max_count:
            raise Invalid(
                Code.INVALID_COUNT,
                f"gifted subscriptions are 1..{self._max_count} at a time",
                max_count=self._max_count,
            )
        given = await asyncio.to_thread(self._prior, cmd)
        if given is None:
            await self._subscriptions.rate.take(cmd.buyer.id)
            given = await self._buy(cmd)
        for observer in self._observers:
            await observer(given)
        return given

    # --- buying ---------------------------------------------------------------------------

    async def _buy(self, cmd: GiftSubs) -> SubsGiven:
        creator_id, price, recipients = await asyncio.to_thread(self._plan, cmd)
        policy = self._policy
        at = now_us()
        legs = await asyncio.to_thread(self._subscriptions.legs_of, cmd.buyer, creator_id, at)
        diamonds, hundredths = split_diamonds(price, policy.diamonds_per_100_coins)
        base = gift_id_of(cmd.buyer.id, cmd.idempotency_key)
        shares = [(f"{base}:{i}", price, diamonds, hundredths) for i in range(len(recipients))]
        chain = shared_chain(base, legs, shares, TransferCode.SUBSCRIPTION)
        if len(chain) > self._engine.max_submission_transfers:
            raise Invalid(Code.INVALID_COUNT, "too many gifted subscriptions at once")
        row = (
            cmd.buyer.id,
            cmd.idempotency_key,
            cmd.stream_id,
            creator_id,
            len(recipients),
            price,
            price * len(recipients),
            diamonds * len(recipients),
            ",".join(str(user_id) for user_id in recipients),
            coins_leg_id(f"{base}:0"),
            at,
        )
        outcomes = await self._engine.submit(chain, (SUBSCRIPTION_GIFTS.name, row))
        outcome = chain_outcome(outcomes)
        charged = outcome is Outcome.OK
        if not charged:
            # Bought before under this key (a concurrent retry): its row says by whom and to
            # whom. Else the ledger refused the chain: nothing of it was written.
            if outcome.succeeded or outcome is Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS:
                given = await asyncio.to_thread(self._prior, cmd)
                if given is not None:
                    return given
            if outcome is Outcome.EXCEEDS_DEBIT_LIMIT:
                subs = self._subscriptions
                raise await subs.limit_refusal(cmd.buyer, chain, outcomes, legs)
            self._subscriptions.raise_refused(outcome, "gifted subscriptions")
        return await asyncio.to_thread(self._apply_all, cmd.buyer.id, cmd.idempotency_key, True)

    def _plan(self, cmd: GiftSubs) -> tuple[int, int, list[int]]:
        """Every check, then (creator, price, the recipients drawn)."""
        buyer = cmd.buyer
        at = now_us()
        self._subscriptions.spending.check_not_excluded(buyer.id)  # a break: no purchases
        with self._db.connect() as conn:
            stream = find_stream(conn, cmd.stream_id)
            if stream is None:
                raise NotFound(Code.STREAM_NOT_FOUND, f"no stream {cmd.stream_id!r}")
            if not stream.live:
                raise Conflict(
                    Code.STREAM_NOT_LIVE, "subscriptions can only be gifted in a live room"
                )
            creator = find_user(conn, stream.creator_id)
            if creator is None or creator.role is not Role.CREATOR or creator.blocked:
                raise Forbidden(Code.CREATOR_UNAVAILABLE, "this creator cannot take subscriptions")
            if creator.id == buyer.id:
                raise Forbidden(
                    Code.CANNOT_SUBSCRIBE_SELF,
                    "creators cannot gift subscriptions to their own channel",
                )
            if buyer.blocked:
                raise Forbidden(Code.ACCOUNT_BLOCKED, "this account is blocked")
            rule = self._policy.age_rule
            rule.require(buyer, day_of(at), "gifting subscriptions")
            refuse_in_debt(coin_debt(conn, buyer.id))
            price = price_of(self._db, creator.id)
            if price is None:
                raise Conflict(
                    Code.SUBSCRIPTIONS_NOT_OFFERED, "this creator offers no subscription yet"
                )
            present = [] if self._presence is None else self._presence.viewers(conn, stream.id)
            eligible = eligible_recipients(conn, creator.id, buyer.id, present, at)
        if len(eligible) < cmd.count:
            raise Conflict(
                Code.NOT_ENOUGH_GIFT_RECIPIENTS,
                f"only {len(eligible)} viewers here can receive a gifted subscription now",
                eligible=len(eligible),
            )
        return creator.id, price, self._draw.sample(eligible, cmd.count)

    # --- the purchase's periods -----------------------------------------------------------

    def _prior(self, cmd: GiftSubs) -> SubsGiven | None:
        """An earlier purchase under this key, completed; 409 if the key bought something
        else."""
        with self._db.connect() as conn:
            found = _purchase(conn, cmd.buyer.id, cmd.idempotency_key)
        if found is None:
            return None
        if (found.stream_id, found.count) != (cmd.stream_id, cmd.count):
            raise Conflict(
                Code.IDEMPOTENCY_KEY_REUSED, "this idempotency key was used for another purchase"
            )
        return self._apply_all(cmd.buyer.id, cmd.idempotency_key, False)

    def _apply_all(self, buyer_id: int, key: str, charged: bool) -> SubsGiven:
        """Each recipient's period given (once, whoever calls), then the purchase as it is."""
        with self._db.connect() as conn:
            p = _purchase(conn, buyer_id, key)
        assert p is not None, "written with the purchase's transfers, which committed"
        recipient_ids = list(p.recipients)
        for i, recipient_id in enumerate(recipient_ids):
            self._apply_one(p, i, recipient_id)
        with self._db.connect() as conn:
            handles = dict(
                conn.execute(
                    select(users.c.id, users.c.handle).where(
                        users.c.id.in_([buyer_id, *recipient_ids])
                    )
                ).all()
            )
            months = dict(
                conn.execute(
                    select(_s.subscriber_id, _s.period).where(
                        _s.creator_id == p.creator_id,
                        _s.subscriber_id.in_(recipient_ids),
                    )
                ).all()
            )
        for recipient_id in recipient_ids:
            self._subscriptions.badges.forget(p.creator_id, recipient_id)
        return SubsGiven(
            gift_id=p.base,
            buyer_id=buyer_id,
            buyer=str(handles.get(buyer_id, "")),
            stream_id=p.stream_id,
            creator_id=p.creator_id,
            count=p.count,
            price_coins=p.price_coins,
            coins=p.coins,
            diamonds=p.diamonds,
            recipients=tuple(
                Recipient(r, str(handles.get(r, "")), int(months.get(r, 0))) for r in recipient_ids
            ),
            created_at_us=p.created_at_us,
            charged=charged,
        )

    def _apply_one(self, purchase: _Purchase, i: int, recipient_id: int) -> None:
        """The recipient's gifted period: their row advanced and the period recorded, in one
        transaction with the recipient's mark, so it happens once. A row moved meanwhile (the
        recipient subscribing at that instant) is read again, a few times."""
        for _ in range(APPLY_TRIES):
            try:
                with self._db.begin() as conn:
                    if _applied(conn, purchase, recipient_id):
                        return
                    if self._give_period(conn, purchase, i, recipient_id):
                        return
            except IntegrityError:
                pass  # a period number taken by a racing charge: read the row again
        raise RuntimeError(f"gifted period {purchase.base}:{i} not applied in {APPLY_TRIES} tries")

    def _give_period(
        self, conn: Connection, purchase: _Purchase, i: int, recipient_id: int
    ) -> bool:
        creator_id, price = purchase.creator_id, purchase.price_coins
        at = now_us()
        insert_new(
            conn,
            insert(subscriptions).values(
                subscriber_id=recipient_id,
                creator_id=creator_id,
                price_coins=price,
                status=SubStatus.UNPAID.value,
                period=0,
                paid_until_us=0,
                next_attempt_us=0,
                created_at_us=at,
            ),
        )
        sub = conn.execute(
            select(_s.id, _s.period, _s.status, _s.paid_until_us).where(
                _s.subscriber_id == recipient_id, _s.creator_id == creator_id
            )
        ).one()
        sub_id, period, status, paid_until = int(sub[0]), int(sub[1]), str(sub[2]), int(sub[3])
        # A charge of the recipient's own may have recorded a period the row does not show yet.
        last = conn.execute(
            select(func.coalesce(func.max(subscription_periods.c.period), 0)).where(
                subscription_periods.c.subscription_id == sub_id
            )
        ).scalar_one()
        new_period = max(period, int(last)) + 1
        starts = max(at, paid_until)  # a period still running is extended after its end
        ends = starts + self._policy.period_s * US_PER_S
        # Renewing (the recipient subscribed in the meantime): it keeps renewing, later.
        new_status = status if status in RENEWING else SubStatus.GIFTED.value
        moved = conn.execute(
            update(subscriptions)
            .where(_s.id == sub_id, _s.period == period, _s.status == status)
            .values(
                period=new_period,
                paid_until_us=ends,
                next_attempt_us=ends,
                status=new_status,
                grace_until_us=None,
                last_failure=None,
            )
        ).rowcount
        if not moved:
            return False
        if _starts(status, paid_until, at):
            self._subscriptions.gift_started(conn, sub_id, at, purchase.buyer_id)
        diamonds = purchase.diamonds // purchase.count
        conn.execute(
            insert(subscription_periods).values(
                subscription_id=sub_id,
                period=new_period,
                subscriber_id=recipient_id,
                creator_id=creator_id,
                coins=price,
                diamonds=diamonds,
                transfer_id=coins_leg_id(f"{purchase.base}:{i}"),
                starts_at_us=starts,
                ends_at_us=ends,
                created_at_us=at,
                gifted_by=purchase.buyer_id,
            )
        )
        conn.execute(
            insert(subscription_gift_recipients).values(
                buyer_id=purchase.buyer_id,
                idempotency_key=purchase.key,
                recipient_id=recipient_id,
                subscription_id=sub_id,
                period=new_period,
                applied_at_us=at,
            )
        )
        return True

    def catch_up(self) -> int:
        """Purchases a crash left with periods unapplied (committed, the process gone before
        it gave them), completed; how many."""
        since = now_us() - CATCH_UP_WINDOW_S * US_PER_S
        applied = (
            select(func.count())
            .where(_r.buyer_id == _g.buyer_id, _r.idempotency_key == _g.idempotency_key)
            .scalar_subquery()
        )
        with self._db.connect() as conn:
            rows = conn.execute(
                select(_g.buyer_id, _g.idempotency_key)
                .where(_g.created_at_us >= since, applied < _g.count)
                .order_by(_g.created_at_us)
                .limit(CATCH_UP_BATCH)
            ).all()
        for buyer_id, key in rows:
            self._apply_all(int(buyer_id), str(key), False)
        return len(rows)

    # --- the recipient's setting ----------------------------------------------------------

    def accepts(self, user_id: int) -> bool:
        """Whether the user may receive gifted subscriptions (on unless they opted out)."""
        with self._db.connect() as conn:
            return not _opted_out(conn, user_id)

    async def set_accepts(self, user: User, accept: bool) -> bool:
        await self._subscriptions.rate.take(user.id)
        return await asyncio.to_thread(self._set_accepts, user.id, accept)

    def _set_accepts(self, user_id: int, accept: bool) -> bool:
        with self._db.begin() as conn:
            if accept:
                conn.execute(
                    gifted_sub_optouts.delete().where(gifted_sub_optouts.c.user_id == user_id)
                )
            else:
                conn.execute(
                    insert_for(conn, gifted_sub_optouts)
                    .values(user_id=user_id, created_at_us=now_us())
                    .on_conflict_do_nothing()
                )
        return accept


def _applied(conn: Connection, purchase: _Purchase, recipient_id: int) -> bool:
    return (
        conn.execute(
            select(_r.period).where(
                _r.buyer_id == purchase.buyer_id,
                _r.idempotency_key == purchase.key,
                _r.recipient_id == recipient_id,
            )
        ).first()
        is not None
    )


def _opted_out(conn: Connection, user_id: int) -> bool:
    found = conn.execute(
        select(gifted_sub_optouts.c.user_id).where(gifted_sub_optouts.c.user_id == user_id)
    ).first()
    return found is not None


def eligible_recipients(
    conn: Connection, creator_id: int, buyer_id: int, present: list[int], at_us: int
) -> list[int]:
    """Of the viewers ``present``, who may receive one of ``creator_id``'s subscriptions from
    ``buyer_id`` now (the module's docstring: who is eligible), by id."""
    candidates = sorted(set(present) - {creator_id, buyer_id})
    subscribed = select(_s.subscriber_id).where(
        _s.creator_id == creator_id,
        or_(
            _s.status.in_(RENEWING),
            and_(_s.status.in_(WITH_ACCESS), _s.paid_until_us > at_us),
        ),
    )
    eligible: list[int] = []
    for part in in_parts(candidates):
        found = conn.execute(
            select(users.c.id)
            .where(
                users.c.id.in_(part),
                users.c.status == UserStatus.ACTIVE.value,
                users.c.id.not_in(select(gifted_sub_optouts.c.user_id)),
                users.c.id.not_in(subscribed),
            )
            .order_by(users.c.id)
        ).scalars()
        eligible.extend(int(user_id) for user_id in found)
    return eligible


def _starts(status: str, paid_until_us: int, at_us: int) -> bool:
    """Whether a gifted period given to a row in ``status`` starts a subscription (a
    ``subscription.started``): not when it pays a renewing one, nor extends one still running."""
    running = status in WITH_ACCESS and paid_until_us > at_us
    return status not in RENEWING and not running
