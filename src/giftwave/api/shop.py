"""The catalogue, coin packages, top-ups, payment webhooks, and the sandbox checkout page."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from datetime import datetime
from typing import Annotated, Final, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from giftwave import metrics
from giftwave.api.auth import BuyingUser, economy_of
from giftwave.api.identity import client_address, today
from giftwave.api.problems import Problem
from giftwave.api.security_headers import CSP, PAGE_POLICY
from giftwave.api.state import public_base
from giftwave.clock import now_us
from giftwave.economy.catalog import LOCALES, Gift
from giftwave.economy.packages import CUSTOM_MAX_COINS
from giftwave.economy.services import Economy
from giftwave.economy.topups import (
    Order,
    OrderStatus,
)
from giftwave.errors import Code
from giftwave.money import exponent, format_money
from giftwave.payments.base import IgnoredEvent, PaymentEventKind
from giftwave.payments.sandbox import DEFAULT_CARD, SandboxProvider
from giftwave.sharing.visitors import server_secret
from giftwave.web.templates import render

log = logging.getLogger(__name__)
router = APIRouter(tags=["shop"])
Econ = Annotated[Economy, Depends(economy_of)]
# A payment provider's report: larger than the default body limit (api/body_limit.py).
WEBHOOK_MAX_BYTES: Final = 64 * 1024
WEBHOOK_TEMPLATE: Final = "/v1/payments/webhooks/{provider}"
ADDRESS_SECRET_NAME: Final = "risk_address"  # server_secrets: keys the buyers' address hashes
# What a stream id may look like in a return address (streams.id is at most 24 characters):
# only this shape reaches a URL, so a checkout can only come back to a page of this site.
STREAM_ID_PATTERN: Final = r"^[A-Za-z0-9_\-]{1,24}$"
_RETURN_PATH: Final = re.compile(r"/shop|/live/[A-Za-z0-9_\-]{1,24}")


def return_path(stream_id: str | None) -> str:
    """Where a checkout comes back to: the room it was opened from, else the shop."""
    return "/shop" if stream_id is None else f"/live/{stream_id}"


def safe_return_path(path: str) -> str:
    """``path`` if it is a place a checkout may come back to, else the shop: the sandbox page
    reads it from its own address, which anyone can write."""
    return path if _RETURN_PATH.fullmatch(path) else "/shop"


class GiftOut(BaseModel):
    gift_id: str
    version: int
    name: str
    names: dict[str, str]
    price_coins: int
    combo: bool
    image: str
    on_sale: bool

    @classmethod
    def of(cls, gift: Gift, locale: str) -> GiftOut:
        return cls(
            gift_id=gift.gift_id,
            version=gift.version,
            name=gift.name(locale),
            names=gift.names,
            price_coins=gift.price_coins,
            combo=gift.combo,
            image=gift.image,
            on_sale=gift.on_sale,
        )


@router.get("/v1/gifts", response_model=list[GiftOut])
async def gifts(
    economy: Econ, locale: Annotated[Literal["en", "es", "ar"], Query()] = "en"
) -> list[GiftOut]:
    """The gifts on sale now, cheapest first, with names in ``locale``."""
    assert locale in LOCALES
    now = int(datetime.now().timestamp() * 1e6)
    catalogue = await run_in_threadpool(economy.catalog.gifts)
    on_sale = [g for g in catalogue.values() if g.available_at(now)]
    return [GiftOut.of(g, locale) for g in sorted(on_sale, key=lambda g: (g.sort_order, g.gift_id))]


class PackageOut(BaseModel):
    id: int
    currency: str
    coins: int
    price_minor: int = Field(description="in the currency's minor unit (cents; yen for JPY)")
    currency_exponent: int = Field(description="price = price_minor / 10^currency_exponent")
    price: str = Field(description="the price as written in en_US")


@router.get("/v1/coin-packages", response_model=list[PackageOut])
async def packages(
    economy: Econ,
    currency: Annotated[str, Query(pattern=r"^[A-Z]{3}$")] = "USD",
) -> list[PackageOut]:
    found = await run_in_threadpool(economy.topups.packages, currency)
    return [
        PackageOut(
            id=p.id,
            currency=p.currency,
            coins=p.coins,
            price_minor=p.price_minor,
            currency_exponent=exponent(p.currency),
            price=format_money(p.price_minor, p.currency),
        )
        for p in found
    ]


class NewTopUp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    package_id: int | None = Field(default=None, ge=1, le=2**62)
    coins: int | None = Field(default=None, ge=1, le=CUSTOM_MAX_COINS)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    idempotency_key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")
    # Bought from a room: the checkout comes back to /live/{stream_id}, not to the shop.
    stream_id: str | None = Field(default=None, pattern=STREAM_ID_PATTERN)


class OrderOut(BaseModel):
    id: str
    status: OrderStatus
    coins: int
    amount_minor: int
    currency: str
    provider: str
    checkout_url: str | None
    created_at_us: int

    @classmethod
    def of(cls, order: Order) -> OrderOut:
        # The fields are the domain object's own, by name: no copy to keep in step.
        return cls.model_validate(order, from_attributes=True)


@router.post("/v1/topups", status_code=201, response_model=OrderOut, tags=["payments"])
async def create_topup(
    body: NewTopUp, request: Request, economy: Econ, user: BuyingUser
) -> OrderOut:
    """Start buying coins: answers the provider's checkout URL. Coins arrive by webhook."""
    site = public_base(request)
    address = await run_in_threadpool(address_hash, economy.db, client_address(request))
    order = await economy.topups.create_order(
        user,
        package_id=body.package_id,
        coins=body.coins,
        currency=body.currency,
        idempotency_key=body.idempotency_key,
        site_url=site,
        return_url=site + return_path(body.stream_id),
        today=today(),
        address_hash=address,
    )
    return OrderOut.of(order)


def address_hash(db: Engine, address: str) -> str:
    """The buyer's address as the card rules count it: keyed with a server secret, so the
    stored value names no address and cannot be reversed by trying them all."""
    with db.begin() as conn:
        secret, _ = server_secret(conn, ADDRESS_SECRET_NAME, now_us())
    return hmac.new(secret, address.encode(), hashlib.sha256).hexdigest()[:32]


@router.post("/v1/topups/{order_id}/cancel", response_model=OrderOut, tags=["payments"])
async def cancel_topup(order_id: str, economy: Econ, user: BuyingUser) -> OrderOut:
    """Give up an unpaid order (its owner only; again answers the same). A payment that still
    arrives for it is credited: money received always is."""
    order = await run_in_threadpool(economy.topups.cancel_order, user, order_id)
    return OrderOut.of(order)


@router.get("/v1/topups/{order_id}", response_model=OrderOut, tags=["payments"])
async def get_topup(order_id: str, economy: Econ, user: BuyingUser) -> OrderOut:
    return OrderOut.of(await run_in_threadpool(economy.topups.order_of, user, order_id))


@router.get("/v1/topups", response_model=list[OrderOut], tags=["payments"])
async def my_topups(economy: Econ, user: BuyingUser) -> list[OrderOut]:
    return [OrderOut.of(o) for o in await run_in_threadpool(economy.topups.orders_of, user)]


@router.post(WEBHOOK_TEMPLATE, tags=["payments"])
async def webhook(provider: str, request: Request, economy: Econ) -> dict[str, bool]:
    """Where the payment provider reports; verified before anything is read from it."""
    if provider != economy.topups.provider.name:
        raise Problem(404, Code.UNKNOWN_PROVIDER, f"{provider!r} is not the configured provider")
    try:
        return await _take_webhook(request, economy)
    except Exception:
        # A forged or broken report, or one the database could not take (the provider sends
        # it again): either way an operator wants to know. Not a wrong URL: counted above it.
        metrics.PAYMENT_WEBHOOK_FAILURES.inc()
        raise


async def _take_webhook(request: Request, economy: Economy) -> dict[str, bool]:
    payload = await request.body()  # at most WEBHOOK_MAX_BYTES (api/body_limit.py)
    event = economy.topups.provider.parse_webhook(payload, request.headers)
    if isinstance(event, IgnoredEvent):
        log.info("%s webhook %s ignored: %s", event.provider, event.event_id, event.reason)
        metrics.PAYMENT_EVENTS.labels("ignored").inc()
        return {"received": True, "ignored": True}
    await economy.topups.handle_event(event)
    metrics.PAYMENT_EVENTS.labels(event.kind.value).inc()  # four kinds: a bounded label
    return {"received": True}


# --- the sandbox provider's own pages --------------------------------------------------------

SandboxAction = Literal["pay", "decline", "refund", "dispute"]


def _sandbox(economy: Economy) -> SandboxProvider:
    provider = economy.topups.provider
    if not isinstance(provider, SandboxProvider):
        raise Problem(404, Code.NOT_FOUND, "the sandbox provider is not configured")
    return provider


async def _sandbox_order(economy: Economy, session_id: str) -> Order:
    return await run_in_threadpool(economy.topups.checkout_order, "sandbox", session_id)


def _price(order: Order) -> str:
    return format_money(order.amount_minor, order.currency)


@router.get("/sandbox/checkout/{session_id}", response_class=HTMLResponse, tags=["sandbox"])
async def sandbox_page(
    session_id: str, economy: Econ, message: str = "", back: str = "/shop"
) -> HTMLResponse:
    _sandbox(economy)
    order = await _sandbox_order(economy, session_id)
    back = safe_return_path(back)
    html = render(
        "sandbox_checkout.html",
        order=order,
        price=_price(order),
        base=f"/sandbox/checkout/{session_id}",
        keep="" if back == "/shop" else "?" + urlencode({"back": back}),
        back=f"{back}?{urlencode({'order': order.id})}",
        message=message[:200],
    )
    # The provider's page moves money at a click: never in another site's frame.
    return HTMLResponse(html, headers={CSP: PAGE_POLICY})


@router.post("/sandbox/checkout/{session_id}/{action}", tags=["sandbox"], response_model=None)
async def sandbox_action(
    session_id: str,
    action: SandboxAction,
    request: Request,
    economy: Econ,
    amount_minor: Annotated[int | None, Form(ge=1, le=2**62)] = None,
    card: Annotated[str, Form(pattern=r"^[0-9]{12,19}$")] = DEFAULT_CARD,
    back: str = "/shop",
) -> Response:
    """What the buyer, the merchant or the bank does at the provider: each one a webhook."""
    provider = _sandbox(economy)
    order = await _sandbox_order(economy, session_id)
    kind = {
        "pay": PaymentEventKind.SUCCEEDED,
        "decline": PaymentEventKind.FAILED,
        "refund": PaymentEventKind.REFUNDED,
        "dispute": PaymentEventKind.DISPUTED,
    }[action]
    amount = order.amount_minor
    if kind is PaymentEventKind.REFUNDED:
        already = await run_in_threadpool(provider.refunded_so_far, session_id)
        amount = min(order.amount_minor, already + (amount_minor or order.amount_minor))
    if kind in (PaymentEventKind.REFUNDED, PaymentEventKind.DISPUTED) and order.status in (
        OrderStatus.OPEN,
        OrderStatus.FAILED,
    ):
        raise Problem(409, Code.NOT_PAID, "only a paid order can be refunded or disputed")
    if kind in (PaymentEventKind.SUCCEEDED, PaymentEventKind.FAILED) and (
        order.status is not OrderStatus.OPEN
    ):
        raise Problem(409, Code.CHECKOUT_CLOSED, f"this checkout is already {order.status.value}")
    # The provider's own record first, as a real one keeps it: whatever giftwave does next.
    await provider.record(kind, session_id, order.id, amount, order.currency)
    payload = provider.event_payload(kind, session_id, order.id, amount, order.currency, card)
    delivered = await provider.deliver(payload)
    message = "done" if delivered else "giftwave did not answer; the sandbox keeps retrying"
    if "application/json" in request.headers.get("accept", ""):
        fresh = await _sandbox_order(economy, session_id)
        return JSONResponse({"delivered": delivered, "order": OrderOut.of(fresh).model_dump()})
    query = urlencode({"message": message, "back": safe_return_path(back)})
    return RedirectResponse(f"/sandbox/checkout/{session_id}?{query}", status_code=303)
