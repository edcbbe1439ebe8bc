"""A creator's outgoing webhooks: register (the secret is shown once), list, delete, send a
test, and read the recent deliveries. The creator's own session only: where a creator's events
go is not something an API key may change. Deliveries are asynchronous: no route here waits
for an endpoint to answer."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from giftwave.api.auth import SessionUser
from giftwave.api.fields import PlainText
from giftwave.api.state import services
from giftwave.webhooks import creator_endpoints
from giftwave.webhooks.destinations import URL_MAX_CHARS
from giftwave.webhooks.endpoints import (
    Endpoint,
)
from giftwave.webhooks.events import SUBSCRIBABLE
from giftwave.webhooks.outbox import Delivery, DeliveryStatus
from giftwave.webhooks.service import Webhooks

router = APIRouter(prefix="/v1/creators/me/webhooks", tags=["webhooks"])
EndpointId = Annotated[int, Path(ge=1, le=2**62)]
_EVENT_NAMES = ", ".join(e.value for e in SUBSCRIBABLE)


async def webhooks_of(request: Request) -> Webhooks:
    webhooks: Webhooks = services(request).webhooks
    return webhooks


Hooks = Annotated[Webhooks, Depends(webhooks_of)]


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
    endpoint = await creator_endpoints.create(hooks, user, body.url, body.events)
    return WebhookCreatedOut(**WebhookOut.of(endpoint).model_dump(), secret=endpoint.secret)


@router.get("", response_model=list[WebhookOut])
async def list_webhooks(hooks: Hooks, user: SessionUser) -> list[WebhookOut]:
    return [WebhookOut.of(x) for x in await creator_endpoints.listed(hooks, user)]


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: EndpointId, hooks: Hooks, user: SessionUser) -> None:
    """Remove the endpoint and its deliveries, pending ones included."""
    await creator_endpoints.delete(hooks, user, webhook_id)


@router.post("/{webhook_id}/test", status_code=202, response_model=PingSentOut)
async def send_test(webhook_id: EndpointId, hooks: Hooks, user: SessionUser) -> PingSentOut:
    """Queue a ``ping`` to this endpoint; see how it went in its deliveries."""
    delivery_id, event_id = await creator_endpoints.send_ping(hooks, user, webhook_id)
    return PingSentOut(delivery_id=delivery_id, event_id=event_id)


@router.get("/{webhook_id}/deliveries", response_model=DeliveriesOut)
async def list_deliveries(
    webhook_id: EndpointId,
    hooks: Hooks,
    user: SessionUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> DeliveriesOut:
    """The endpoint's deliveries, newest first, with their status and last answer."""
    found = await creator_endpoints.deliveries(hooks, user, webhook_id, limit=limit, before=before)
    return DeliveriesOut(
        deliveries=[DeliveryOut.of(x) for x in found],
        next_before=found[-1].id if len(found) == limit else None,
    )
