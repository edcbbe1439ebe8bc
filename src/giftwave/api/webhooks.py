"""A creator's outgoing webhooks: register (the secret is shown once), list, delete, send a
test, and read the recent deliveries. The creator's own session only: where a creator's events
go is not something an API key may change. Deliveries are asynchronous: no route here waits
for an endpoint to answer."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import SessionUser
from giftwave.api.fields import PlainText
from giftwave.api.problems import Problem
from giftwave.api.state import services
from giftwave.clock import now_us
from giftwave.db.tables import webhook_deliveries
from giftwave.errors import Code
from giftwave.identity.users import Role, User
from giftwave.webhooks.destinations import URL_MAX_CHARS, check_url_resolved
from giftwave.webhooks.endpoints import (
    Endpoint,
    delete_endpoint,
    endpoints_of,
    get_endpoint,
    parse_events,
    register,
)
from giftwave.webhooks.events import SUBSCRIBABLE, ping_event
from giftwave.webhooks.outbox import Delivery, DeliveryStatus, enqueue, recent_deliveries
from giftwave.webhooks.service import Webhooks

router = APIRouter(prefix="/v1/creators/me/webhooks", tags=["webhooks"])
EndpointId = Annotated[int, Path(ge=1, le=2**62)]
_EVENT_NAMES = ", ".join(e.value for e in SUBSCRIBABLE)


async def webhooks_of(request: Request) -> Webhooks:
    webhooks: Webhooks = services(request).webhooks
    return webhooks


Hooks = Annotated[Webhooks, Depends(webhooks_of)]


def _creator(user: User) -> User:
    if user.role is not Role.CREATOR:
        raise Problem(403, Code.NOT_A_CREATOR, "webhooks are for creators")
    return user


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: PlainText = Field(
        min_length=1,
        max_length=URL_MAX_CHARS,
        description="https:// (or http://) URL",
        examples=["https://alerts.example.com/giftwave"],
    )
    events: list[Annotated[str, Field(min_length=1, max_length=32)]] = Field(
        min_length=1,
        max_length=len(SUBSCRIBABLE),
        description=f"any of {_EVENT_NAMES}",
        examples=[["gift", "combo_end"]],
    )


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    created_at_us: int
    disabled_at_us: int | None = Field(description="set when it kept failing; nothing is sent")
    failing_since_us: int | None = Field(description="every attempt since then failed")
    dropped_events: int = Field(description="events not queued: too many were pending")

    @classmethod
    def of(cls, x: Endpoint) -> WebhookOut:
        return cls(
            id=x.id,
            url=x.url,
            events=sorted(e.value for e in x.events),
            created_at_us=x.created_at_us,
            disabled_at_us=x.disabled_at_us,
            failing_since_us=x.failing_since_us,
            dropped_events=x.dropped_events,
        )


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="signs every delivery; shown this once only, keep it")


class PingSentOut(BaseModel):
    delivery_id: int
    event_id: str


class DeliveryOut(BaseModel):
    id: int = Field(description="the Giftwave-Delivery header: the same on every retry")
    event_id: str
    type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at_us: int | None = Field(description="when pending: the next attempt")
    last_status: int | None = Field(description="the HTTP status of the last answer")
    last_error: str | None
    created_at_us: int
    delivered_at_us: int | None
    payload: dict[str, Any] = Field(description="the body sent")

    @classmethod
    def of(cls, x: Delivery) -> DeliveryOut:
        fields = {name: getattr(x, name) for name in cls.model_fields if name != "payload"}
        return cls(**fields, payload=orjson.loads(x.payload))


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut] = Field(description="newest first")
    next_before: int | None = Field(description="pass as ?before= for the next, older page")


@router.post("", status_code=201, response_model=WebhookCreatedOut)
async def create_webhook(body: WebhookIn, hooks: Hooks, user: SessionUser) -> WebhookCreatedOut:
    """Register an endpoint for some event types; its signing secret is in this answer only."""
    creator = _creator(user)
    parse_events(body.events)  # what is cheap to refuse is refused before any lookup
    # The name is resolved here, before the transaction: a lookup may take seconds.
    url = await check_url_resolved(
        body.url,
        allow_private=hooks.settings.webhook_allow_private_addresses,
        timeout_s=hooks.settings.webhook_timeout_s,
    )

    def work() -> Endpoint:
        with hooks.db.begin() as conn:
            return register(
                conn,
                creator.id,
                url,
                body.events,
                allow_private=hooks.settings.webhook_allow_private_addresses,
            )

    endpoint = await run_in_threadpool(work)
    hooks.forget(creator.id)
    return WebhookCreatedOut(**WebhookOut.of(endpoint).model_dump(), secret=endpoint.secret)


@router.get("", response_model=list[WebhookOut])
async def list_webhooks(hooks: Hooks, user: SessionUser) -> list[WebhookOut]:
    creator = _creator(user)

    def work() -> list[Endpoint]:
        with hooks.db.connect() as conn:
            return endpoints_of(conn, creator.id)

    return [WebhookOut.of(x) for x in await run_in_threadpool(work)]


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: EndpointId, hooks: Hooks, user: SessionUser) -> None:
    """Remove the endpoint and its deliveries, pending ones included."""
    creator = _creator(user)

    def work() -> None:
        with hooks.db.begin() as conn:
            delete_endpoint(conn, creator.id, webhook_id)

    await run_in_threadpool(work)
    hooks.forget(creator.id)


@router.post("/{webhook_id}/test", status_code=202, response_model=PingSentOut)
async def send_test(webhook_id: EndpointId, hooks: Hooks, user: SessionUser) -> PingSentOut:
    """Queue a ``ping`` to this endpoint; see how it went in its deliveries."""
    creator = _creator(user)

    def work() -> PingSentOut:
        with hooks.db.begin() as conn:
            endpoint = get_endpoint(conn, creator.id, webhook_id)
            if not endpoint.active:
                raise Problem(
                    409, Code.WEBHOOK_DISABLED, "this endpoint was disabled; register again"
                )
            event = ping_event(endpoint.id, creator.id, now_us())
            if not enqueue(conn, event, [endpoint], hooks.gauge):
                raise Problem(409, Code.WEBHOOK_BACKLOG_FULL, "too many deliveries are pending")
            delivery_id = conn.execute(
                select(webhook_deliveries.c.id).where(
                    webhook_deliveries.c.endpoint_id == endpoint.id,
                    webhook_deliveries.c.event_id == event.event_id,
                )
            ).scalar_one()
            return PingSentOut(delivery_id=int(delivery_id), event_id=event.event_id)

    sent = await run_in_threadpool(work)
    hooks.wake()
    return sent


@router.get("/{webhook_id}/deliveries", response_model=DeliveriesOut)
async def list_deliveries(
    webhook_id: EndpointId,
    hooks: Hooks,
    user: SessionUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> DeliveriesOut:
    """The endpoint's deliveries, newest first, with their status and last answer."""
    creator = _creator(user)

    def work() -> list[Delivery]:
        with hooks.db.connect() as conn:
            get_endpoint(conn, creator.id, webhook_id)
            return recent_deliveries(conn, webhook_id, limit=limit, before_id=before)

    found = await run_in_threadpool(work)
    return DeliveriesOut(
        deliveries=[DeliveryOut.of(x) for x in found],
        next_before=found[-1].id if len(found) == limit else None,
    )
