"""Buying coins: an order, a provider checkout, and coins credited only on a verified webhook.

The state of a payment is folded from every event stored for it, so however many times and in
whatever order the provider delivers, the ledger ends the same:

    succeeded  → coins_issued → user coins (C), and the fiat leg; an open debt is settled first
    refunded   → claw back C * refunded / paid coins (partial refunds add up)
    disputed   → claw back everything
    clawback   → from the user's coins while there are any, the rest becomes a debt

Every transfer id is derived from the provider's payment id, so each happens once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Final

from sqlalchemy import Connection, Engine, Row, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from giftwave.clock import now_us
from giftwave.db.tables import payment_events, payment_orders, users
from giftwave.economy import risk_flags
from giftwave.economy.packages import (
    CoinPackage,
    custom_price_minor,
    get_package,
    list_packages,
)
from giftwave.economy.spending import Spending
from giftwave.economy.wallets import COINS_ISSUED, Wallets
from giftwave.errors import Code, Conflict, Forbidden, Invalid, NotFound, RateLimited, Unavailable
from giftwave.identity.users import AgeRule, User
from giftwave.ledger.accounts import find_account
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.model import Outcome, Transfer, TransferCode
from giftwave.ledger.queries import existing_transfer_ids, reversed_amount
from giftwave.logs import audit
from giftwave.money import check_price
from giftwave.payments.base import (
    CheckoutRequest,
    PaymentEvent,
    PaymentEventKind,
    PaymentProvider,
    ProviderUnavailable,
)

log = logging.getLogger(__name__)

CLAWBACK_ATTEMPTS: Final = 5
ORDER_ID_MAX_CHARS: Final = 40  # payment_orders.id and payment_events.order_id
AMOUNT_MAX_MINOR: Final = 2**62  # what a BIGINT column and the ledger hold


class OrderStatus(enum.StrEnum):
    OPEN = "open"  # waiting for the buyer at the provider's checkout
    PAID = "paid"
    FAILED = "failed"
    REFUNDED = "refunded"
    PARTLY_REFUNDED = "partly_refunded"
    DISPUTED = "disputed"
    MISMATCH = "mismatch"  # the provider reported another amount: held for an operator
    # The buyer gave up before paying. A payment that arrives all the same (a checkout paid in
    # another tab, a webhook late) is credited: money received always is (docs/economy.md).
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    user_id: int
    provider: str
    provider_session_id: str | None
    provider_payment_id: str | None
    checkout_url: str | None
    coins: int
    amount_minor: int
    currency: str
    status: OrderStatus
    created_at_us: int


def _to_order(m: object) -> Order:
    return _order_of(m._mapping)  # type: ignore[attr-defined]


def _order_of(r: Mapping[str, Any]) -> Order:
    return Order(
        id=r["id"],
        user_id=int(r["user_id"]),
        provider=r["provider"],
        provider_session_id=r["provider_session_id"],
        provider_payment_id=r["provider_payment_id"],
        checkout_url=r["checkout_url"],
        coins=int(r["coins"]),
        amount_minor=int(r["amount_minor"]),
        currency=r["currency"],
        status=OrderStatus(r["status"]),
        created_at_us=int(r["created_at_us"]),
    )


def find_order(conn: Connection, order_id: str) -> Order | None:
    if not 0 < len(order_id) <= 40:
        return None
    row = conn.execute(select(payment_orders).where(payment_orders.c.id == order_id)).first()
    return None if row is None else _to_order(row)


def orders_of(conn: Connection, user_id: int, limit: int = 100) -> list[Order]:
    """A user's orders, newest first."""
    rows = conn.execute(
        select(payment_orders)
        .where(payment_orders.c.user_id == user_id)
        .order_by(payment_orders.c.created_at_us.desc())
        .limit(limit)
    ).all()
    return [_to_order(r) for r in rows]


def recent_orders(conn: Connection, user_id: int | None, limit: int) -> list[Order]:
    """Everyone's orders (or one user's), newest first: the operator's view."""
    query = select(payment_orders).order_by(payment_orders.c.created_at_us.desc()).limit(limit)
    if user_id is not None:
        query = query.where(payment_orders.c.user_id == user_id)
    return [_to_order(r) for r in conn.execute(query).all()]


def find_order_by_session(conn: Connection, provider: str, session_id: str) -> Order | None:
    row = conn.execute(
        select(payment_orders).where(
            payment_orders.c.provider == provider,
            payment_orders.c.provider_session_id == session_id,
        )
    ).first()
    return None if row is None else _to_order(row)


def _lock_buyer(conn: Connection, user_id: int) -> None:
    """Make two orders of one buyer take turns until the first commits, so the second counts
    it. PostgreSQL: the buyer's row lock. SQLite: nothing here; the order's INSERT, the
    transaction's first write, takes the database's one write lock (a read before it would
    pin a snapshot the write could not use, hence no savepoint before the INSERT)."""
    conn.execute(select(users.c.id).where(users.c.id == user_id).with_for_update()).first()


def _bought_today(conn: Connection, user_id: int, now: int) -> int:
    """The coins of the user's orders of the last 24 hours that may still be paid."""
    bought = conn.execute(
        select(func.coalesce(func.sum(payment_orders.c.coins), 0)).where(
            payment_orders.c.user_id == user_id,
            payment_orders.c.created_at_us > now - DAY_US,
            payment_orders.c.status.not_in((OrderStatus.FAILED.value, OrderStatus.CANCELLED.value)),
        )
    ).scalar_one()
    return int(bought)


def topup_id(provider: str, payment_id: str) -> str:
    return f"topup:{provider}:{payment_id}"


@dataclass(frozen=True, slots=True)
class TopUpRisk:
    """What a risk flag does to buying coins (docs/risk.md): a card-testing flag blocks the
    user's top-ups for ``block_s``; any open flag caps their coins per 24 hours. Both are read
    from the database at the order, so they hold on every node."""

    block_s: int = 6 * 3_600
    flagged_coins_per_day: int = 5_000


DAY_US: Final = 86_400 * 1_000_000
FINGERPRINT_MAX_CHARS: Final = 64  # payment_orders.card_fingerprint


class TopUps:
    def __init__(
        self,
        db: Engine,
        engine: PostingEngine,
        wallets: Wallets,
        provider: PaymentProvider,
        age_rule: AgeRule,
        spending: Spending,
        risk: TopUpRisk | None = None,
    ) -> None:
        self._risk = TopUpRisk() if risk is None else risk
        self._db = db
        self._spending = spending  # a self-excluded viewer buys no coins
        self._engine = engine
        self._wallets = wallets
        self._provider = provider
        self._age_rule = age_rule
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    @property
    def provider(self) -> PaymentProvider:
        return self._provider

    async def create_order(
        self,
        user: User,
        *,
        package_id: int | None,
        coins: int | None,
        currency: str,
        idempotency_key: str,
        site_url: str,
        return_url: str,
        today: date,
        address_hash: str | None = None,
    ) -> Order:
        """An order and its checkout; the same key again answers the same order.
        ``address_hash``: the buyer's network address, hashed (what the card rules count)."""
        if user.blocked:
            raise Forbidden(Code.ACCOUNT_BLOCKED, "this account is blocked")
        self._age_rule.require(user, today, "buying coins")
        await asyncio.to_thread(self._spending.check_not_excluded, user.id)
        if (package_id is None) == (coins is None):
            raise Invalid(Code.PACKAGE_OR_COINS, "give either package_id or a custom coins amount")
        existing, order_coins, amount = await asyncio.to_thread(
            self._price, user, package_id, coins, currency, idempotency_key
        )
        if existing is None:
            await asyncio.to_thread(self._check_risk, user.id, order_coins, address_hash)
        if existing is not None:
            if (existing.coins, existing.amount_minor, existing.currency) != (
                order_coins,
                amount,
                currency,
            ):
                raise Conflict(Code.IDEMPOTENCY_KEY_REUSED, "this key was used for another order")
            return existing
        # A package priced before the rule existed (KWD 305 fils) is refused, never sent
        # rounded: the buyer pays exactly the price shown.
        check_price(amount, currency)
        order_id = "ord_" + secrets.token_urlsafe(15)
        try:
            session = await self._provider.create_checkout(
                CheckoutRequest(
                    order_id=order_id,
                    user_id=user.id,
                    coins=order_coins,
                    amount_minor=amount,
                    currency=currency,
                    success_url=f"{return_url}?order={order_id}&result=success",
                    cancel_url=f"{return_url}?order={order_id}&result=cancel",
                    site_url=site_url,
                )
            )
        except ProviderUnavailable as exc:
            raise Unavailable(exc.code, exc.detail) from exc
        return await asyncio.to_thread(
            self._insert_order,
            user,
            order_id,
            idempotency_key,
            package_id,
            order_coins,
            amount,
            currency,
            session.session_id,
            session.url,
            address_hash,
        )

    def _price(
        self,
        user: User,
        package_id: int | None,
        coins: int | None,
        currency: str,
        key: str,
    ) -> tuple[Order | None, int, int]:
        with self._db.connect() as conn:
            row = conn.execute(
                select(payment_orders).where(
                    payment_orders.c.user_id == user.id, payment_orders.c.idempotency_key == key
                )
            ).first()
            existing = None if row is None else _to_order(row)
            if package_id is not None:
                package = get_package(conn, package_id)
                if not package.active or package.currency != currency:
                    raise NotFound(Code.PACKAGE_NOT_FOUND, f"no {currency} package {package_id}")
                return existing, package.coins, package.price_minor
            assert coins is not None
            return existing, coins, custom_price_minor(list_packages(conn, currency), coins)

    def _check_risk(self, user_id: int, coins: int, address_hash: str | None) -> None:
        """What the user's risk flags allow (``TopUpRisk``): a frozen account buys nothing, a
        card tester (or anyone ordering from a card tester's address) waits out the block, a
        flagged buyer stays under the flagged cap. Read
        before the provider's checkout so a refused order costs none; the cap is held again,
        exactly, where the order is written (``_hold_flagged_cap``)."""
        now = now_us()
        block_us = self._risk.block_s * 1_000_000
        with self._db.connect() as conn:
            if risk_flags.is_frozen(conn, user_id):
                raise Forbidden(Code.ACCOUNT_FROZEN, "this account is frozen: contact support")
            tested_at = risk_flags.last_card_testing_us(conn, user_id, now - block_us)
            if tested_at is None and address_hash is not None:
                tested_at = risk_flags.last_card_testing_at_address(
                    conn, address_hash, now - block_us
                )
            if tested_at is not None:
                raise RateLimited(
                    Code.TOPUPS_BLOCKED,
                    "too many failed payments: buying coins is paused for a while",
                    retry_after_s=max(1.0, (tested_at + block_us - now) / 1e6),
                )
            if risk_flags.has_active_flag(conn, user_id):
                self._refuse_over_cap(_bought_today(conn, user_id, now), coins)

    def _hold_flagged_cap(self, conn: Connection, user_id: int, coins: int) -> None:
        """The flagged cap, exact on any number of nodes: called after the new order's INSERT,
        in its transaction, which holds the buyer (``_lock_buyer``). Over the cap, the
        transaction rolls back: the order is not written."""
        if not risk_flags.has_active_flag(conn, user_id):
            return
        self._refuse_over_cap(_bought_today(conn, user_id, now_us()) - coins, coins)

    def _refuse_over_cap(self, bought: int, coins: int) -> None:
        cap = self._risk.flagged_coins_per_day
        if bought + coins > cap:
            raise Forbidden(
                Code.TOPUP_LIMIT_REACHED,
                f"this account may buy at most {cap} coins a day for now",
                limit_coins=cap,
                bought_coins=bought,
            )

    def _insert_order(
        self,
        user: User,
        order_id: str,
        key: str,
        package_id: int | None,
        coins: int,
        amount: int,
        currency: str,
        session_id: str,
        url: str,
        address_hash: str | None = None,
    ) -> Order:
        now = now_us()
        values = {
            "id": order_id,
            "user_id": user.id,
            "idempotency_key": key,
            "provider": self._provider.name,
            "provider_session_id": session_id,
            "provider_payment_id": None,
            "checkout_url": url,
            "package_id": package_id,
            "coins": coins,
            "amount_minor": amount,
            "currency": currency,
            "status": OrderStatus.OPEN.value,
            "created_at_us": now,
            "updated_at_us": now,
            "address_hash": address_hash,
        }
        try:
            with self._db.begin() as conn:
                _lock_buyer(conn, user.id)
                conn.execute(insert(payment_orders).values(values))
                self._hold_flagged_cap(conn, user.id, coins)
            return _order_of(values)
        except IntegrityError:
            pass  # the same key, concurrently: the first order stands
        with self._db.connect() as conn:
            row = conn.execute(
                select(payment_orders).where(
                    payment_orders.c.user_id == user.id, payment_orders.c.idempotency_key == key
                )
            ).one()
        return _to_order(row)

    # ---- reads, one connection each (blocking: a route runs them on a worker thread) ----

    def packages(self, currency: str) -> list[CoinPackage]:
        """The coin packages on sale in ``currency``."""
        with self._db.connect() as conn:
            return list_packages(conn, currency)

    def order_of(self, user: User, order_id: str) -> Order:
        """The buyer's order; another user's is not there (``order_not_found``)."""
        with self._db.connect() as conn:
            order = find_order(conn, order_id)
        if order is None or order.user_id != user.id:
            raise NotFound(Code.ORDER_NOT_FOUND, f"no order {order_id!r}")
        return order

    def orders_of(self, user: User) -> list[Order]:
        """The buyer's latest orders, newest first."""
        with self._db.connect() as conn:
            return orders_of(conn, user.id)

    def checkout_order(self, provider: str, session_id: str) -> Order:
        """The order a provider's checkout session pays (``checkout_not_found``)."""
        order = None
        if 0 < len(session_id) <= 64:
            with self._db.connect() as conn:
                order = find_order_by_session(conn, provider, session_id)
        if order is None:
            raise NotFound(Code.CHECKOUT_NOT_FOUND, f"no {provider} checkout with that id")
        return order

    def refunded_so_far(self, provider: str, payment_id: str) -> int:
        """The largest cumulative refund recorded for the payment (0: none)."""
        with self._db.connect() as conn:
            rows = conn.execute(
                select(payment_events.c.amount_minor).where(
                    payment_events.c.provider == provider,
                    payment_events.c.payment_id == payment_id,
                    payment_events.c.kind == PaymentEventKind.REFUNDED.value,
                )
            ).all()
        return max((int(r.amount_minor) for r in rows), default=0)

    def cancel_order(self, user: User, order_id: str) -> Order:
        """The buyer gives up an unpaid order; again on a cancelled one answers the same.
        Another user's order is not there (``order_not_found``); any other state is
        ``order_not_open``. One conditional UPDATE: a webhook racing it either finds the order
        cancelled (and credits it all the same) or has moved it on first."""
        with self._db.begin() as conn:
            order = find_order(conn, order_id)
            if order is None or order.user_id != user.id:
                raise NotFound(Code.ORDER_NOT_FOUND, f"no order {order_id!r}")
            if order.status is OrderStatus.CANCELLED:
                return order
            done = conn.execute(
                update(payment_orders)
                .where(
                    payment_orders.c.id == order.id,
                    payment_orders.c.status == OrderStatus.OPEN.value,
                )
                .values(status=OrderStatus.CANCELLED.value, updated_at_us=now_us())
            )
            fresh = find_order(conn, order.id)
        assert fresh is not None, "read in the same transaction"
        if done.rowcount != 1:
            raise Conflict(
                Code.ORDER_NOT_OPEN,
                f"this order is {fresh.status.value}: only an unpaid order can be cancelled",
                order_status=fresh.status.value,
            )
        return fresh

    # --- webhooks ---------------------------------------------------------------------------

    async def handle_event(self, event: PaymentEvent) -> None:
        """Store a verified event (once) and bring the ledger in line with the payment."""
        if len(event.event_id) > 255 or len(event.payment_id) > 255:
            raise Invalid(Code.MALFORMED_WEBHOOK, "an id in the event is too long")
        if event.order_id is not None and len(event.order_id) > ORDER_ID_MAX_CHARS:
            raise Invalid(Code.MALFORMED_WEBHOOK, "the event's order id is too long")
        if not 0 <= event.amount_minor <= AMOUNT_MAX_MINOR:
            raise Invalid(Code.MALFORMED_WEBHOOK, "the event's amount is out of range")
        lock = self._locks.setdefault((event.provider, event.payment_id), asyncio.Lock())
        try:
            async with lock:
                state = await asyncio.to_thread(self._store_and_fold, event)
                await self._reconcile(state, event.payment_id)
        finally:
            if not lock.locked():  # bounded: a lock lives while its payment is busy
                self._locks.pop((event.provider, event.payment_id), None)

    def _store_and_fold(self, event: PaymentEvent) -> tuple[Order, int, bool] | None:
        """Store the event (once: a redelivery is already there) and fold every event of its
        payment, in one transaction."""
        with self._db.begin() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(payment_events).values(
                            provider=event.provider,
                            event_id=event.event_id,
                            payment_id=event.payment_id,
                            order_id=event.order_id if event.order_id else None,
                            kind=event.kind.value,
                            amount_minor=event.amount_minor,
                            currency=event.currency,
                            received_at_us=now_us(),
                        )
                    )
            except IntegrityError:
                pass  # a redelivery: already stored, reconciling again is harmless
            folded = self._fold(conn, event.provider, event.payment_id)
            if event.card_fingerprint:
                _note_card(conn, event)
            return folded

    async def _reconcile(self, state: tuple[Order, int, bool] | None, payment_id: str) -> None:
        if state is None:
            return  # nothing paid yet: a refund or dispute waits for its payment to arrive
        order, refunded_minor, disputed = state
        if order.status is OrderStatus.MISMATCH:
            return
        await self._credit(order, payment_id)
        if disputed or refunded_minor > 0:
            await self._claw_back(order, payment_id, refunded_minor, disputed)
        if disputed:
            status = OrderStatus.DISPUTED
        elif refunded_minor >= order.amount_minor:
            status = OrderStatus.REFUNDED
        elif refunded_minor > 0:
            status = OrderStatus.PARTLY_REFUNDED
        else:
            status = OrderStatus.PAID
        if status is not order.status:
            await asyncio.to_thread(self._set_status, order.id, status)

    def _fold(
        self, conn: Connection, provider: str, payment_id: str
    ) -> tuple[Order, int, bool] | None:
        events = conn.execute(
            select(payment_events).where(
                payment_events.c.provider == provider,
                payment_events.c.payment_id == payment_id,
            )
        ).all()
        kinds = {PaymentEventKind(e.kind) for e in events}
        order = self._order_for(conn, provider, payment_id, events)
        if order is None:
            return None
        if PaymentEventKind.SUCCEEDED not in kinds:
            if PaymentEventKind.FAILED in kinds and order.status is OrderStatus.OPEN:
                self._set_status_in(conn, order.id, OrderStatus.FAILED)
            return None
        paid = next(e for e in events if e.kind == PaymentEventKind.SUCCEEDED.value)
        if (paid.amount_minor, paid.currency) != (order.amount_minor, order.currency):
            log.error(
                "payment %s paid %s %s for order %s",
                payment_id,
                paid.amount_minor,
                paid.currency,
                order.id,
            )
            self._set_status_in(conn, order.id, OrderStatus.MISMATCH)
            return replace(order, status=OrderStatus.MISMATCH), 0, False
        refunded = max(
            (int(e.amount_minor) for e in events if e.kind == PaymentEventKind.REFUNDED.value),
            default=0,
        )
        disputed = PaymentEventKind.DISPUTED in kinds
        return order, min(refunded, order.amount_minor), disputed

    def _order_for(
        self, conn: Connection, provider: str, payment_id: str, events: Sequence[Row[Any]]
    ) -> Order | None:
        row = conn.execute(
            select(payment_orders).where(
                payment_orders.c.provider == provider,
                payment_orders.c.provider_payment_id == payment_id,
            )
        ).first()
        if row is not None:
            return _to_order(row)
        order_ids = {e.order_id for e in events if e.order_id}
        for order_id in order_ids:
            order = find_order(conn, order_id)
            if order is not None and order.provider == provider:
                conn.execute(
                    update(payment_orders)
                    .where(
                        payment_orders.c.id == order.id,
                        payment_orders.c.provider_payment_id.is_(None),
                    )
                    .values(provider_payment_id=payment_id, updated_at_us=now_us())
                )
                return find_order(conn, order.id)
        return None

    def _set_status(self, order_id: str, status: OrderStatus) -> None:
        with self._db.begin() as conn:
            self._set_status_in(conn, order_id, status)

    @staticmethod
    def _set_status_in(conn: Connection, order_id: str, status: OrderStatus) -> None:
        conn.execute(
            update(payment_orders)
            .where(payment_orders.c.id == order_id)
            .values(status=status.value, updated_at_us=now_us())
        )

    async def _credit(self, order: Order, payment_id: str) -> None:
        base = topup_id(order.provider, payment_id)
        for _ in range(CLAWBACK_ATTEMPTS):
            chain = await asyncio.to_thread(self._credit_chain, order, base)
            if not chain:
                return  # credited before
            outcomes = await self._engine.submit(chain)
            if all(o.succeeded for o in outcomes):
                _audit_credit(order, payment_id, chain)
                return
            # The debt changed under us (a concurrent settle): read it again and retry.
            log.warning("top-up %s refused: %s; retrying", base, [o.value for o in outcomes])
        raise Unavailable(Code.LEDGER_BUSY, "could not credit the top-up; the provider will retry")

    def _credit_chain(self, order: Order, base: str) -> list[Transfer]:
        mine = self._wallets.user(order.user_id)
        issued = self._wallets.platform(COINS_ISSUED, "COIN")
        sales = self._wallets.fiat_sales(order.currency)
        held = self._wallets.fiat_provider(order.provider, order.currency)
        with self._db.connect() as conn:
            if existing_transfer_ids(conn, [base]):
                return []
            debt_account = find_account(conn, mine.coin_debt)
        assert debt_account is not None, "opened above"
        debt = max(0, -debt_account.balance)
        chain = [
            Transfer(base, issued, mine.coins, order.coins, TransferCode.TOPUP, linked=True),
            Transfer(base + ":fiat", sales, held, order.amount_minor, TransferCode.TOPUP),
        ]
        settle = min(debt, order.coins)
        if settle > 0:
            chain[-1] = chain[-1]._replace(linked=True)
            chain.append(
                Transfer(
                    base + ":settle", mine.coins, mine.coin_debt, settle, TransferCode.ADJUSTMENT
                )
            )
        return chain

    async def _claw_back(
        self, order: Order, payment_id: str, refunded_minor: int, disputed: bool
    ) -> None:
        base = topup_id(order.provider, payment_id)
        target_coins = (
            order.coins if disputed else order.coins * refunded_minor // order.amount_minor
        )
        target_fiat = order.amount_minor if disputed else refunded_minor
        code = TransferCode.CHARGEBACK if disputed else TransferCode.REFUND
        for _ in range(CLAWBACK_ATTEMPTS):
            chain = await asyncio.to_thread(
                self._claw_chain, order, base, target_coins, target_fiat, code
            )
            if not chain:
                return
            outcomes = await self._engine.submit(chain)
            if all(o.succeeded for o in outcomes):
                _audit_clawback(order, payment_id, chain, disputed)
                return
            if Outcome.INSUFFICIENT_FUNDS not in outcomes:
                log.error("clawback %s refused: %s", base, [o.value for o in outcomes])
                break
        raise Unavailable(
            Code.LEDGER_BUSY, "could not claw back the top-up; the provider will retry"
        )

    def _claw_chain(
        self, order: Order, base: str, target_coins: int, target_fiat: int, code: TransferCode
    ) -> list[Transfer]:
        with self._db.connect() as conn:
            clawed = reversed_amount(conn, base)
            fiat_back = reversed_amount(conn, base + ":fiat")
            coins_account = find_account(conn, f"user:{order.user_id}:coins")
        assert coins_account is not None, "a credited top-up has its account"
        mine = self._wallets.user(order.user_id)
        issued = self._wallets.platform(COINS_ISSUED, "COIN")
        owed = max(0, target_coins - clawed)
        take = min(owed, max(0, coins_account.available))
        tag = f"{base}:{code.value}:{target_coins}"
        chain: list[Transfer] = []
        if take > 0:
            chain.append(Transfer(tag + ":take", mine.coins, issued, take, code, reverses_id=base))
        if owed - take > 0:
            chain.append(
                Transfer(tag + ":debt", mine.coin_debt, issued, owed - take, code, reverses_id=base)
            )
        fiat_owed = max(0, target_fiat - fiat_back)
        if fiat_owed > 0:
            sales = self._wallets.fiat_sales(order.currency)
            held = self._wallets.fiat_provider(order.provider, order.currency)
            chain.append(
                Transfer(
                    f"{base}:fiat:{code.value}:{target_fiat}",
                    held,
                    sales,
                    fiat_owed,
                    code,
                    reverses_id=base + ":fiat",
                )
            )
        return [t._replace(linked=i < len(chain) - 1) for i, t in enumerate(chain)]


def _note_card(conn: Connection, event: PaymentEvent) -> None:
    """The card the provider reported, on its order (the first report stands)."""
    assert event.card_fingerprint
    o = payment_orders.c
    which = o.provider_payment_id == event.payment_id
    if event.order_id:
        which = or_(which, o.id == event.order_id)
    conn.execute(
        update(payment_orders)
        .where(o.provider == event.provider, which, o.card_fingerprint.is_(None))
        .values(card_fingerprint=event.card_fingerprint[:FINGERPRINT_MAX_CHARS])
    )


def _audit_credit(order: Order, payment_id: str, chain: list[Transfer]) -> None:
    """The audit lines of a credited top-up: once, when its chain committed."""
    audit(
        "audit.topup_credited",
        order_id=order.id,
        user_id=order.user_id,
        coins=order.coins,
        amount_minor=order.amount_minor,
        currency=order.currency,
        provider=order.provider,
        payment_id=payment_id,
        transfer_id=chain[0].id,
    )
    for transfer in chain:
        if transfer.id.endswith(":settle"):
            audit(
                "audit.debt_settled",
                user_id=order.user_id,
                asset="COIN",
                coins=transfer.amount,
                by="topup",
                transfer_id=transfer.id,
            )


def _audit_clawback(order: Order, payment_id: str, chain: list[Transfer], disputed: bool) -> None:
    """The audit lines of a refund or chargeback's clawback, and the debt it left."""
    cause = "chargeback" if disputed else "refund"
    audit(
        "audit.clawback",
        order_id=order.id,
        user_id=order.user_id,
        cause=cause,
        coins=sum(t.amount for t in chain if t.id.endswith((":take", ":debt"))),
        amount_minor=sum(t.amount for t in chain if ":fiat:" in t.id),
        currency=order.currency,
        payment_id=payment_id,
        transfer_id=chain[0].id,
    )
    for transfer in chain:
        if transfer.id.endswith(":debt"):
            audit(
                "audit.debt_created",
                user_id=order.user_id,
                asset="COIN",
                coins=transfer.amount,
                cause=cause,
                transfer_id=transfer.id,
            )
