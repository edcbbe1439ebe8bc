"""Sending a gift: every check, then the linked pair through the posting engine.

    SendGift ──► checks (stream live, gift on sale, sender ≠ creator, ages, not blocked, no
                 debt, count, gates: not banned by the creator, rate)
                 ──► ledger chain (day's spend ≤ cap, coins, diamonds) + gift_sends row
                 ──► GiftSent

Idempotent by (sender, idempotency_key): the key names the gift's transfers, so a retry, a
double submit or two concurrent submits post at most once, and answer the same. The
``gift_sends`` row (what the gift was: stream, gift, version, count) is an annex of the pair
(``ledger.annex``): the ledger writes it in the pair's transaction when the pair is newly
committed, so it exists exactly when the transfers do, and a refused gift leaves nothing.
When the ledger answers that the pair exists (or that the key's transfers differ), the stored
row says what the key was used for: the same gift is answered with its first receipt, another
one is a conflict. Bill first, then broadcast: a ``GiftSent`` is returned only after the
ledger committed.

The daily spend cap is the first leg of the chain: it debits the sender's account of the day
with the cap as its ``debit_limit``, so the ledger refuses an over-cap gift in the batch's own
transaction, where every node's batches serialize: exact across nodes, and no extra round trip
(docs/economy.md, "The daily spend cap").
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields, replace
from datetime import date
from typing import Final

from sqlalchemy import Connection, Engine, and_, select

from giftwave import metrics
from giftwave.clock import day_of, now_us
from giftwave.config import DEFAULT_PAID_MESSAGE_TIERS, PaidMessageTier
from giftwave.db.batch_read import BatchReader
from giftwave.db.engine import reads
from giftwave.db.tables import accounts, gift_sends, transfers
from giftwave.economy.catalog import Catalog
from giftwave.economy.diamond_fractions import split_diamonds
from giftwave.economy.paid_messages import (
    MessageGate,
    PaidMessageObserver,
    PaidMessageSent,
    Pin,
    pin_for,
)
from giftwave.economy.spending import PeriodLeg, Spending, excluded
from giftwave.economy.spending_rules import ChainLimits, SpendProfile
from giftwave.economy.wallets import DAILY_SPEND, DIAMONDS_ISSUED, GIFTS_SPENT, Wallets
from giftwave.errors import (
    Code,
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    PaymentRequired,
)
from giftwave.identity.users import AgeRule, User, find_user
from giftwave.ledger.accounts import find_account
from giftwave.ledger.annex import GIFT_SENDS, GIFT_SENDS_MESSAGE, Annex
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.model import Outcome, Transfer, TransferCode
from giftwave.live.chat_rules import chat_text
from giftwave.live.streams import Stream, find_stream
from giftwave.ratelimit import RateLimiter, UserLimit
from giftwave.ttl_cache import TtlCache

IDEMPOTENCY_KEY_RE: Final = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")


@dataclass(frozen=True, slots=True)
class SendGift:
    sender: User
    stream_id: str
    gift_id: str
    count: int
    idempotency_key: str
    # A paid highlighted message (economy/paid_messages.py): the gift and its text are one
    # request, billed and stored together or not at all.
    message: str | None = None


@dataclass(frozen=True, slots=True)
class GiftSent:
    send_id: str
    stream_id: str
    creator_id: int
    sender_id: int
    gift_id: str
    gift_version: int
    count: int
    coins: int
    diamonds: int
    balance_coins: int
    created_at_us: int
    # This request found the gift committed already (a retry with the same key, on any node):
    # the same receipt, but what counts each gift once (reminders) must not count it again.
    # Not in the receipt's fields: the answer to a retry is the answer to the first send.
    replayed: bool = False

    def as_dict(self) -> dict[str, object]:
        """The receipt's fields (``dataclasses.asdict`` deep-copies: slow on the hot path)."""
        return {name: getattr(self, name) for name in _GIFT_SENT_FIELDS}


_GIFT_SENT_FIELDS: Final = tuple(f.name for f in fields(GiftSent) if f.name != "replayed")


def refuse_in_debt(debt: int) -> None:
    """No spending while a refunded top-up's debt is owed (it is settled from the next
    top-up): gifts, subscriptions and gifted subscriptions refuse it in the same words."""
    if debt > 0:
        raise Forbidden(
            Code.ACCOUNT_IN_DEBT,
            f"a refunded top-up left a debt of {debt:,} coins; buy coins to settle it",
            debt_coins=debt,
        )


# (the receipt, the sender's handle, whether the gift combos); awaited before the answer, so
# an acknowledged gift has reached the room's broker (or its queue, while the broker is away).
GiftObserver = Callable[[GiftSent, str, bool], Awaitable[None]]
# (sender_id, creator_id): raises a DomainError to refuse the gift (a creator banned the
# sender from their rooms: live/ban_gate.py). Checked with the other rules, before billing.
GiftGate = Callable[[int, int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class GiftingPolicy:
    max_count: int
    diamonds_per_100_coins: int
    age_rule: AgeRule
    paid_message_tiers: tuple[PaidMessageTier, ...] = DEFAULT_PAID_MESSAGE_TIERS


@dataclass(frozen=True, slots=True)
class _Intent:
    """A gift_sends row: what the key stands for."""

    stream_id: str
    creator_id: int
    gift_id: str
    gift_version: int
    count: int
    coins: int
    diamonds: int
    created_at_us: int
    # Hundredths of a diamond the rate leaves over (economy/diamond_fractions.py). Not in the
    # row: the gift's ":f" transfer holds it, and only a new gift's chain needs it.
    diamond_hundredths: int = 0
    # The paid message it carries, and what its coins bought (None: a plain gift).
    message: str | None = None
    pin: Pin | None = None


@dataclass(frozen=True, slots=True)
class MoneyLegs:
    """The accounts a gift's coins and diamonds move between (and a subscription's period,
    economy/subscriptions.py: priced like a gift, paid like one)."""

    viewer_coins: int
    gifts_spent: int
    diamonds_issued: int
    creator_diamonds: int
    day_spent: int | None  # the sender's account of the day; None: no daily cap
    daily_spend: int | None
    # The fraction issuer and the creator's fraction account; None: the rate is a whole
    # number of diamonds per coin (the default), so no gift has a fraction.
    fractions: tuple[int, int] | None = None
    # The payer's spend limits (economy/spending.py): the day leg's limit (the tighter of the
    # operator's cap and their own; 0: no day leg), and week and month legs for a viewer who
    # set those limits (none for everyone else: their chain is as it was).
    limits: ChainLimits | None = None
    periods: tuple[PeriodLeg, ...] = ()

    @property
    def day_limit_coins(self) -> int:
        return 0 if self.limits is None else self.limits.day_limit_coins


# What a gift reads before its checks: the sender's debt (None: read it with others'), the
# stream, its creator, the payment's accounts and the sender's spending profile.
_Loaded = tuple[int | None, Stream | None, User | None, MoneyLegs | None, SpendProfile]


def send_id_of(sender_id: int, key: str) -> str:
    return f"gift:{sender_id}:{key}"


class Gifting:
    def __init__(
        self,
        db: Engine,
        engine: PostingEngine,
        wallets: Wallets,
        catalog: Catalog,
        policy: GiftingPolicy,
        rate: UserLimit,
        spending: Spending,
    ) -> None:
        self._db = db
        self._reads = reads(db)  # autocommit reads on PostgreSQL (db/engine.py)
        self._engine = engine
        self._wallets = wallets
        self._catalog = catalog
        self._policy = policy
        self._rate = rate
        self._spending = spending  # the viewer's own limits and the operator's daily cap
        self._balances: BatchReader[int, int] = BatchReader(wallets.available)
        self._streams: TtlCache[str, Stream] = TtlCache(max_entries=10_000, ttl_s=1.0)
        self._users: TtlCache[int, User] = TtlCache(max_entries=100_000, ttl_s=5.0)
        # A debt only comes from a clawback, which leaves no coins to gift with anyway: a few
        # seconds of staleness cannot let anyone spend what they do not have.
        self._debts: TtlCache[int, int] = TtlCache(max_entries=100_000, ttl_s=2.0, refresh_s=1.6)
        self._debt_reads: BatchReader[int, int] = BatchReader(self._read_debts)
        # One read of what is not cached per sender, stream and day, however many of the
        # sender's gifts are in flight: a room of new viewers with eight gifts in flight each
        # made eight reads per viewer, all on the worker threads the gifts share.
        self._loading: dict[tuple[int, str, date], asyncio.Future[_Loaded]] = {}
        self._observers: list[GiftObserver] = []
        self._gates: list[GiftGate] = []
        self._message_observers: list[PaidMessageObserver] = []
        self._message_gates: list[MessageGate] = []

    def forget_stream(self, stream_id: str) -> None:
        self._streams.drop(stream_id)

    def forget_user(self, user_id: int) -> None:
        self._users.drop(user_id)
        self._spending.forget(user_id)

    def forget_all_users(self) -> None:
        """Some change notices may have been lost (api/auth.py): no cached creator is trusted."""
        self._users.clear()
        self._spending.forget_all()

    def use_rate_limiter(self, limiter: RateLimiter) -> None:
        """Count the gift rate in the node's shared limiter (Redis with a redis:// broker)."""
        self._rate.use(limiter)

    async def send(self, cmd: SendGift) -> GiftSent:
        try:
            return await self._send(cmd)
        except DomainError as exc:
            metrics.GIFTS_REFUSED.labels(exc.code).inc()  # codes are a fixed set: bounded
            raise

    async def _send(self, cmd: SendGift) -> GiftSent:
        if not IDEMPOTENCY_KEY_RE.fullmatch(cmd.idempotency_key):
            raise Invalid(
                Code.INVALID_IDEMPOTENCY_KEY, "an idempotency key is 1-64 of A-Z a-z 0-9 _.:-"
            )
        if not 1 <= cmd.count <= self._policy.max_count:
            raise Invalid(Code.INVALID_COUNT, f"count must be 1..{self._policy.max_count}")
        if cmd.message is not None:  # before anything is read: a bad text bills nothing
            cmd = replace(cmd, message=chat_text(cmd.message, Code.INVALID_MESSAGE))
        at = now_us()
        today = day_of(at)
        # Optimistic: most requests are new gifts, so the key is not looked up first. A retry
        # is recognised when the ledger finds its transfers, or when a check refuses it.
        loaded = self._load_cached(cmd, at)
        if loaded is None:  # something is not cached yet: read it off the event loop
            loaded = await self._load_once(cmd, at, today)
        debt, stream, creator, legs, profile = loaded
        if debt is None:  # everything else was cached: read it with other senders' debts
            debt = await self._debt_reads.get(cmd.sender.id)
        try:
            if profile.excluded(at):
                raise excluded(profile)
            intent = self._check(cmd, debt, stream, creator, today)
            for gate in self._gates:
                await gate(cmd.sender.id, intent.creator_id)
            if cmd.message is not None:
                intent = await self._with_message(cmd, intent)
            await self._rate.take(cmd.sender.id)  # every node's gifts of this user: one rate
        except DomainError:
            replayed = await self._replay(cmd)
            if replayed is not None:
                await self._tell(*replayed, cmd.sender.handle)
                return replayed[0]  # the same answer as the first time, whatever changed since
            raise
        assert legs is not None
        outcome = await self._post(cmd, intent, legs)
        if outcome is not Outcome.OK:  # the key's transfers were there: a retry, or a conflict
            intent = await self._first_use(cmd)
        else:
            metrics.GIFTS_COMMITTED.inc()  # a retry's replay is not counted again
        sent = await self._receipt(cmd, intent, legs.viewer_coins)
        if outcome is not Outcome.OK:
            sent = replace(sent, replayed=True)
        await self._tell(sent, intent, cmd.sender.handle)
        return sent

    async def _with_message(self, cmd: SendGift, intent: _Intent) -> _Intent:
        """The intent with its message and what its coins buy, once the chat's rules for the
        sender in this room (muted, rate) let it through; else nothing is billed."""
        pin = pin_for(self._policy.paid_message_tiers, intent.coins, intent.created_at_us)
        for gate in self._message_gates:
            await gate(cmd.sender.id, intent.stream_id, intent.creator_id)
        return replace(intent, message=cmd.message, pin=pin)

    def add_gate(self, gate: GiftGate) -> None:
        """A rule the economy does not own, asked before every gift is billed."""
        self._gates.append(gate)

    def add_message_gate(self, gate: MessageGate) -> None:
        """A rule for a gift's message (the room's chat rules), asked before it is billed."""
        self._message_gates.append(gate)

    def add_message_observer(self, observer: PaidMessageObserver) -> None:
        """Called with every committed gift's paid message, after its gift observers (at
        least once, like them)."""
        self._message_observers.append(observer)

    def add_observer(self, observer: GiftObserver) -> None:
        """Called with every committed gift, after the commit: the first time, and again
        when its sender retries (at least once: the process that committed it may have died
        before telling anyone; observers take each ``send_id`` once)."""
        self._observers.append(observer)

    async def _tell(self, sent: GiftSent, intent: _Intent, handle: str) -> None:
        gift = self._catalog.gifts().get(sent.gift_id)  # None: retired since it was sent
        comboable = gift is not None and gift.combo
        for observer in self._observers:
            await observer(sent, handle, comboable)
        if intent.message is not None and intent.pin is not None:
            said = _message_sent(sent, intent.message, intent.pin, handle)
            for message_observer in self._message_observers:
                await message_observer(said)

    async def _replay(self, cmd: SendGift) -> tuple[GiftSent, _Intent] | None:
        """The receipt of an earlier send with this key, if it reached the ledger."""

        def work() -> _Intent | None:
            with self._db.connect() as conn:
                prior = _find_intent(conn, cmd.sender.id, cmd.idempotency_key)
                if prior is None or not _transfer_exists(conn, cmd):
                    return None
                return prior

        prior = await asyncio.to_thread(work)
        if prior is None:
            return None
        _same_gift_or_conflict(prior, cmd)
        return replace(await self._receipt(cmd, prior), replayed=True), prior

    def _load_cached(self, cmd: SendGift, at_us: int) -> _Loaded | None:
        """What ``_load`` reads, when it is in memory (the usual case in a busy room); the debt
        may still be unknown (None): it is re-read every few seconds."""
        debt, refresh = self._debts.get_refreshing(cmd.sender.id)
        if refresh:
            self._debt_reads.prefetch(cmd.sender.id)
        stream = self._streams.get(cmd.stream_id)
        if stream is None:
            return None
        creator = self._users.get(stream.creator_id)
        legs = self._wallets.cached_legs(cmd.sender.id, stream.creator_id)
        profile = self._spending.cached_refreshing(cmd.sender.id)
        if creator is None or legs is None or profile is None:
            return None
        limits = self._spending.limits_for(cmd.sender, profile, at_us)
        day_spent = daily_spend = None
        if limits.day_limit_coins or limits.week or limits.month:
            daily_spend = self._wallets.cached_id(DAILY_SPEND)
            if daily_spend is None:
                return None
        if limits.day_limit_coins:
            day_spent = self._wallets.cached_day_account(cmd.sender.id, limits.day)
            if day_spent is None:  # the first gift of the day here
                return None
        periods = self._spending.cached_period_legs(cmd.sender.id, limits)
        if periods is None:
            return None
        fractions = None
        if self._policy.diamonds_per_100_coins % 100:
            fractions = self._wallets.cached_fraction_legs(stream.creator_id)
            if fractions is None:
                return None
        viewer_coins, gifts_spent, diamonds_issued, creator_diamonds = legs
        return (
            debt,
            stream,
            creator,
            MoneyLegs(
                viewer_coins,
                gifts_spent,
                diamonds_issued,
                creator_diamonds,
                day_spent,
                daily_spend,
                fractions,
                limits,
                periods,
            ),
            profile,
        )

    def _read_debts(self, user_ids: list[int]) -> dict[int, int]:
        """Each user's coin debt (0 without a debt account), in one query."""
        names = {f"user:{user_id}:coin_debt": user_id for user_id in user_ids}
        with self._reads.connect() as conn:
            rows = conn.execute(
                select(accounts.c.name, accounts.c.debits_posted - accounts.c.credits_posted).where(
                    accounts.c.name.in_(list(names))
                )
            ).all()
        debts = dict.fromkeys(user_ids, 0)
        for name, debt in rows:
            debts[names[name]] = int(debt)
        for user_id, debt in debts.items():
            if debt == 0:  # a debt is re-read every time, so settling it shows at once
                self._debts.put(user_id, debt)
            else:
                self._debts.drop(user_id)
        return debts

    async def _load_once(self, cmd: SendGift, at_us: int, today: date) -> _Loaded:
        """``_load`` on a worker thread, shared by the sender's gifts asking at the same time."""
        key = (cmd.sender.id, cmd.stream_id, today)
        loading = self._loading.get(key)
        if loading is not None:
            try:
                return await asyncio.shield(loading)
            except asyncio.CancelledError:
                if not loading.cancelled():
                    raise  # this gift was cancelled
            # The gift that was reading was cancelled, and its read with it: read here.
            return await asyncio.to_thread(self._load, cmd, at_us)
        loading = self._loading[key] = asyncio.get_running_loop().create_future()
        try:
            loaded = await asyncio.to_thread(self._load, cmd, at_us)
        except Exception as exc:
            loading.set_exception(exc)
            loading.exception()  # retrieved: nobody else may be waiting for it
            raise
        except BaseException:
            loading.cancel()
            raise
        else:
            loading.set_result(loaded)
            return loaded
        finally:
            del self._loading[key]

    def _load(self, cmd: SendGift, at_us: int) -> _Loaded:
        with self._db.connect() as conn:
            debt = self._debts.get(cmd.sender.id)
            if debt is None:
                debt_account = find_account(conn, f"user:{cmd.sender.id}:coin_debt")
                debt = 0 if debt_account is None else -debt_account.balance
                if debt == 0:  # a debt is re-read every time, so settling it shows at once
                    self._debts.put(cmd.sender.id, debt)
            stream = self._streams.get(cmd.stream_id)
            if stream is None:
                stream = find_stream(conn, cmd.stream_id)
                if stream is not None:
                    self._streams.put(stream.id, stream)
            creator = None
            if stream is not None:
                creator = self._users.get(stream.creator_id)
                if creator is None:
                    creator = find_user(conn, stream.creator_id)
                    if creator is not None:
                        self._users.put(creator.id, creator)
        profile = self._spending.cached(cmd.sender.id) or self._spending.profile(cmd.sender.id)
        legs = None
        if creator is not None:
            legs = money_legs(
                self._wallets,
                self._spending,
                cmd.sender,
                creator.id,
                self._spending.limits_for(cmd.sender, profile, at_us),
                fractional=self._policy.diamonds_per_100_coins % 100 != 0,
            )
        return debt, stream, creator, legs, profile

    def _check(
        self,
        cmd: SendGift,
        debt: int,
        stream: Stream | None,
        creator: User | None,
        today: date,
    ) -> _Intent:
        if stream is None or creator is None:
            raise NotFound(Code.STREAM_NOT_FOUND, f"no stream {cmd.stream_id!r}")
        if not stream.live:
            raise Conflict(Code.STREAM_NOT_LIVE, "gifts can only be sent to a live stream")
        gift = self._catalog.get(cmd.gift_id)
        if not gift.available_at(now_us()):
            raise Conflict(Code.GIFT_NOT_ON_SALE, f"{gift.name('en')} is not on sale now")
        sender = cmd.sender
        if sender.id == creator.id:
            raise Forbidden(Code.CANNOT_GIFT_SELF, "creators cannot send gifts to themselves")
        if sender.blocked:
            raise Forbidden(Code.ACCOUNT_BLOCKED, "this account is blocked")
        if creator.blocked:
            raise Forbidden(Code.CREATOR_UNAVAILABLE, "this creator cannot receive gifts")
        rule = self._policy.age_rule
        rule.require(sender, today, "sending gifts")
        if not rule.allows(creator, today):
            raise Forbidden(Code.CREATOR_UNDER_AGE, "this creator cannot receive gifts")
        refuse_in_debt(debt)
        coins = gift.price_coins * cmd.count
        diamonds, hundredths = split_diamonds(coins, self._policy.diamonds_per_100_coins)
        return _Intent(
            stream_id=stream.id,
            creator_id=creator.id,
            gift_id=gift.gift_id,
            gift_version=gift.version,
            count=cmd.count,
            coins=coins,
            diamonds=diamonds,
            created_at_us=now_us(),
            diamond_hundredths=hundredths,
        )

    async def _first_use(self, cmd: SendGift) -> _Intent:
        """What the key was first used for, if it is this gift; else a conflict."""
        prior = await asyncio.to_thread(self._find_intent, cmd.sender.id, cmd.idempotency_key)
        if prior is None:  # the transfers were posted by other means than a gift
            raise Conflict(
                Code.IDEMPOTENCY_KEY_REUSED, "this idempotency key was used for another gift"
            )
        _same_gift_or_conflict(prior, cmd)
        return prior

    def _find_intent(self, sender_id: int, key: str) -> _Intent | None:
        with self._db.connect() as conn:
            return _find_intent(conn, sender_id, key)

    def _annex(self, cmd: SendGift, intent: _Intent, coins_leg: str) -> Annex:
        """The gift_sends row, in ``GIFT_SENDS.columns`` order; with a message, in
        ``GIFT_SENDS_MESSAGE``'s (the plain gift's insert stays as it was)."""
        row = (
            cmd.sender.id,
            cmd.idempotency_key,
            intent.stream_id,
            intent.creator_id,
            intent.gift_id,
            intent.gift_version,
            intent.count,
            intent.coins,
            intent.diamonds,
            coins_leg,
            intent.created_at_us,
        )
        pin = intent.pin
        if intent.message is None or pin is None:
            return GIFT_SENDS.name, row
        message = (intent.message, pin.tier, pin.colour, pin.pinned_until_us)
        return GIFT_SENDS_MESSAGE.name, (*row, *message)

    async def _post(self, cmd: SendGift, intent: _Intent, legs: MoneyLegs) -> Outcome:
        """OK (new), EXISTS or ID_REUSED_WITH_DIFFERENT_FIELDS (the key's transfers were there:
        the stored row tells a retry from a conflict); any other refusal raises."""
        base = send_id_of(cmd.sender.id, cmd.idempotency_key)
        chain = money_chain(
            base,
            legs,
            intent.coins,
            intent.diamonds,
            intent.diamond_hundredths,
            TransferCode.GIFT,
        )
        outcomes = await self._engine.submit(chain, self._annex(cmd, intent, coins_leg_id(base)))
        failed = chain_outcome(outcomes)
        if failed.succeeded:
            return failed  # OK, or EXISTS: an annexed chain is all new or all replayed
        if failed is Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS:
            return failed  # e.g. a retry after a price change: the first gift's row decides
        if failed is Outcome.EXCEEDS_DEBIT_LIMIT and legs.limits is not None:
            raise await asyncio.to_thread(
                self._spending.refusal,
                cmd.sender.id,
                refused_leg(chain, outcomes),
                legs.limits,
                legs.day_spent,
            )
        raise gift_failure(failed)

    async def _receipt(
        self, cmd: SendGift, intent: _Intent, coins_account: int | None = None
    ) -> GiftSent:
        if coins_account is not None:  # the usual case: read with the other receipts' balances
            balance = await self._balances.get(coins_account)
        else:
            balance = await asyncio.to_thread(self._wallets.coins_available, cmd.sender.id)
        return GiftSent(
            send_id=send_id_of(cmd.sender.id, cmd.idempotency_key),
            stream_id=intent.stream_id,
            creator_id=intent.creator_id,
            sender_id=cmd.sender.id,
            gift_id=intent.gift_id,
            gift_version=intent.gift_version,
            count=intent.count,
            coins=intent.coins,
            diamonds=intent.diamonds,
            balance_coins=balance,
            created_at_us=intent.created_at_us,
        )


def money_legs(
    wallets: Wallets,
    spending: Spending,
    payer: User,
    creator_id: int,
    limits: ChainLimits,
    *,
    fractional: bool,
) -> MoneyLegs:
    """The accounts of a payment from ``payer`` to ``creator_id``, opened on first need."""
    capped = limits.day_limit_coins > 0
    periods = spending.period_legs(payer.id, limits)
    counted = capped or bool(periods)
    return MoneyLegs(
        viewer_coins=wallets.user(payer.id).coins,
        gifts_spent=wallets.platform(GIFTS_SPENT, "COIN"),
        diamonds_issued=wallets.platform(DIAMONDS_ISSUED, "DIAMOND"),
        creator_diamonds=wallets.user(creator_id).diamonds,
        day_spent=wallets.day_account(payer.id, limits.day) if capped else None,
        daily_spend=wallets.platform(DAILY_SPEND, "COIN") if counted else None,
        fractions=(wallets.fraction_issuer(), wallets.fraction(creator_id)) if fractional else None,
        limits=limits,
        periods=periods,
    )


def coins_leg_id(base: str) -> str:
    return base + ":c"


def money_chain(
    base: str,
    legs: MoneyLegs,
    coins: int,
    diamonds: int,
    diamond_hundredths: int,
    code: TransferCode,
) -> list[Transfer]:
    """A payment's linked chain, its ids derived from ``base``: the day's spend (with the cap
    as its limit), the week's and month's for a payer with such limits, the payer's coins, the
    creator's whole diamonds and their hundredths."""
    return shared_chain(base, legs, [(base, coins, diamonds, diamond_hundredths)], code)


def shared_chain(
    base: str,
    legs: MoneyLegs,
    shares: list[tuple[str, int, int, int]],
    code: TransferCode,
) -> list[Transfer]:
    """One linked chain paying several shares (each ``(its base, coins, diamonds,
    hundredths)``) from one payer to one creator: the day's spend of them all, ``base:s``,
    then each share's legs. Any leg refused, none of them commits (gifted subscriptions)."""
    chain: list[Transfer] = []
    for share_base, coins, diamonds, diamond_hundredths in shares:
        chain.extend(_share_legs(share_base, legs, coins, diamonds, diamond_hundredths, code))
    if legs.daily_spend is not None:
        # First, so that an over-cap payment is refused for the cap whatever else is wrong,
        # as before the cap moved into the ledger. The limits in force on this node are the
        # legs' limits: a changed setting applies from the next payment.
        coins = sum(share[1] for share in shares)
        spends = [
            Transfer(
                base + leg.suffix,
                leg.account,
                legs.daily_spend,
                coins,
                code,
                debit_limit=leg.limit_coins,
            )
            for leg in legs.periods
        ]
        if legs.day_spent is not None:
            day = Transfer(
                base + ":s",
                legs.day_spent,
                legs.daily_spend,
                coins,
                code,
                debit_limit=legs.day_limit_coins,
            )
            spends.insert(0, day)
        chain[:0] = spends
    return [t._replace(linked=i < len(chain) - 1) for i, t in enumerate(chain)]


def _share_legs(
    base: str,
    legs: MoneyLegs,
    coins: int,
    diamonds: int,
    diamond_hundredths: int,
    code: TransferCode,
) -> list[Transfer]:
    """The payer's coins, the creator's whole diamonds and their hundredths, for one share."""
    chain = [Transfer(coins_leg_id(base), legs.viewer_coins, legs.gifts_spent, coins, code)]
    if diamonds > 0:  # at a rate below 100, a 1-coin gift earns no whole diamond
        chain.append(
            Transfer(base + ":d", legs.diamonds_issued, legs.creator_diamonds, diamonds, code)
        )
    if diamond_hundredths > 0:
        # What the whole diamonds leave of the exact rate, carried in hundredths until
        # they make whole diamonds (economy/diamond_fractions.py), in the same chain.
        assert legs.fractions is not None, "a rate with fractions opens their accounts"
        issuer, creator_fraction = legs.fractions
        chain.append(Transfer(base + ":f", issuer, creator_fraction, diamond_hundredths, code))
    return chain


def refused_leg(chain: list[Transfer], outcomes: list[Outcome]) -> str:
    """The id of the spend leg whose limit refused a chain (``exceeds_debit_limit``)."""
    return next(
        t.id for t, o in zip(chain, outcomes, strict=True) if o is Outcome.EXCEEDS_DEBIT_LIMIT
    )


def chain_outcome(outcomes: list[Outcome]) -> Outcome:
    """What a linked chain came to: OK or EXISTS (all new or all replayed), or the outcome
    of the transfer that failed it."""
    if all(o.succeeded for o in outcomes):
        return outcomes[0]
    return next(o for o in outcomes if o is not Outcome.LINKED_EVENT_FAILED)


def _same_gift_or_conflict(prior: _Intent, cmd: SendGift) -> None:
    """The key covers the message too: a retry with another text would pin twice."""
    was = (prior.stream_id, prior.gift_id, prior.count, prior.message)
    if was != (cmd.stream_id, cmd.gift_id, cmd.count, cmd.message):
        raise Conflict(
            Code.IDEMPOTENCY_KEY_REUSED, "this idempotency key was used for another gift"
        )


def _message_sent(sent: GiftSent, text: str, pin: Pin, handle: str) -> PaidMessageSent:
    return PaidMessageSent(
        send_id=sent.send_id,
        stream_id=sent.stream_id,
        creator_id=sent.creator_id,
        sender_id=sent.sender_id,
        sender=handle,
        text=text,
        gift_id=sent.gift_id,
        coins=sent.coins,
        tier=pin.tier,
        colour=pin.colour,
        pinned_until_us=pin.pinned_until_us,
        at_us=sent.created_at_us,
    )


def gift_failure(outcome: Outcome, what: str = "gift") -> DomainError:
    """The answer to a payment (a gift, a subscription) the ledger refused."""
    if outcome is Outcome.INSUFFICIENT_FUNDS:
        return PaymentRequired(
            Code.INSUFFICIENT_COINS, f"not enough coins for this {what}; buy more"
        )
    if outcome in (Outcome.DEBIT_ACCOUNT_FROZEN, Outcome.CREDIT_ACCOUNT_FROZEN):
        return Forbidden(Code.ACCOUNT_FROZEN, f"an account in this {what} is frozen")
    return Conflict(Code.GIFT_REFUSED, f"the ledger refused this {what}: {outcome.value}")


def _find_intent(conn: Connection, sender_id: int, key: str) -> _Intent | None:
    row = conn.execute(
        select(gift_sends).where(
            and_(gift_sends.c.sender_id == sender_id, gift_sends.c.idempotency_key == key)
        )
    ).first()
    if row is None:
        return None
    m = row._mapping
    message = m["message"]
    pin = None
    if message is not None:
        pin = Pin(int(m["message_tier"]), m["message_colour"], int(m["message_pinned_until_us"]))
    return _Intent(
        stream_id=m["stream_id"],
        creator_id=int(m["creator_id"]),
        gift_id=m["gift_id"],
        gift_version=int(m["gift_version"]),
        count=int(m["count"]),
        coins=int(m["coins"]),
        diamonds=int(m["diamonds"]),
        created_at_us=int(m["created_at_us"]),
        message=message,
        pin=pin,
    )


def _transfer_exists(conn: Connection, cmd: SendGift) -> bool:
    coins_leg = send_id_of(cmd.sender.id, cmd.idempotency_key) + ":c"
    return (
        conn.execute(select(transfers.c.seq).where(transfers.c.id == coins_leg)).first() is not None
    )
